import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
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

const ADMIT_SHA = createHash('sha1').update(admitLua).digest('hex');

/**
 * Expected refusals are values; a Redis failure throws (broken infrastructure).
 *
 * The script goes out as a bare EVALSHA through `sendCommand`: ioredis' defined commands
 * and its auto-pipelining cost about as much CPU per call as the rest of a request's
 * Redis round trip (measured in docs/benchmarks.md). A Redis that lost its scripts
 * (a restart, SCRIPT FLUSH) answers NOSCRIPT once; the script is loaded and the call sent again.
 */
export function createAdmitter(redis: Redis): Admitter {
  const evalsha = (args: (string | number)[]) => redis.sendCommand(new Command('evalsha', args, { replyEncoding: 'utf8' })) as Promise<[string, number, number]>;
  const run = async (args: (string | number)[]): Promise<[string, number, number]> => {
    try {
      return await evalsha(args);
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      await redis.script('LOAD', admitLua);
      return evalsha(args);
    }
  };
  return {
    async admit(req) {
      const now = req.now ?? Date.now();
      const minute = Math.floor(now / WINDOW_MS);
      const windowLeft = (minute + 1) * WINDOW_MS - now;
      const args: (string | number)[] = [ADMIT_SHA, req.path.length * 5 + 2];
      for (const account of req.path) {
        args.push(
          redisKeys.account(req.root, account),
          redisKeys.holds(req.root, account),
          redisKeys.holdAmounts(req.root, account),
          redisKeys.rpm(req.root, `a:${account}`, minute),
          redisKeys.tpm(req.root, `a:${account}`, minute),
        );
      }
      args.push(redisKeys.rpm(req.root, `k:${req.keyId}`, minute), redisKeys.tpm(req.root, `k:${req.keyId}`, minute));
      args.push(req.path.length, now, req.holdId, now + req.holdTtlMs, req.tokens, req.keyRpm ?? '', req.keyTpm ?? '', windowLeft);
      for (const x of req.amounts) args.push(x.toString());
      const [verdict, a, b] = await run(args);
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
