import type { IncomingHttpHeaders } from 'node:http';
import { modelAllowed, type UpstreamHealthChange } from '@yugong/schemas';

export interface UpstreamKey {
  id: string;
  poolId: string;
  baseUrl: string;
  organization: string | null;
  models: string[] | null;
  weight: number;
  /** The decrypted key: lives in memory only, never logged, never in an event. */
  secret: string;
  status: 'active' | 'disabled';
  reason: string;
  cooldownUntil: number;
  limitRequests: number | null;
  remainingRequests: number | null;
  limitTokens: number | null;
  remainingTokens: number | null;
  /** When the remaining figures above are reset upstream (ms since the epoch); past it they no longer hold. */
  requestsResetAt: number;
  tokensResetAt: number;
  inFlight: number;
}

/** A health change another node must hear about within a second (it travels in a change notice). */
export type HealthChange = UpstreamHealthChange;

/** "6m0s", "1.5s", "120ms", "1h2m3s" → ms; null if unreadable. */
export function parseResetDuration(text: string | undefined): number | null {
  if (!text) return null;
  let total = 0;
  let matched = false;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    matched = true;
    const v = Number(m[1]);
    total += m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : m[2] === 'm' ? v * 60_000 : v * 3_600_000;
  }
  return matched ? Math.ceil(total) : null;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function numberHeader(headers: IncomingHttpHeaders, name: string): number | null {
  const v = header(headers, name);
  if (v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** How long upstream asked us to wait: retry-after-ms, retry-after, then the reset headers. */
export function retryAfterMs(headers: IncomingHttpHeaders): number | null {
  const ms = numberHeader(headers, 'retry-after-ms');
  if (ms !== null) return ms;
  const s = numberHeader(headers, 'retry-after');
  if (s !== null) return s * 1000;
  const resets = [parseResetDuration(header(headers, 'x-ratelimit-reset-requests')), parseResetDuration(header(headers, 'x-ratelimit-reset-tokens'))].filter((x): x is number => x !== null);
  return resets.length ? Math.max(...resets) : null;
}

type Learned = 'cooldownUntil' | 'limitRequests' | 'remainingRequests' | 'limitTokens' | 'remainingTokens' | 'requestsResetAt' | 'tokensResetAt' | 'inFlight';

/**
 * Upstream keys held in memory and picked per attempt: healthy keys that serve the model,
 * preferring the most remaining requests/tokens from the last x-ratelimit-* headers (until
 * their reset time), weighted, and the fewest requests in flight; among equals, at random.
 */
export class UpstreamPool {
  private readonly keys = new Map<string, UpstreamKey>();
  private readonly orgCooldowns = new Map<string, number>();

  constructor(
    private readonly onHealthChange: (change: HealthChange) => void = () => undefined,
    private readonly random: () => number = Math.random,
  ) {}

  upsert(k: Omit<UpstreamKey, Learned>): void {
    const prev = this.keys.get(k.id);
    this.keys.set(k.id, {
      cooldownUntil: 0,
      limitRequests: null,
      remainingRequests: null,
      limitTokens: null,
      remainingTokens: null,
      requestsResetAt: 0,
      tokensResetAt: 0,
      inFlight: 0,
      ...prev,
      ...k,
    });
  }

  remove(id: string): void {
    this.keys.delete(id);
  }

  get(id: string): UpstreamKey | undefined {
    return this.keys.get(id);
  }

  all(): UpstreamKey[] {
    return [...this.keys.values()];
  }

  private cooling(k: UpstreamKey, now: number): boolean {
    return k.cooldownUntil > now || (k.organization !== null && (this.orgCooldowns.get(k.organization) ?? 0) > now);
  }

  /** The share of its limits a key has left; figures learned before their reset time no longer count. */
  private headroom(k: UpstreamKey, now: number): number {
    const frac = (rem: number | null, lim: number | null, resetAt: number) => (rem === null || !lim || now >= resetAt ? 1 : Math.max(0, rem) / lim);
    return Math.min(frac(k.remainingRequests, k.limitRequests, k.requestsResetAt), frac(k.remainingTokens, k.limitTokens, k.tokensResetAt));
  }

  pick(model: string, exclude: ReadonlySet<string>, now = Date.now()): UpstreamKey | null {
    let best: UpstreamKey | null = null;
    let bestScore = -1;
    let ties = 0;
    for (const k of this.keys.values()) {
      if (k.status !== 'active' || exclude.has(k.id) || !modelAllowed(k.models, model) || this.cooling(k, now)) continue;
      const score = (k.weight * (0.001 + this.headroom(k, now))) / (1 + k.inFlight);
      if (score > bestScore * (1 + 1e-9)) {
        best = k;
        bestScore = score;
        ties = 1;
      } else if (score >= bestScore * (1 - 1e-9) && this.random() * ++ties < 1) {
        // Each of the equally good keys is kept with probability 1/ties: an even spread.
        best = k;
      }
    }
    return best;
  }

  /** When the soonest cooling key that could serve the model is free again (ms from now). */
  soonestAvailableIn(model: string, exclude: ReadonlySet<string>, now = Date.now()): number | null {
    let soonest: number | null = null;
    for (const k of this.keys.values()) {
      if (k.status !== 'active' || exclude.has(k.id) || !modelAllowed(k.models, model)) continue;
      const until = Math.max(k.cooldownUntil, k.organization ? (this.orgCooldowns.get(k.organization) ?? 0) : 0);
      const wait = Math.max(0, until - now);
      if (soonest === null || wait < soonest) soonest = wait;
    }
    return soonest;
  }

  /** Learns the key's headroom from a response's x-ratelimit-* headers. */
  observe(id: string, headers: IncomingHttpHeaders, now = Date.now()): void {
    const k = this.keys.get(id);
    if (!k) return;
    const lr = numberHeader(headers, 'x-ratelimit-limit-requests');
    if (lr === null) return;
    k.limitRequests = lr;
    k.remainingRequests = numberHeader(headers, 'x-ratelimit-remaining-requests');
    k.limitTokens = numberHeader(headers, 'x-ratelimit-limit-tokens');
    k.remainingTokens = numberHeader(headers, 'x-ratelimit-remaining-tokens');
    // Without a reset time the figures hold for a minute, OpenAI's window.
    k.requestsResetAt = now + (parseResetDuration(header(headers, 'x-ratelimit-reset-requests')) ?? 60_000);
    k.tokensResetAt = now + (parseResetDuration(header(headers, 'x-ratelimit-reset-tokens')) ?? 60_000);
  }

  /** Cools a key (or its whole organization, whose limits its keys share) until `until`. */
  cooldown(id: string, until: number, orgWide: boolean, share = true): void {
    const k = this.keys.get(id);
    if (!k) return;
    if (orgWide && k.organization) {
      this.coolOrganization(k.organization, until, share);
      return;
    }
    if (until <= k.cooldownUntil) return;
    k.cooldownUntil = until;
    if (share) this.onHealthChange({ kind: 'cooldown', keyId: id, until });
  }

  coolOrganization(org: string, until: number, share = true): void {
    if (until <= (this.orgCooldowns.get(org) ?? 0)) return;
    this.orgCooldowns.set(org, until);
    if (share) this.onHealthChange({ kind: 'org-cooldown', organization: org, until });
  }

  /** A change heard from another node: applied without being announced again. */
  applyRemote(change: HealthChange): void {
    if (change.kind === 'cooldown') this.cooldown(change.keyId, change.until, false, false);
    else this.coolOrganization(change.organization, change.until, false);
  }

  disable(id: string, reason: string): void {
    const k = this.keys.get(id);
    if (!k) return;
    k.status = 'disabled';
    k.reason = reason;
  }
}
