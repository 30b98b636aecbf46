import { setTimeout as sleep } from 'node:timers/promises';
import { InfraError } from './errors.js';
import { killByPidFile, stopByPidFile } from './proc.js';
import type { Profile } from './profile.js';
import { redisService } from './services/redis.js';
import type { ServiceDef } from './services/service.js';
import { startService, wipeServices } from './stack.js';
import { ensureDebPackages, realSystem, type SystemProbe } from './system.js';

export interface RedisCluster {
  /** `redis+cluster://` URL naming every node as a seed. */
  url: string;
  nodes: { name: string; port: number }[];
  /** The slot of a key (CLUSTER KEYSLOT). */
  slotOf(key: string): number;
  /** The node that serves a slot as primary now (CLUSTER SLOTS, asked of any live node). */
  primaryOf(slot: number): Promise<number>;
  /** Ends one node with SIGKILL, as a crash would. */
  kill(port: number): Promise<void>;
  /** Starts a node again with its data folder: it rejoins, as a replica if it was failed over. */
  restart(port: number): Promise<void>;
  /**
   * Waits until every node that runs sees the cluster as ok with every slot served, every killed
   * node is marked failed (its replica has taken over), and, with all nodes up, every replica is linked.
   */
  settled(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of local `redis-server` processes (Debian's package): `primaries` primaries
 * with `replicas` replicas each, on consecutive ports from `basePort`, in the profile's folder.
 * Failover takes `nodeTimeoutMs` plus an election (a few seconds with 2 s).
 */
export async function startRedisCluster(
  profile: Profile,
  opts: { basePort: number; primaries?: number; replicas?: number; nodeTimeoutMs?: number; fresh?: boolean; sys?: SystemProbe; log?: (line: string) => void },
): Promise<RedisCluster> {
  const sys = opts.sys ?? realSystem;
  ensureDebPackages(
    [
      { name: 'redis-server', binary: 'redis-server' },
      { name: 'redis-tools', binary: 'redis-cli' },
    ],
    sys,
  );
  const count = (opts.primaries ?? 3) * (1 + (opts.replicas ?? 1));
  const defs: ServiceDef[] = Array.from({ length: count }, (_, i) =>
    redisService(profile, 'redis-server', { name: `redis-cluster-${i + 1}`, port: opts.basePort + i, nodeTimeoutMs: opts.nodeTimeoutMs ?? 2000 }),
  );
  const ports = defs.map((d) => d.ports[0]?.port ?? 0);
  const byPort = new Map(defs.map((d, i) => [ports[i] ?? 0, d]));
  const log = opts.log ?? (() => undefined);
  if (opts.fresh) await wipeServices(profile, defs, 5_000);
  for (const def of defs) await startService(def, log);

  const cli = (port: number, ...args: string[]) => {
    const r = sys.run('redis-cli', ['-p', String(port), ...args]);
    return r.status === 0 ? r.output : '';
  };
  if (!cli(ports[0] ?? 0, 'CLUSTER', 'INFO').includes('cluster_state:ok')) {
    const r = sys.run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(opts.replicas ?? 1), '--cluster-yes']);
    if (r.status !== 0) throw new InfraError('UNHEALTHY', `redis-cli --cluster create failed:\n${r.output}`);
  }

  const killed = new Set<number>();
  const cluster: RedisCluster = {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes: defs.map((d, i) => ({ name: d.name, port: ports[i] ?? 0 })),
    slotOf(key) {
      return Number(cli(ports.find((p) => !killed.has(p)) ?? 0, 'CLUSTER', 'KEYSLOT', key).trim());
    },
    async primaryOf(slot) {
      // CLUSTER NODES: "<id> <ip:port@bus> <flags> <primary id> … <slot ranges>", one line a node.
      for (const port of ports.filter((p) => !killed.has(p))) {
        for (const line of cli(port, 'CLUSTER', 'NODES').split('\n')) {
          const [, address = '', flags = '', , , , , , ...slots] = line.trim().split(' ');
          if (!flags.includes('master') || flags.includes('fail')) continue;
          const serves = slots.some((range) => {
            const [from, to = from] = range.split('-').map(Number);
            return from !== undefined && to !== undefined && from <= slot && slot <= to;
          });
          if (serves) return Number(address.split('@')[0]?.split(':')[1]);
        }
      }
      throw new InfraError('UNHEALTHY', `no node of the cluster serves slot ${slot}`);
    },
    async kill(port) {
      const def = byPort.get(port);
      if (!def) return;
      await killByPidFile(def.pidFile, def.markers);
      killed.add(port);
    },
    async restart(port) {
      const def = byPort.get(port);
      if (!def) return;
      await startService(def, log);
      killed.delete(port);
    },
    async settled(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const live = ports.filter((p) => !killed.has(p));
        const states = live.map((p) => cli(p, 'CLUSTER', 'INFO'));
        const views = live.map((p) => cli(p, 'CLUSTER', 'NODES').split('\n').filter(Boolean));
        // Every node must know every other, or a client may be sent to a node not yet told.
        const ok = states.every((st) => st.includes('cluster_state:ok') && st.includes('cluster_slots_ok:16384') && st.includes(`cluster_known_nodes:${count}`));
        // A killed node counts as gone only once every live node has marked it failed (after the node timeout).
        const failedSeen = [...killed].every((port) => views.every((lines) => lines.some((l) => l.includes(`:${port}@`) && (l.split(' ')[2] ?? '').split(',').includes('fail'))));
        // With every node up, every primary has its replicas linked and in sync.
        const linked =
          killed.size > 0 ||
          live.every((p) => {
            const info = cli(p, 'INFO', 'replication');
            return info.includes('role:master') ? Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0) >= (opts.replicas ?? 1) : info.includes('master_link_status:up');
          });
        if (ok && failedSeen && linked) return;
        if (Date.now() > deadline) throw new InfraError('UNHEALTHY', `the Redis Cluster did not settle within ${timeoutMs / 1000} s:\n${states.join('\n')}`);
        await sleep(200);
      }
    },
    async stop() {
      for (const def of defs) await stopByPidFile(def.pidFile, def.markers, 5_000);
    },
  };
  await cluster.settled();
  return cluster;
}
