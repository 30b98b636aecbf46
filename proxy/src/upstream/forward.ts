import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { Attempt } from '@yugong/schemas';
import { clientErrors, type ApiError } from '../errors.js';
import { retryAfterMs, type UpstreamPool, type UpstreamKey } from '../pool/pool.js';
import { type Cancellation, CancelledError } from './cancellation.js';
import { Exchange, type UpstreamBody } from './exchange.js';

export type { BodySink, UpstreamBody } from './exchange.js';

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** The part after /v1, with the query string: "/chat/completions". */
  suffix: string;
  model: string;
  body: Buffer | null;
  contentType: string | undefined;
  extraHeaders: Record<string, string>;
  deadline: number;
  /** Cancelled when the client goes away: waits end, the attempt in flight is aborted. */
  cancel: Cancellation;
}

export type Forwarded =
  /** A success: the body is still on its way. */
  | { kind: 'body'; key: UpstreamKey; status: number; headers: IncomingHttpHeaders; body: UpstreamBody; attempts: Attempt[] }
  /** Upstream refused the request itself (a deterministic 4xx): its answer, as it sent it. */
  | { kind: 'refused'; key: UpstreamKey; status: number; headers: IncomingHttpHeaders; text: string; errorCode: string; attempts: Attempt[] }
  | { kind: 'failed'; error: ApiError; attempts: Attempt[]; lastKey: UpstreamKey | null };

export interface RetryPolicy {
  maxAttempts: number;
  headersTimeoutMs: number;
  /** Backoff before attempt n (n ≥ 2): full jitter, capped. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long a request may wait for a cooling key before it gets a 503 with retry-after. */
  maxCooldownWaitMs: number;
}

type Verdict =
  /** The answer goes to the client; `errorCode` names an error answer (its code, or http_<status>). */
  { kind: 'return'; errorCode: string | null } | { kind: 'retry'; cooldownMs: number; orgWide: boolean; disable?: string; outcome: Attempt['outcome']; errorCode: string | null };

const SERVER_ERROR_COOLDOWN_MS = 1_000;

/** What an upstream answer means for this attempt and for the key that gave it. */
export function classify(status: number, headers: IncomingHttpHeaders, errorBody: string): Verdict {
  if (status < 400) return { kind: 'return', errorCode: null };
  let code: string | null = null;
  let type: string | null = null;
  let message = '';
  try {
    const e = (JSON.parse(errorBody) as { error?: { code?: unknown; type?: unknown; message?: unknown } }).error;
    code = typeof e?.code === 'string' ? e.code : null;
    type = typeof e?.type === 'string' ? e.type : null;
    message = typeof e?.message === 'string' ? e.message : '';
  } catch {
    // not JSON (a proxy's HTML page): the status decides
  }
  if (status === 401) return { kind: 'retry', cooldownMs: 0, orgWide: false, disable: 'invalid_api_key', outcome: 'fatal', errorCode: code ?? 'invalid_api_key' };
  if (status === 429 && (code === 'insufficient_quota' || type === 'insufficient_quota')) {
    return { kind: 'retry', cooldownMs: 0, orgWide: false, disable: 'insufficient_quota', outcome: 'fatal', errorCode: 'insufficient_quota' };
  }
  // The request alone is above the organization's TPM: the caller's to fix, so it is returned,
  // not retried on other keys, and says nothing about the key's health (one tenant's oversized
  // requests must not cool the pool for everyone).
  if (status === 429 && /^Request too large\b/.test(message)) return { kind: 'return', errorCode: 'request_too_large' };
  if (status === 429) {
    // OpenAI's limits belong to the organization, so every key of it waits.
    return { kind: 'retry', cooldownMs: retryAfterMs(headers) ?? 1_000, orgWide: true, outcome: 'retryable', errorCode: code ?? 'rate_limit_exceeded' };
  }
  if (status === 403) return { kind: 'retry', cooldownMs: 60_000, orgWide: false, outcome: 'retryable', errorCode: code ?? 'forbidden' };
  if (status === 408 || status >= 500) return { kind: 'retry', cooldownMs: SERVER_ERROR_COOLDOWN_MS, orgWide: false, outcome: 'retryable', errorCode: code ?? `http_${status}` };
  return { kind: 'return', errorCode: code ?? `http_${status}` };
}

export interface Forwarder {
  forward(req: UpstreamRequest): Promise<Forwarded>;
  close(): Promise<void>;
}

/** Where a key's base URL sends requests: parsed once per distinct URL, not per attempt. */
interface Target {
  dispatcher: Pool;
  basePath: string;
}

