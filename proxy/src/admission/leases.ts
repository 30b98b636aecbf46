import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { leaseHoldId } from '@yugong/schemas';
import type { AdmissionRequest, AdmissionScripts, Refusal, Verdict } from './admit.js';

export type Admission =
  | {
      ok: true;
      /** What the usage event names, so the ledger settles against it. */
      holdId: string;
      keyRpmRemaining: number | null;
      keyTpmRemaining: number | null;
      windowResetMs: number;
      /**
       * Called when the request's outcome is known (only the first call counts): its cost per
       * account of the path, or null when it is unknown (the whole hold is then taken as
       * spent). Resolves once the funds it did not use can admit the next request.
       */
      done(costs: readonly bigint[] | null): Promise<void>;
    }
  | Refusal;

export interface Admitter {
  admit(req: AdmissionRequest): Promise<Admission>;
  /** A change to the account (limits, multiplier, status): its open leases admit no more. */
  forgetAccount(accountId: string): void;
  /** A change to the API key (limits, status): its open lease admits no more. */
  forgetKey(keyId: string): void;
  /** After a lost subscription, which may have missed notices: close every lease. */
  forgetAll(): void;
  /** Admits no more under any lease and waits until every lease has been given back. */
  close(): Promise<void>;
}

export interface LeaseSettings {
  /** How long a node admits under one lease; 0 turns leases off. */
  windowMs: number;
  /** A lease takes at most 1/share of an account's funds or of a window's remainder. */
  share: number;
  minUnits: number;
  maxUnits: number;
}

export const DEFAULT_LEASES: LeaseSettings = { windowMs: 2_000, share: 4, minUnits: 4, maxUnits: 1024 };

interface Lease {
  id: string;
  root: string;
  path: string[];
  keyId: string;
  minute: number;
  closesAt: number;
  units: number;
  /**
   * Per account: the slice less what requests in flight may cost and what finished ones did;
   * once none is in flight, exactly what the node gives back.
   */
  left: bigint[];
  requestsLeft: number;
  tokensLeft: number;
  /** The key's remaining requests/tokens in the window when the lease was granted, after it. */
  keyRpmBase: number | null;
  keyTpmBase: number | null;
  inFlight: number;
  closed: boolean;
  timer: NodeJS.Timeout;
}

const WINDOW_MS = 60_000;
const SHRINK_WAIT_MS = 2_000;

/**
 * A request the script held for alone: the ledger settles its hold, and once its cost is
 * known the hold comes down to it at once (a sequential client near the end of its funds is
 * not refused for what its finished request no longer needs).
 */
function heldAlone(scripts: AdmissionScripts, log: Logger, req: AdmissionRequest, v: Verdict): Admission {
  if (!v.ok) return v;
  let finished = false;
  return {
    ok: true,
    holdId: req.holdId,
    keyRpmRemaining: v.keyRpmRemaining,
    keyTpmRemaining: v.keyTpmRemaining,
    windowResetMs: v.windowResetMs,
    async done(costs) {
      if (finished || costs === null) return;
      finished = true;
      // At most SHRINK_WAIT_MS before the answer ends: a slow Redis must not hold every answer; the ledger settles the hold anyway.
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        scripts.shrinkHold({ root: req.root, path: req.path, id: req.holdId, costs: req.amounts.map((a, i) => costs[i] ?? a) }),
        new Promise<void>((resolve) => {
          t = setTimeout(resolve, SHRINK_WAIT_MS);
        }),
      ])
        .catch((err: unknown) => log.error({ err: (err as Error).message, holdId: req.holdId }, 'hold not brought down to its cost; the ledger settles it'))
        .finally(() => clearTimeout(t));
    },
  };
}

/**
 * Admission in memory for accounts with ample funds. A node leases a slice of an API key's
 * account path (funds of every account, requests and tokens of every window) in the same
 * atomic script that would otherwise hold for one request, admits against it without a
 * round trip, and gives back what it did not use when the slice closes (its window ends, it
 * is exhausted, the account changes or the node stops) and its last request has finished.
 * Every lease is a hold in Redis, so what all nodes admit together never exceeds the funds;
 * near the end of the funds or of a window the script declines to lease and the request is
 * decided alone, as without leases. Expected refusals are values, a Redis failure throws.
 */
