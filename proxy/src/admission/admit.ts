import { createHash } from 'node:crypto';
import { Command } from 'ioredis';
import type { Logger } from 'pino';
import { confirmReplicated, redisKeys, retry, type RedisClient } from '@yugong/schemas';
import { admitLua, releaseLua, shrinkLua } from './script.js';

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

/** A lease the script may grant instead of holding for this request alone (see admitLua). */
export interface LeaseAsk {
  id: string;
  expiresAt: number;
  units: number;
  minUnits: number;
  share: number;
}

export type Refusal =
  | { ok: false; reason: 'funds' | 'reserved' | 'disabled'; account: string }
  | { ok: false; reason: 'rpm' | 'tpm'; limit: number; retryAfterMs: number }
  /** The request alone is larger than a TPM limit: no window will ever admit it. */
  | { ok: false; reason: 'too_large'; limit: number; tokens: number };

export type Verdict = { ok: true; kind: 'hold' | 'lease'; units: number; keyRpmRemaining: number | null; keyTpmRemaining: number | null; windowResetMs: number; minute: number } | Refusal;

/** What goes back of a lease (or of a hold never used). */
export interface LeaseReturn {
  root: string;
  path: string[];
  keyId: string;
  /** The lease's id, or the hold's. */
  id: string;
  /** The minute whose windows counted the lease's requests and tokens. */
  minute: number;
  unusedRequests: number;
  unusedTokens: number;
  /** Per account of the path: what the node did not spend of its slice. */
  unused: bigint[];
}

/** The Redis side of admission: one atomic script per decision, and the return of a lease. */
export interface AdmissionScripts {
  admit(req: AdmissionRequest, lease?: LeaseAsk): Promise<Verdict>;
  returnLease(r: LeaseReturn): Promise<void>;
  /**
   * A finished request held alone: its hold comes down to what it cost, counted as
   * `settling`, so the next request is decided on the funds really left before the ledger
   * has settled it (and is told "no", not "wait", when those are gone); the ledger then takes
   * the cost from what remains of the hold.
   */
  shrinkHold(r: { root: string; path: string[]; id: string; costs: readonly bigint[] }): Promise<void>;
}

const WINDOW_MS = 60_000;

/**
 * Expected refusals are values; a Redis failure throws (broken infrastructure).
 *
 * Scripts go out as bare EVALSHA through `sendCommand`: ioredis' defined commands and its
 * auto-pipelining cost about as much CPU per call as the rest of a request's Redis round
 * trip (measured in docs/benchmarks.md). A Redis that lost its scripts (a restart, SCRIPT
 * FLUSH, a failover to a replica) answers NOSCRIPT once; the call is sent again as EVAL.
 */