export function createForwarder(pool: UpstreamPool, policy: RetryPolicy, hooks: { onDisable(key: UpstreamKey, reason: string): void }): Forwarder {
  const dispatchers = new Map<string, Pool>();
  const targets = new Map<string, Target>();
  const target = (baseUrl: string): Target => {
    let t = targets.get(baseUrl);
    if (!t) {
      const url = new URL(baseUrl);
      let d = dispatchers.get(url.origin);
      if (!d) {
        d = new Pool(url.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
        dispatchers.set(url.origin, d);
      }
      t = { dispatcher: d, basePath: url.pathname.replace(/\/+$/, '') };
      targets.set(baseUrl, t);
    }
    return t;
  };

  const sleep = (ms: number, cancel: Cancellation) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        release();
        resolve();
      }, ms);
      const release = cancel.onCancel(() => {
        clearTimeout(t);
        resolve();
      });
    });

  return {
    async forward(req) {
      const attempts: Attempt[] = [];
      const tried = new Set<string>();
      let lastError: ApiError = clientErrors.noUpstream(req.model);
      let lastKey: UpstreamKey | null = null;
      for (let n = 1; n <= policy.maxAttempts; n++) {
        if (req.cancel.cancelled) break;
        // Another key if there is one; otherwise the same keys again once their cooldown ends.
        const none = new Set<string>();
        let key = pool.pick(req.model, tried) ?? pool.pick(req.model, none);
        if (!key) {
          const wait = pool.soonestAvailableIn(req.model, none);
          if (wait !== null) lastError = clientErrors.noUpstream(req.model, Math.ceil(wait / 1000));
          if (wait === null || wait > policy.maxCooldownWaitMs || Date.now() + wait >= req.deadline) break;
          await sleep(wait + 5, req.cancel);
          key = pool.pick(req.model, none);
          if (!key) break;
        }
        if (n > 1) {
          const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 2));
          await sleep(Math.random() * cap, req.cancel);
          if (req.cancel.cancelled) break;
        }
        lastKey = key;
        tried.add(key.id);
        const { dispatcher, basePath } = target(key.baseUrl);
        const headers: Record<string, string> = {
          authorization: `Bearer ${key.secret}`,
          'user-agent': 'yugong-proxy',
          accept: 'application/json, text/event-stream',
          ...req.extraHeaders,
        };
        if (req.contentType) headers['content-type'] = req.contentType;
        if (key.organization) headers['openai-organization'] = key.organization;
        const started = Date.now();
        const remaining = req.deadline - started;
        if (remaining <= 0) {
          lastError = clientErrors.upstreamTimeout();
          break;
        }
        key.inFlight++;
        const picked = key;
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            picked.inFlight--;
          }
        };
        const exchange = new Exchange(req.cancel, release);
        dispatcher.dispatch(
          {
            method: req.method,
            path: basePath + req.suffix,
            headers,
            body: req.body,
            headersTimeout: Math.min(policy.headersTimeoutMs, remaining),
            bodyTimeout: policy.headersTimeoutMs,
          },
          exchange,
        );
        const answer = await exchange.answered;
        if (answer.kind === 'failed') {
          release();
          if (req.cancel.cancelled || answer.err instanceof CancelledError) break;
          const e = answer.err as { code?: string; name?: string };
          const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.name === 'TimeoutError';
          attempts.push({ upstreamKeyId: key.id, status: 0, outcome: timeout ? 'timeout' : 'connect_error', latencyMs: Date.now() - started, errorCode: e.code ?? e.name ?? 'error' });
          pool.cooldown(key.id, Date.now() + SERVER_ERROR_COOLDOWN_MS, false);
          lastError = timeout ? clientErrors.upstreamTimeout() : clientErrors.upstreamFailed();
          continue;
        }
        pool.observe(key.id, answer.headers);
        if (answer.kind === 'body') {
          attempts.push({ upstreamKeyId: key.id, status: answer.status, outcome: 'ok', latencyMs: Date.now() - started, errorCode: null });
          return { kind: 'body', key, status: answer.status, headers: answer.headers, body: exchange, attempts };
        }
        release();
        const verdict = classify(answer.status, answer.headers, answer.text);
        if (verdict.kind === 'return') {
          attempts.push({ upstreamKeyId: key.id, status: answer.status, outcome: 'fatal', latencyMs: Date.now() - started, errorCode: null });
          return { kind: 'refused', key, status: answer.status, headers: answer.headers, text: answer.text, errorCode: verdict.errorCode ?? `http_${answer.status}`, attempts };
        }
        attempts.push({ upstreamKeyId: key.id, status: answer.status, outcome: verdict.outcome, latencyMs: Date.now() - started, errorCode: verdict.errorCode });
        if (verdict.disable) {
          pool.disable(key.id, verdict.disable);
          hooks.onDisable(key, verdict.disable);
        } else if (verdict.cooldownMs > 0) {
          pool.cooldown(key.id, Date.now() + verdict.cooldownMs, verdict.orgWide);
        }
        lastError = answer.status === 429 ? clientErrors.noUpstream(req.model) : clientErrors.upstreamFailed();
      }
      return { kind: 'failed', error: lastError, attempts, lastKey };
    },
    async close() {
      await Promise.all([...dispatchers.values()].map((d) => d.close()));
    },
  };
}
