import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { costOf, costsForPath, makeEvent, type Attempt, type RedisClient } from '@yugong/schemas';
import type { Admitter } from '../admission/leases.js';
import type { AccountView, ClientKey } from '../auth/projections.js';
import type { ProxyConfig } from '../config.js';
import type { MeteredEndpoint } from '../endpoints/index.js';
import { clientErrors } from '../errors.js';
import type { EventSink } from '../events/sink.js';
import { billedUsage } from '../metering/bill.js';
import type { ProxyMetrics } from '../metrics.js';
import type { PriceBook } from '../prices.js';
import { Cancellation } from '../upstream/cancellation.js';
import type { Forwarder } from '../upstream/forward.js';
import { answerClient } from './answer.js';
import { corsHeaders, type ApiCall } from './call.js';
import { claimIdempotency, idempotencyKeyOf, type IdempotentRequest } from './idempotency.js';
import { readApiRequest, type ApiRequest } from './read-request.js';

export interface MeteredDeps {
  config: ProxyConfig;
  redis: RedisClient;
  admitter: Admitter;
  forwarder: Forwarder;
  prices: PriceBook;
  sink: EventSink;
  metrics: ProxyMetrics;
  log: Logger;
}

/** What makes two requests the same: the endpoint and the body (for forms, the fields and files, not the boundary). */
function requestFingerprint(endpoint: MeteredEndpoint, request: ApiRequest): Buffer {
  const { multipart } = request;
  if (!multipart) return Buffer.concat([Buffer.from(`${endpoint.name}\n`), request.bytes]);
  const files = multipart.files.map((f) => [f.field, f.filename, createHash('sha256').update(f.data).digest('hex')]);
  return Buffer.from(JSON.stringify([endpoint.name, Object.entries(multipart.fields).sort(), files]));
}

/** The body sent upstream: a stream OpenAI reports usage for only when asked is asked, and the client does not see the extra chunk. */
function upstreamBody(endpoint: MeteredEndpoint, request: ApiRequest): { body: Buffer; stripUsage: boolean } {
  const options = (request.json.stream_options ?? {}) as Record<string, unknown>;
  if (!request.stream || !endpoint.usageOnRequest || options.include_usage === true) return { body: request.bytes, stripUsage: false };
  return { body: Buffer.from(JSON.stringify({ ...request.json, stream_options: { ...options, include_usage: true } })), stripUsage: true };
}

/**
 * A metered request, after its caller is known: read and check it, claim its
 * Idempotency-Key, hold its cost bound and take its rate limits on the whole account path,
 * forward it, answer the client, and record exactly one usage event, which also releases
 * the hold.
 */