export function createAdmitter(deps: { scripts: AdmissionScripts; nodeId: string; leases: LeaseSettings; log: Logger; now?: () => number }): Admitter {
  const { scripts, leases: cfg, log } = deps;
  const now = deps.now ?? Date.now;
  const open = new Map<string, Lease>();
  const pending = new Map<string, Promise<unknown>>();
  /** Units the next lease of a key asks for: doubled when one ran out early, the default again when one idled. */
  const sizes = new Map<string, number>();
  const defaultUnits = cfg.minUnits * 4;
  const returning = new Set<Promise<void>>();
  let seq = 0;
  let stopped = false;

  function giveBack(l: Lease): void {
    const unused = l.left.map((x) => (x > 0n ? x : 0n));
    const p = scripts
      .returnLease({ root: l.root, path: l.path, keyId: l.keyId, id: l.id, minute: l.minute, unusedRequests: l.requestsLeft, unusedTokens: l.tokensLeft, unused })
      .catch((err: unknown) => log.error({ err: (err as Error).message, leaseId: l.id }, 'lease not given back; it is released when it expires'))
      .finally(() => returning.delete(p));
    returning.add(p);
  }

  function close(l: Lease): void {
    if (l.closed) return;
    l.closed = true;
    clearTimeout(l.timer);
    if (open.get(l.keyId) === l) open.delete(l.keyId);
    // A lease that was used up before its window ended asks for more next time.
    const used = l.units - l.requestsLeft;
    const early = now() < l.closesAt && l.inFlight + used > 0;
    const next = Math.min(cfg.maxUnits, early ? l.units * 2 : used * 2);
    // Only keys busy in their last window keep a size of their own: the map stays as small as the traffic.
    if (next > defaultUnits) sizes.set(l.keyId, next);
    else sizes.delete(l.keyId);
    if (l.inFlight === 0) giveBack(l);
  }

  function take(l: Lease, req: AdmissionRequest, t: number): Admission | null {
    if (l.closed || t >= l.closesAt || l.requestsLeft < 1 || l.tokensLeft < req.tokens || req.amounts.some((a, i) => (l.left[i] ?? 0n) < a)) return null;
    l.requestsLeft -= 1;
    l.tokensLeft -= req.tokens;
    req.amounts.forEach((a, i) => {
      l.left[i] = (l.left[i] ?? 0n) - a;
    });
    l.inFlight += 1;
    let finished = false;
    return {
      ok: true,
      holdId: l.id,
      keyRpmRemaining: l.keyRpmBase === null ? null : l.keyRpmBase + l.requestsLeft,
      keyTpmRemaining: l.keyTpmBase === null ? null : l.keyTpmBase + l.tokensLeft,
      windowResetMs: (l.minute + 1) * WINDOW_MS - t,
      async done(costs) {
        if (finished) return;
        finished = true;
        l.inFlight -= 1;
        req.amounts.forEach((a, i) => {
          // What the request did not cost of its hold can admit the next ones.
          l.left[i] = (l.left[i] ?? 0n) + a - (costs?.[i] ?? a);
        });
        if (l.closed && l.inFlight === 0) giveBack(l);
      },
    };
  }

  async function lease(req: AdmissionRequest): Promise<Admission> {
    const t = req.now ?? now();
    const units = sizes.get(req.keyId) ?? defaultUnits;
    const id = leaseHoldId(deps.nodeId, seq++, randomBytes(4).toString('hex'));
    const minute = Math.floor(t / WINDOW_MS);
    const closesAt = Math.min(t + cfg.windowMs, (minute + 1) * WINDOW_MS);
    const v = await scripts.admit({ ...req, now: t }, { id, expiresAt: closesAt + req.holdTtlMs, units, minUnits: cfg.minUnits, share: cfg.share });
    if (!v.ok) return v;
    if (v.kind === 'hold') return heldAlone(scripts, log, req, v);
    const l: Lease = {
      id,
      root: req.root,
      path: req.path,
      keyId: req.keyId,
      minute: v.minute,
      closesAt,
      units: v.units,
      left: req.amounts.map((a) => a * BigInt(v.units)),
      requestsLeft: v.units,
      tokensLeft: req.tokens * v.units,
      keyRpmBase: v.keyRpmRemaining,
      keyTpmBase: v.keyTpmRemaining,
      inFlight: 0,
      closed: false,
      timer: setTimeout(() => close(l), Math.max(0, closesAt - t)),
    };
    l.timer.unref();
    const previous = open.get(req.keyId);
    if (previous) close(previous);
    open.set(req.keyId, l);
    // The script counted this request as one of the lease's units, so it fits.
    const admitted = take(l, req, t) as Admission;
    if (stopped) close(l);
    return admitted;
  }

  return {
    async admit(req) {
      const hold = async () => heldAlone(scripts, log, req, await scripts.admit(req));
      if (cfg.windowMs <= 0 || stopped) return hold();
      // Requests that arrive while this key's lease is being asked for wait for it, once.
      for (let waited = 0; ; waited++) {
        const current = open.get(req.keyId);
        if (current) {
          const taken = take(current, req, req.now ?? now());
          if (taken) return taken;
          close(current);
        }
        const asking = pending.get(req.keyId);
        if (!asking || waited > 0) break;
        await asking;
      }
      if (pending.has(req.keyId)) return hold();
      const asked = lease(req);
      const settled = asked.catch(() => undefined);
      pending.set(req.keyId, settled);
      void settled.finally(() => pending.get(req.keyId) === settled && pending.delete(req.keyId));
      return asked;
    },
    forgetAccount(accountId) {
      for (const l of [...open.values()]) if (l.path.includes(accountId)) close(l);
    },
    forgetKey(keyId) {
      const l = open.get(keyId);
      if (l) close(l);
    },
    forgetAll() {
      for (const l of [...open.values()]) close(l);
    },
    async close() {
      stopped = true;
      for (const l of [...open.values()]) close(l);
      // Leases with requests in flight are given back as those finish: the proxy drains first,
      // and what a stuck request keeps is released when its lease expires.
      while (returning.size > 0) await Promise.all([...returning]);
    },
  };
}
