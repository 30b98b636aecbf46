import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, type ApiError } from '../errors.js';
import type { ProxyMetrics } from '../metrics.js';

/** One API request on its way through the handler: its id, the headers of its answer, and how it answers. */
export interface ApiCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Doubles as the hold id and (prefixed) as the usage event's id. */
  requestId: string;
  startedAt: number;
  /** The answer's headers so far: ours (id, CORS, rate limits), then upstream's. */
  headers: Record<string, string>;
  /** The metrics label: the endpoint's name, 'models', 'billing' or 'unknown'. */
  label: string;
  fail(e: ApiError): void;
  json(status: number, body: unknown): void;
}

export function corsHeaders(origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  return {
    'access-control-allow-origin': origin,
    vary: 'origin',
    'access-control-expose-headers':
      'x-request-id, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after',
  };
}

/** Request ids double as hold ids and (prefixed) as usage event ids. */
export function newRequestId(): string {
  // randomUUID draws from a cached entropy pool: no syscall per request. 122 random bits.
  return `req_${randomUUID().replace(/-/g, '')}`;
}

export function openCall(req: IncomingMessage, res: ServerResponse, metrics: ProxyMetrics): ApiCall {
  const requestId = newRequestId();
  const call: ApiCall = {
    req,
    res,
    requestId,
    startedAt: performance.now(),
    headers: { 'x-request-id': requestId, ...corsHeaders(req.headers.origin) },
    label: 'unknown',
    fail(e) {
      metrics.request(call.label, e.status);
      sendError(res, e, call.headers);
    },
    json(status, body) {
      const text = JSON.stringify(body);
      metrics.request(call.label, status);
      res.writeHead(status, { ...call.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  };
  return call;
}
