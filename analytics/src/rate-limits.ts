import { decodeAccount, decodeApiKey, redisKeys, type RedisClient } from '@yugong/schemas';

const WINDOW_MS = 60_000;

interface Use {
  limit: number | null;
  used: number;
  remaining: number | null;
}

const use = (limit: number | null, used: string | null | undefined): Use => {
  const u = Number(used ?? 0);
  return { limit, used: u, remaining: limit === null ? null : Math.max(0, limit - u) };
};

/**
 * This minute's requests and tokens against the limits of a key and of every account on its
 * path, read from the admission script's own counters.
 */
export async function rateLimits(redis: RedisClient, root: string, keyId: string, now = Date.now()) {
  const key = decodeApiKey(await redis.hgetall(redisKeys.keyMeta(root, keyId)));
  if (!key) return null;
  const path = key.path;
  const minute = Math.floor(now / WINDOW_MS);
  const p = redis.pipeline();
  p.get(redisKeys.rpm(root, `k:${keyId}`, minute));
  p.get(redisKeys.tpm(root, `k:${keyId}`, minute));
  for (const a of path) {
    p.hgetall(redisKeys.account(root, a));
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
    key: { rpm: use(key.rpm, r[0] as string | null), tpm: use(key.tpm, r[1] as string | null) },
    accounts: path.map((a, i) => {
      const account = decodeAccount(r[2 + i * 3] as Record<string, string>);
      return { account_id: a, rpm: use(account?.rpm ?? null, r[3 + i * 3] as string | null), tpm: use(account?.tpm ?? null, r[4 + i * 3] as string | null) };
    }),
  };
}