export function createAdmissionScripts(redis: RedisClient, replicas = 0, log?: Logger): AdmissionScripts {
  const script = (lua: string) => {
    const sha = createHash('sha1').update(lua).digest('hex');
    const send = (command: 'evalsha' | 'eval', args: (string | number)[]) =>
      redis.sendCommand(new Command(command, [command === 'eval' ? lua : sha, ...args], { replyEncoding: 'utf8' })) as Promise<unknown>;
    return async (args: (string | number)[]): Promise<unknown> => {
      try {
        return await send('evalsha', args);
      } catch (err) {
        if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
        // EVAL caches the script on the node that owns the keys (a cluster's SCRIPT LOAD would go to any node).
        return send('eval', args);
      }
    };
  };
  const admitScript = script(admitLua);
  const releaseScript = script(releaseLua);
  const shrinkScript = script(shrinkLua);
  const windows = (root: string, subject: string, minute: number) => [redisKeys.rpm(root, subject, minute), redisKeys.tpm(root, subject, minute)];

  return {
    admit,
    returnLease: (r) => release(r, 'leased'),
    shrinkHold: async (r) => {
      const keys = r.path.flatMap((account) => [redisKeys.account(r.root, account), redisKeys.holdAmounts(r.root, account), redisKeys.holdCosts(r.root, account)]);
      await shrinkScript([keys.length, ...keys, r.path.length, r.id, ...r.costs.map(String)]);
    },
  };

  async function release(r: LeaseReturn, counter: 'leased' | 'held'): Promise<void> {
    const [zset, amounts] = counter === 'leased' ? [redisKeys.leases, redisKeys.leaseAmounts] : [redisKeys.holds, redisKeys.holdAmounts];
    const args: (string | number)[] = [r.path.length * 5 + 2];
    for (const account of r.path) {
      args.push(redisKeys.account(r.root, account), zset(r.root, account), amounts(r.root, account), ...windows(r.root, `a:${account}`, r.minute));
    }
    args.push(...windows(r.root, `k:${r.keyId}`, r.minute));
    args.push(r.path.length, r.id, counter, r.unusedRequests, r.unusedTokens, ...r.unused.map(String));
    await releaseScript(args);
  }

  /**
   * A hold or lease whose write no replica confirmed admits nothing; it is given back whole, on
   * whichever node serves its slot once the failover is over (or found gone: it was lost with
   * the primary). Meanwhile it only keeps funds from being spent.
   */
  function giveBackUnconfirmed(r: LeaseReturn, counter: 'leased' | 'held'): void {
    retry(() => release(r, counter), { attempts: 120, delayMs: 500 }).catch((err: unknown) =>
      log?.error({ err: (err as Error).message, id: r.id }, 'an unconfirmed hold was not given back; it is released when it expires'),
    );
  }

  async function admit(req: AdmissionRequest, lease?: LeaseAsk): Promise<Verdict> {
    const now = req.now ?? Date.now();
    const minute = Math.floor(now / WINDOW_MS);
    const windowLeft = (minute + 1) * WINDOW_MS - now;
    const args: (string | number)[] = [req.path.length * 8 + 2];
    for (const account of req.path) {
      args.push(
        redisKeys.account(req.root, account),
        redisKeys.holds(req.root, account),
        redisKeys.holdAmounts(req.root, account),
        redisKeys.leases(req.root, account),
        redisKeys.leaseAmounts(req.root, account),
        ...windows(req.root, `a:${account}`, minute),
        redisKeys.holdCosts(req.root, account),
      );
    }
    args.push(...windows(req.root, `k:${req.keyId}`, minute));
    args.push(req.path.length, now, req.holdId, now + req.holdTtlMs, req.tokens, req.keyRpm ?? '', req.keyTpm ?? '', windowLeft);
    args.push(lease?.id ?? '', lease?.expiresAt ?? 0, lease?.units ?? 0, lease?.minUnits ?? 0, lease?.share ?? 1);
    for (const x of req.amounts) args.push(x.toString());
    const [verdict, a, b, c] = (await admitScript(args)) as [string, number, number, number];
    switch (verdict) {
      case 'ok':
      case 'lease': {
        // A hold or lease a failover could lose must not admit anything.
        try {
          if (replicas > 0) await confirmReplicated(redis, replicas, [redisKeys.account(req.root, req.root)]);
        } catch (err) {
          const id = verdict === 'lease' && lease ? lease.id : req.holdId;
          giveBackUnconfirmed(
            { root: req.root, path: req.path, keyId: req.keyId, id, minute, unusedRequests: a, unusedTokens: req.tokens * a, unused: req.amounts.map((x) => x * BigInt(a)) },
            verdict === 'lease' ? 'leased' : 'held',
          );
          throw err;
        }
        return { ok: true, kind: verdict === 'ok' ? 'hold' : 'lease', units: a, keyRpmRemaining: b >= 0 ? b : null, keyTpmRemaining: c >= 0 ? c : null, windowResetMs: windowLeft, minute };
      }
      case 'funds':
      case 'reserved':
      case 'disabled':
        return { ok: false, reason: verdict, account: req.path[a - 1] ?? '' };
      case 'too_large':
        return { ok: false, reason: verdict, limit: a, tokens: b };
      case 'rpm':
      case 'tpm':
        return { ok: false, reason: verdict, limit: a, retryAfterMs: b };
      default:
        throw new Error(`admission script answered ${String(verdict)}`);
    }
  }
}
