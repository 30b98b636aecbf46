import type { Logger } from 'pino';
import { decodeUpstreamKey, redisKeys, type RedisClient } from '@yugong/schemas';
import { decryptSecret } from './crypto.js';
import type { UpstreamKey, UpstreamPool } from './pool.js';

export interface UpstreamLoaderDeps {
  redis: RedisClient;
  pool: UpstreamPool;
  secretKey: Buffer;
  /** Serve only these pools; all when null. */
  poolIds: string[] | null;
  log: Logger;
  onLoaded?(keys: UpstreamKey[]): void;
}

/** Reads upstream keys from their Redis records into the pool: all of them, or the one a notice names. */
export function createUpstreamLoader(deps: UpstreamLoaderDeps): (only?: string) => Promise<void> {
  const { redis, pool, log } = deps;
  return async function load(only) {
    const entries = only ? [[only, await redis.hget(redisKeys.upstreamKeys(), only)] as const] : Object.entries(await redis.hgetall(redisKeys.upstreamKeys()));
    for (const [id, raw] of entries) {
      const p = decodeUpstreamKey(raw);
      if (!p) {
        pool.remove(id);
        continue;
      }
      if (deps.poolIds && !deps.poolIds.includes(p.poolId)) continue;
      let secret: string;
      try {
        secret = decryptSecret(deps.secretKey, p.encryptedKey);
      } catch {
        log.error({ keyId: id }, 'cannot decrypt upstream key: was YUGONG_SECRET_KEY changed?');
        continue;
      }
      pool.upsert({
        id,
        poolId: p.poolId,
        baseUrl: p.baseUrl,
        organization: p.organization,
        models: p.models,
        weight: p.weight,
        secret,
        status: p.status === 'active' ? 'active' : 'disabled',
        reason: p.reason,
      });
    }
    deps.onLoaded?.(pool.all());
  };
}
