import type { IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { Attempt } from '@yugong/schemas';
import { clientErrors, type ApiError } from '../http/errors.js';
import { retryAfterMs, type UpstreamPool, type UpstreamKey } from '../pool/pool.js';

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** The part after /v1, with the query string: "/chat/completions". */
  suffix: string;
  model: string;
  body: Buffer | null;
  contentType: string | undefined;
  extraHeaders: Record<string, string>;
  deadline: number;
  signal: AbortSignal;
}

export type Forwarded =
  | { ok: true; key: UpstreamKey; status: number; headers: IncomingHttpHeaders; body: Dispatcher.ResponseData['body']; attempts: Attempt[] }
  | { ok: false; error: ApiError; attempts: Attempt[]; lastKey: UpstreamKey | null };

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
  | { kind: 'return' }
  | { kind: 'retry'; cooldownMs: number; orgWide: boolean; disable?: string; outcome: Attempt['outcome']; errorCode: string | null };

const SERVER_ERROR_COOLDOWN_MS = 1_000;

/** What an upstream answer means for this attempt and for the key that gave it. */
export function classify(status: number, headers: IncomingHttpHeaders, errorBody: string): Verdict {
  if (status < 400) return { kind: 'return' };
  let code: string | null = null;
  let type: string | null = null;
  try {
    const e = (JSON.parse(errorBody) as { error?: { code?: unknown; type?: unknown } }).error;
    code = typeof e?.code === 'string' ? e.code : null;
    type = typeof e?.type === 'string' ? e.type : null;
  } catch {
    // not JSON (a proxy's HTML page): the status decides
  }
  if (status === 401) return { kind: 'retry', cooldownMs: 0, orgWide: false, disable: 'invalid_api_key', outcome: 'fatal', errorCode: code ?? 'invalid_api_key' };
  if (status === 429 && (code === 'insufficient_quota' || type === 'insufficient_quota')) {
    return { kind: 'retry', cooldownMs: 0, orgWide: false, disable: 'insufficient_quota', outcome: 'fatal', errorCode: 'insufficient_quota' };
  }
  if (status === 429) {
    // OpenAI's limits belong to the organization, so every key of it waits.
    return { kind: 'retry', cooldownMs: retryAfterMs(headers) ?? 1_000, orgWide: true, outcome: 'retryable', errorCode: code ?? 'rate_limit_exceeded' };
  }
  if (status === 403) return { kind: 'retry', cooldownMs: 60_000, orgWide: false, outcome: 'retryable', errorCode: code ?? 'forbidden' };
  if (status === 408 || status >= 500) return { kind: 'retry', cooldownMs: SERVER_ERROR_COOLDOWN_MS, orgWide: false, outcome: 'retryable', errorCode: code ?? `http_${status}` };
  return { kind: 'return' };
}

export interface Forwarder {
  forward(req: UpstreamRequest): Promise<Forwarded>;
  close(): Promise<void>;
}

export function createForwarder(pool: UpstreamPool, policy: RetryPolicy, hooks: { onDisable(key: UpstreamKey, reason: string): void }): Forwarder {
  const dispatchers = new Map<string, Pool>();
  const dispatcher = (origin: string) => {
    let d = dispatchers.get(origin);
    if (!d) {
      d = new Pool(origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
      dispatchers.set(origin, d);
    }
    return d;
  };

  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });

  return {
    async forward(req) {
      const attempts: Attempt[] = [];
      const tried = new Set<string>();
      let lastError: ApiError = clientErrors.noUpstream(req.model);
      let lastKey: UpstreamKey | null = null;
      for (let n = 1; n <= policy.maxAttempts; n++) {
        if (req.signal.aborted) break;
        // Another key if there is one; otherwise the same keys again once their cooldown ends.
        const none = new Set<string>();
        let key = pool.pick(req.model, tried) ?? pool.pick(req.model, none);
        if (!key) {
          const wait = pool.soonestAvailableIn(req.model, none);
          if (wait !== null) lastError = clientErrors.noUpstream(req.model, Math.ceil(wait / 1000));
          if (wait === null || wait > policy.maxCooldownWaitMs || Date.now() + wait >= req.deadline) break;
          await sleep(wait + 5, req.signal);
          key = pool.pick(req.model, none);
          if (!key) break;
        }
        if (n > 1) {
          const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 2));
          await sleep(Math.random() * cap, req.signal);
        }
        lastKey = key;
        tried.add(key.id);
        const url = new URL(key.baseUrl);
        const path = url.pathname.replace(/\/+$/, '') + req.suffix;
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
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            key.inFlight--;
          }
        };
        try {
          const res = await dispatcher(url.origin).request({
            method: req.method,
            path,
            headers,
            body: req.body ?? undefined,
            headersTimeout: Math.min(policy.headersTimeoutMs, remaining),
            bodyTimeout: policy.headersTimeoutMs,
            signal: req.signal,
          });
          pool.observe(key.id, res.headers);
          const verdict = res.statusCode >= 400 ? classify(res.statusCode, res.headers, await res.body.text()) : classify(res.statusCode, res.headers, '');
          if (verdict.kind === 'return') {
            attempts.push({ upstreamKeyId: key.id, status: res.statusCode, outcome: res.statusCode < 400 ? 'ok' : 'fatal', latencyMs: Date.now() - started, errorCode: null });
            res.body.once('close', release);
            res.body.once('end', release);
            res.body.once('error', release);
            return { ok: true, key, status: res.statusCode, headers: res.headers, body: res.body, attempts };
          }
          release();
          attempts.push({ upstreamKeyId: key.id, status: res.statusCode, outcome: verdict.outcome, latencyMs: Date.now() - started, errorCode: verdict.errorCode });
          if (verdict.disable) {
            pool.disable(key.id, verdict.disable);
            hooks.onDisable(key, verdict.disable);
          } else if (verdict.cooldownMs > 0) {
            pool.cooldown(key.id, Date.now() + verdict.cooldownMs, verdict.orgWide);
          }
          lastError = res.statusCode === 429 ? clientErrors.noUpstream(req.model) : clientErrors.upstreamFailed();
        } catch (err) {
          release();
          if (req.signal.aborted) break;
          const e = err as { code?: string; name?: string };
          const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.name === 'TimeoutError';
          attempts.push({ upstreamKeyId: key.id, status: 0, outcome: timeout ? 'timeout' : 'connect_error', latencyMs: Date.now() - started, errorCode: e.code ?? e.name ?? 'error' });
          pool.cooldown(key.id, Date.now() + SERVER_ERROR_COOLDOWN_MS, false);
          lastError = timeout ? clientErrors.upstreamTimeout() : clientErrors.upstreamFailed();
        }
      }
      return { ok: false, error: lastError, attempts, lastKey };
    },
    async close() {
      await Promise.all([...dispatchers.values()].map((d) => d.close()));
    },
  };
}