export async function serveMetered(deps: MeteredDeps, call: ApiCall, endpoint: MeteredEndpoint, caller: { key: ClientKey; accounts: AccountView[] }, suffixAndQuery: string): Promise<void> {
  const { config, metrics } = deps;
  const { key, accounts } = caller;
  const { req, res, headers } = call;
  const read = await readApiRequest(endpoint, req, caller, { maxBodyBytes: config.maxBodyBytes, prices: deps.prices });
  if (!read.ok) return read.error ? call.fail(read.error) : undefined;
  const request = read.request;
  const { model, table } = request;

  // --- idempotency: one charge per (account, Idempotency-Key) -------------------------
  const idemKey = idempotencyKeyOf(req.headers['idempotency-key']);
  if (idemKey !== null && typeof idemKey !== 'string') return call.fail(idemKey);
  let idem: IdempotentRequest | null = null;
  if (idemKey !== null) {
    const claim = await claimIdempotency(deps.redis, {
      root: key.root,
      accountId: key.accountId,
      key: idemKey,
      fingerprint: requestFingerprint(endpoint, request),
      pendingMs: config.requestDeadlineMs + 60_000,
    });
    if (claim.kind === 'refused') return call.fail(claim.error);
    if (claim.kind === 'replay') {
      metrics.request(call.label, claim.answer.status);
      res.writeHead(claim.answer.status, { ...claim.answer.headers, ...corsHeaders(req.headers.origin), 'idempotent-replayed': 'true', 'content-length': claim.answer.body.length });
      res.end(claim.answer.body);
      return;
    }
    idem = claim.request;
  }

  // --- admission: funds and limits for the whole path, and the hold -----------------
  const hold = endpoint.hold(request, config.defaultHoldCompletionTokens);
  const listHold = costOf(table, model, hold.usage);
  if (!listHold.ok) return call.fail(clientErrors.invalidValue('size', `This image size is not available for ${model}.`));
  const multipliers = accounts.map((a) => a.multiplierPpm);
  const admission = await deps.admitter.admit({
    root: key.root,
    path: key.path,
    keyId: key.keyId,
    holdId: call.requestId,
    amounts: costsForPath(listHold.nano, multipliers),
    tokens: hold.tokens,
    keyRpm: key.rpm,
    keyTpm: key.tpm,
    holdTtlMs: config.holdTtlMs,
  });
  if (!admission.ok) {
    await idem?.release();
    if (admission.reason === 'rpm' || admission.reason === 'tpm') {
      return call.fail(clientErrors.rateLimited(admission.reason === 'rpm' ? 'requests' : 'tokens', admission.limit, Math.max(1, Math.ceil(admission.retryAfterMs / 1000))));
    }
    if (admission.reason === 'too_large') return call.fail(clientErrors.requestTooLarge(admission.limit, admission.tokens));
    if (admission.reason === 'reserved') return call.fail(clientErrors.fundsReserved(1));
    return call.fail(admission.reason === 'funds' ? clientErrors.insufficientQuota() : clientErrors.accountDisabled());
  }
  const reset = `${Math.ceil(admission.windowResetMs / 1000)}s`;
  if (key.rpm !== null)
    Object.assign(headers, { 'x-ratelimit-limit-requests': String(key.rpm), 'x-ratelimit-remaining-requests': String(admission.keyRpmRemaining ?? 0), 'x-ratelimit-reset-requests': reset });
  if (key.tpm !== null)
    Object.assign(headers, { 'x-ratelimit-limit-tokens': String(key.tpm), 'x-ratelimit-remaining-tokens': String(admission.keyTpmRemaining ?? 0), 'x-ratelimit-reset-tokens': reset });

  // From here on every outcome is recorded as exactly one usage event, which also
  // releases the hold; a lease learns the cost at once (an unknown one counts in full).
  let charged: bigint[] | null = null;
  try {
    const { body, stripUsage } = upstreamBody(endpoint, request);
    const cancel = new Cancellation();
    res.once('close', () => {
      if (!res.writableFinished) cancel.cancel();
    });
    const extraHeaders: Record<string, string> = {};
    const beta = req.headers['openai-beta'];
    if (typeof beta === 'string') extraHeaders['openai-beta'] = beta;
    const fwd = await deps.forwarder.forward({
      method: endpoint.method,
      suffix: suffixAndQuery,
      model,
      body,
      contentType: req.headers['content-type'],
      extraHeaders,
      deadline: Date.now() + config.requestDeadlineMs,
      cancel,
    });
    for (const a of fwd.attempts) metrics.attempt(a.outcome);
    await answerClient(call, endpoint, fwd, {
      stream: request.stream,
      stripUsage,
      cancel,
      idem,
      onIdempotencyError: (err) => deps.log.error({ err: err.message, requestId: call.requestId }, 'Idempotency-Key record not stored'),
      // Before the answer's last bytes: the usage event, and the hold brought down to the cost.
      settle: async (outcome) => {
        const { usage, source } = billedUsage(endpoint, request, hold, outcome);
        const priced = costOf(table, model, usage);
        const list = priced.ok ? priced.nano : 0n;
        const costs = costsForPath(list, multipliers);
        charged = costs;
        const latencyMs = Math.round(performance.now() - call.startedAt);
        metrics.request(call.label, outcome.httpStatus);
        metrics.latency(call.label, request.stream, latencyMs / 1000);
        if (outcome.ttftMs !== null) metrics.ttft(call.label, outcome.ttftMs / 1000);
        const upstreamKey = fwd.kind === 'failed' ? fwd.lastKey : fwd.key;
        const event = makeEvent('usage.recorded', {
          id: `usage:${call.requestId}`,
          source: config.nodeId,
          accountPath: key.path,
          data: {
            requestId: call.requestId,
            apiKeyId: key.keyId,
            endpoint: endpoint.name,
            model,
            status: outcome.status,
            httpStatus: outcome.httpStatus,
            errorCode: outcome.errorCode,
            stream: request.stream,
            tokens: usage.tokens,
            images: usage.images,
            imageSize: usage.imageSize,
            imageQuality: usage.imageQuality,
            audioMs: usage.audioMs,
            speechCharacters: usage.speechCharacters,
            usageSource: source,
            costs: costs.map(String),
            listCostNano: list.toString(),
            priceVersion: table.version,
            holdId: admission.holdId,
            attempts: fwd.attempts as Attempt[],
            upstreamKeyId: upstreamKey?.id ?? null,
            upstreamOrg: upstreamKey?.organization ?? null,
            latencyMs,
            ttftMs: outcome.ttftMs,
          },
        });
        // The hold comes down as the event goes out: the next request sees what this one cost.
        const [emitted] = await Promise.allSettled([deps.sink.emit(event), admission.done(costs)]);
        if (emitted.status === 'rejected') {
          metrics.eventsFailed.inc();
          deps.log.error({ err: (emitted.reason as Error).message, requestId: call.requestId }, 'usage event not journaled: the answer is cut, not completed');
          // No complete answer without its billing on disk (a full disk): the client sees a cut response.
          throw emitted.reason;
        }
      },
    });
  } finally {
    // A request that failed before it settled: an unknown cost counts in full.
    void admission.done(charged);
  }
}
