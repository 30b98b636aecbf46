import { redisKeys, type RedisClient } from '@yugong/schemas';

const WINDOW_MS = 60_000;

interface Use {
  limit: number | null;
  used: number;
  remaining: number | null;
}

const use = (limit: string | null | undefined, used: string | null | undefined): Use => {
  const l = limit ? Number(limit) : null;
  const u = Number(used ?? 0);
  return { limit: l, used: u, remaining: l === null ? null : Math.max(0, l - u) };
};

/**
 * This minute's requests and tokens against the limits of a key and of every account on its
 * path, read from the admission script's own counters.
 */
export async function rateLimits(redis: RedisClient, root: string, keyId: string, now = Date.now()) {
  const meta = await redis.hmget(redisKeys.keyMeta(root, keyId), 'keyId', 'path', 'rpm', 'tpm');
  if (!meta[0]) return null;
  const path = JSON.parse(meta[1] ?? '[]') as string[];
  const minute = Math.floor(now / WINDOW_MS);
  const p = redis.pipeline();
  p.get(redisKeys.rpm(root, `k:${keyId}`, minute));
  p.get(redisKeys.tpm(root, `k:${keyId}`, minute));
  for (const a of path) {
    p.hmget(redisKeys.account(root, a), 'rpm', 'tpm');
    p.get(redisKeys.rpm(root, `a:${a}`, minute));
    p.get(redisKeys.tpm(root, `a:${a}`, minute));
  }
  const r = ((await p.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  return {
    object: 'rate_limits',
    api_key_id: keyId,
    window_resets_in_ms: (minute + 1) * WINDOW_MS - now,
    key: { rpm: use(meta[2], r[0] as string | null), tpm: use(meta[3], r[1] as string | null) },
    accounts: path.map((a, i) => {
      const [rpm, tpm] = r[2 + i * 3] as (string | null)[];
      return { account_id: a, rpm: use(rpm, r[3 + i * 3] as string | null), tpm: use(tpm, r[4 + i * 3] as string | null) };
    }),
  };
}
