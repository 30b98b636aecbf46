/** What a test scripts for one upstream API key. Everything is optional. */
export interface KeyBehaviour {
  /** false: every request answers 401 invalid_api_key. */
  valid?: boolean;
  /** The organization reported in `openai-organization` and whose limits the key shares. */
  organization?: string;
  /** Delay before the response starts (headers included). */
  latencyMs?: number;
  /** Delay between streamed chunks (token cadence). */
  tokenDelayMs?: number;
  /** Per-minute limits enforced for this key (429 rate_limit_exceeded when exceeded). */
  rpm?: number;
  tpm?: number;
  /** Cut the connection after this many streamed content chunks (a stream dying mid-way). */
  cutStreamAfterChunks?: number;
  /** Never answer: the request hangs until the client gives up. */
  hang?: boolean;
  /** Cached prompt tokens to report (capped at the prompt's size). */
  cachedTokens?: number;
  /** The assistant's text; by default a deterministic sentence sized by max_tokens. */
  reply?: string;
  /** Only these models exist for the key (404 model_not_found for others). */
  models?: string[];
  /**
   * false: the key's organization has no quota left. As at OpenAI, what is billed answers 429
   * insufficient_quota while what is free (listing models) still answers 200.
   */
  quota?: boolean;
}

export type FailureKind = 'rate_limit' | 'insufficient_quota' | 'server_error' | 'bad_gateway' | 'overloaded' | 'invalid_key' | 'timeout';

/** A scripted failure answered instead of the next `times` requests of a key. */
export interface Failure {
  kind: FailureKind;
  /** How many requests it answers (default 1; Infinity for always). */
  times?: number;
  /** Seconds in `retry-after` (and `retry-after-ms`) on 429s. */
  retryAfterS?: number;
}

export const statusOf: Record<FailureKind, number> = {
  rate_limit: 429,
  insufficient_quota: 429,
  server_error: 500,
  bad_gateway: 502,
  overloaded: 503,
  invalid_key: 401,
  timeout: 504,
};

/** Default limits: OpenAI's tier-5 figures for gpt-4o-mini, enforced like OpenAI does. */
export const DEFAULT_RPM = 30_000;
export const DEFAULT_TPM = 150_000_000;
const WINDOW_MS = 60_000;

interface Window {
  start: number;
  requests: number;
  tokens: number;
}

export interface RateVerdict {
  headers: Record<string, string>;
  exceeded: null | { kind: 'requests' | 'tokens'; limit: number; used: number; retryAfterS: number } | { kind: 'too_large'; limit: number; requested: number };
}

/** OpenAI writes durations like "1s", "6m0s", "120ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

export class MockState {
  readonly keys = new Map<string, KeyBehaviour>();
  /** Organizations with limits of their own, shared by every key of the organization. */
  private readonly orgs = new Map<string, { rpm: number; tpm: number }>();
  private readonly failures = new Map<string, Failure[]>();
  private readonly windows = new Map<string, Window>();

  script(key: string, behaviour: KeyBehaviour): void {
    this.keys.set(key, { ...this.keys.get(key), ...behaviour });
  }

  scriptOrganization(org: string, limits: { rpm?: number; tpm?: number }): void {
    this.orgs.set(org, { rpm: limits.rpm ?? DEFAULT_RPM, tpm: limits.tpm ?? DEFAULT_TPM });
  }

  fail(key: string, failure: Failure): void {
    const queue = this.failures.get(key) ?? [];
    queue.push({ times: 1, ...failure });
    this.failures.set(key, queue);
  }

  behaviour(key: string): KeyBehaviour {
    return this.keys.get(key) ?? {};
  }

  /** The failure to answer with now, if one is scripted; consumes one of its `times`. */
  takeFailure(key: string): Failure | undefined {
    const queue = this.failures.get(key);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    const left = (head.times ?? 1) - 1;
    if (left <= 0) queue.shift();
    else queue[0] = { ...head, times: left };
    return head;
  }

  /**
   * Counts one request of `tokens` against the key's window (and its organization's, when
   * the organization has its own script), returning the x-ratelimit-* headers to send.
   */
  admit(key: string, tokens: number, now = Date.now()): RateVerdict {
    const b = this.behaviour(key);
    const org = b.organization ? this.orgs.get(b.organization) : undefined;
    const subject = org ? `org:${b.organization}` : `key:${key}`;
    const limits = org ?? { rpm: b.rpm ?? DEFAULT_RPM, tpm: b.tpm ?? DEFAULT_TPM };
    let w = this.windows.get(subject);
    if (!w || now - w.start >= WINDOW_MS) {
      w = { start: now, requests: 0, tokens: 0 };
      this.windows.set(subject, w);
    }
    const resetMs = w.start + WINDOW_MS - now;
    let exceeded: RateVerdict['exceeded'] = null;
    // OpenAI answers a request whose tokens alone exceed the TPM limit with "Request too
    // large" (429, type tokens): no window would ever take it, and nothing is counted.
    if (tokens > limits.tpm) exceeded = { kind: 'too_large', limit: limits.tpm, requested: tokens };
    else if (w.requests + 1 > limits.rpm) {
      exceeded = { kind: 'requests', limit: limits.rpm, used: w.requests, retryAfterS: Math.ceil(resetMs / 1000) };
    } else if (w.tokens + tokens > limits.tpm) {
      exceeded = { kind: 'tokens', limit: limits.tpm, used: w.tokens, retryAfterS: Math.ceil(resetMs / 1000) };
    } else {
      w.requests += 1;
      w.tokens += tokens;
    }
    return {
      exceeded,
      headers: {
        'x-ratelimit-limit-requests': String(limits.rpm),
        'x-ratelimit-limit-tokens': String(limits.tpm),
        'x-ratelimit-remaining-requests': String(Math.max(0, limits.rpm - w.requests)),
        'x-ratelimit-remaining-tokens': String(Math.max(0, limits.tpm - w.tokens)),
        'x-ratelimit-reset-requests': formatDuration(resetMs),
        'x-ratelimit-reset-tokens': formatDuration(resetMs),
      },
    };
  }

  reset(): void {
    this.keys.clear();
    this.orgs.clear();
    this.failures.clear();
    this.windows.clear();
  }
}
