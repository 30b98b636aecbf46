import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';

/**
 * One Redis server or a Redis Cluster. Every key of one account tree carries the {root} hash
 * tag, so a script or transaction over a tree runs on one slot either way; what spans trees
 * (a pipeline over many roots) is sent as separate commands, which ioredis groups per node.
 */
export type RedisClient = Redis | Cluster;

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(.+)$/;

/** `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), or a cluster's seed nodes: `redis+cluster://[user:password@]host:port,host:port`. */
export const redisUrl = z.string().refine((v) => /^rediss?:\/\/[^\s]+$/.test(v) || CLUSTER_URL.test(v), 'must be a redis://, rediss:// or redis+cluster:// URL');

export function isClusterUrl(url: string): boolean {
  return CLUSTER_URL.test(url);
}

/** Connects to what the URL names; the options are those of each server connection. */
export function connectRedis(url: string, options: RedisOptions = {}): RedisClient {
  const m = CLUSTER_URL.exec(url);
  if (!m) return new Redis(url, options);
  const [, scheme, rest = ''] = m;
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? new URL(`redis://${rest.slice(0, at + 1)}localhost`) : null;
  const nodes = (at >= 0 ? rest.slice(at + 1) : rest)
    .split(',')
    .filter(Boolean)
    .map((hostPort) => {
      const u = new URL(`redis://${hostPort}`);
      return { host: u.hostname, port: Number(u.port || 6379) };
    });
  const { enableAutoPipelining, ...perServer } = options;
  return new Cluster(nodes, {
    enableAutoPipelining,
    // Writes and the reads that decide admission go to primaries only: a replica may lag.
    scaleReads: 'master',
    // A failover (node timeout plus an election, a few seconds) is waited out, not failed.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    maxRedirections: 50,
    redisOptions: {
      ...perServer,
      ...(auth?.username ? { username: decodeURIComponent(auth.username) } : {}),
      ...(auth?.password ? { password: decodeURIComponent(auth.password) } : {}),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    },
  });
}

/**
 * Replicas that must hold a write before it counts (YUGONG_REDIS_REPLICAS): Redis replicates
 * asynchronously, so a primary that fails right after a write may take it along.
 */
export const redisReplicas = z.coerce.number().int().min(0).max(5).default(0);

const WAIT_MS = 2000;

/** CRC16/XMODEM, Redis Cluster's key hash. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of a key: of its first non-empty {hash tag} when it has one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  return crc16(Buffer.from(close > open + 1 ? key.slice(open + 1, close) : key)) % 16384;
}

/**
 * Waits until `replicas` replicas hold what this client has written so far to the primaries
 * that serve `keys` (to every primary without keys): WAIT counts the writes of the connection
 * it is sent on. Throws when they do not within two seconds, or when a slot has no primary (a
 * failover under way): a write that may be lost must not be acted on.
 */
export async function confirmReplicated(client: RedisClient, replicas: number, keys: readonly string[] = []): Promise<void> {
  if (replicas <= 0) return;
  let primaries: Redis[];
  if (!(client instanceof Cluster)) primaries = [client];
  else if (keys.length === 0) primaries = client.nodes('master');
  else {
    const byAddress = new Map(client.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
    primaries = [...new Set(keys.map((k) => client.slots[keySlot(k)]?.[0]))].map((address) => {
      const node = address === undefined ? undefined : byAddress.get(address);
      if (!node) throw new Error(`Redis: no primary serves ${address ?? 'a slot'} now`);
      return node;
    });
  }
  const acks = await Promise.all(
    primaries.map((node) =>
      Promise.race([
        node.call('WAIT', replicas, WAIT_MS) as Promise<number>,
        // A primary that is gone never answers: give up a second after WAIT itself would have.
        new Promise<number>((_, reject) => setTimeout(() => reject(new Error('Redis: WAIT was not answered')), WAIT_MS + 1000).unref()),
      ]),
    ),
  );
  const short = acks.findIndex((n) => n < replicas);
  if (short >= 0) throw new Error(`Redis: ${acks[short]} of ${replicas} replicas confirmed a write within ${WAIT_MS} ms`);
}
