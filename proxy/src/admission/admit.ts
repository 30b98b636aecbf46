import type { Redis } from 'ioredis';
import { redisKeys } from '@yugong/schemas';
import { admitLua } from './script.js';

export interface AdmissionRequest {
  root: string;
  path: string[];
  keyId: string;
  holdId: string;
  /** Hold amount per account of the path, at each account's price (nano-USD). */
  amounts: bigint[];
  tokens: number;
  keyRpm: number | null;
  keyTpm: number | null;
  holdTtlMs: number;
  now?: number;
}

export type Admission =
  | { ok: true; keyRpmRemaining: number | null; keyTpmRemaining: number | null; windowResetMs: number }
  | { ok: false; reason: 'funds' | 'disabled'; account: string }
  | { ok: false; reason: 'rpm' | 'tpm'; limit: number; retryAfterMs: number };

const WINDOW_MS = 60_000;

export interface Admitter {
  admit(req: AdmissionRequest): Promise<Admission>;
}

/** Expected refusals are values; a Redis failure throws (broken infrastructure). */
export function createAdmitter(redis: Redis): Admitter {
  redis.defineCommand('ygAdmit', { lua: admitLua });
  const run = (redis as Redis & { ygAdmit(...a: (string | number)[]): Promise<[string, number, number]> }).ygAdmit.bind(redis);
  return {
    async admit(req) {
      const now = req.now ?? Date.now();
      const minute = Math.floor(now / WINDOW_MS);
      const windowLeft = (minute + 1) * WINDOW_MS - now;
      const keys: string[] = [];
      for (const account of req.path) {
        keys.push(
          redisKeys.account(req.root, account),
          redisKeys.holds(req.root, account),
          redisKeys.holdAmounts(req.root, account),
          redisKeys.rpm(req.root, `a:${account}`, minute),
          redisKeys.tpm(req.root, `a:${account}`, minute),
        );
      }
      keys.push(redisKeys.rpm(req.root, `k:${req.keyId}`, minute), redisKeys.tpm(req.root, `k:${req.keyId}`, minute));
      const [verdict, a, b] = await run(
        keys.length, ...keys,
        req.path.length, now, req.holdId, now + req.holdTtlMs, req.tokens,
        req.keyRpm ?? '', req.keyTpm ?? '', windowLeft,
        ...req.amounts.map((x) => x.toString()),
      );
      switch (verdict) {
        case 'ok':
          return { ok: true, keyRpmRemaining: a >= 0 ? a : null, keyTpmRemaining: b >= 0 ? b : null, windowResetMs: windowLeft };
        case 'funds':
        case 'disabled':
          return { ok: false, reason: verdict, account: req.path[a - 1] ?? '' };
        case 'rpm':
        case 'tpm':
          return { ok: false, reason: verdict, limit: a, retryAfterMs: b };
        default:
          throw new Error(`admission script answered ${String(verdict)}`);
      }
    },
  };
}
