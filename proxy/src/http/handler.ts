import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from 'pino';
import {
  corsAllowed, costOf, costsForPath, countChatPromptTokens, isDenial, type Authenticator, countTokens, findModelPrice, makeEvent,
  type Attempt, type BillableUsage, type ChatMessageLike, type RequestStatus, type RedisClient,
} from '@yugong/schemas';
import type { Admitter } from '../admission/leases.js';
import type { AccountView, ClientKey } from '../auth/projections.js';
import type { ProxyConfig } from '../config.js';
import type { EventSink } from '../events/sink.js';
import { estimate, type Estimate } from '../metering/estimate.js';
import { SseMeter } from '../metering/sse.js';
import { readUsage, TailWindow, usageFromTail } from '../metering/usage.js';
import type { ProxyMetrics } from '../metrics.js';
import type { PriceBook } from '../prices.js';
import { Cancellation, CancelledError } from '../upstream/cancellation.js';
import type { Forwarder, UpstreamBody } from '../upstream/forward.js';
import { nestedDeeperThan, parseMultipart, readBody, type MultipartView } from './body.js';
import { billingAnswer, billingSuffixes } from './billing.js';
import { apiSuffix, findEndpoint, type EndpointDef } from './endpoints.js';
import { clientErrors, errorBody, sendError, type ApiError } from '../errors.js';
import { claimIdempotency, idempotencyKeyOf, MAX_REPLAY_BYTES, type IdempotentRequest } from './idempotency.js';
import { modelAllowed } from '@yugong/schemas';

export interface HandlerDeps {
  config: ProxyConfig;
  redis: RedisClient;
  clickhouse: ClickHouseClient | null;
  auth: Authenticator;
  admitter: Admitter;
  forwarder: Forwarder;
  prices: PriceBook;
  sink: EventSink;
  metrics: ProxyMetrics;
  log: Logger;
  draining(): boolean;
}

type Obj = Record<string, unknown>;

/** OpenAI's own schemas nest a few levels; tool parameter schemas perhaps a dozen. */
const MAX_JSON_DEPTH = 64;

/** Request ids double as hold ids and (prefixed) as usage event ids. */
export function newRequestId(): string {
  // randomUUID draws from a cached entropy pool: no syscall per request. 122 random bits.
  return `req_${randomUUID().replace(/-/g, '')}`;
}

function corsHeaders(origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  return {
    'access-control-allow-origin': origin,
    vary: 'origin',
    'access-control-expose-headers': 'x-request-id, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after',
  };
}

/** Upstream headers the client sees; everything else (organization, cookies) stays here. */
const PASSED_RESPONSE_HEADERS = ['content-type', 'content-length', 'openai-processing-ms', 'openai-version', 'content-disposition'];

function validate(endpoint: EndpointDef, json: Obj): ApiError | null {
  if ('stream' in json && typeof json.stream !== 'boolean') return clientErrors.wrongType('stream', 'a boolean');
  if (json.stream === true && !endpoint.streamable) return clientErrors.invalidValue('stream', `Streaming is not supported for ${endpoint.suffix}.`);
  for (const p of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
    if (p in json && json[p] !== null && !(Number.isInteger(json[p]) && (json[p] as number) >= 1)) return clientErrors.invalidValue(p, `Invalid '${p}': expected an integer of at least 1.`);
  }
  if ('n' in json && json.n !== null && !(Number.isInteger(json.n) && (json.n as number) >= 1 && (json.n as number) <= 128)) {
    return clientErrors.invalidValue('n', "Invalid 'n': expected an integer from 1 to 128.");
  }
  if (endpoint.name === 'chat.completions') {
    if (!Array.isArray(json.messages)) return clientErrors.wrongType('messages', 'an array of message objects');
    // As OpenAI does: each message is an object; anything else never reaches upstream.
    const bad = json.messages.findIndex((m) => typeof m !== 'object' || m === null || Array.isArray(m));
    if (bad >= 0) return clientErrors.wrongType(`messages[${bad}]`, 'an object');
  }
  if (endpoint.name === 'embeddings' && !(typeof json.input === 'string' || Array.isArray(json.input))) return clientErrors.wrongType('input', 'a string or an array');
  return null;
}

export function createApiHandler(deps: HandlerDeps) {
  const { config, log, metrics } = deps;

  function listModels(key: ClientKey, accounts: AccountView[]) {
    const table = deps.prices.current;
    const created = Math.floor(Date.parse(table.createdAt) / 1000);
    return table.models
      .map((m) => m.id)
      .filter((id) => /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/i.test(id) && modelAllowed(key.models, id) && accounts.every((a) => modelAllowed(a.models, id)))
      .map((id) => ({ id, object: 'model', created, owned_by: 'openai' }));
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> {
    const t0 = performance.now();
    const requestId = newRequestId();
    const headers: Record<string, string> = { 'x-request-id': requestId, ...corsHeaders(req.headers.origin) };
    const suffix = apiSuffix(path);
    const endpoint = findEndpoint(suffix);
    let label = endpoint?.name ?? (suffix.startsWith('/models') ? 'models' : 'unknown');
    const fail = (e: ApiError) => {
      metrics.request(label, e.status);
      sendError(res, e, headers);
    };

    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...headers,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'),
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const isModels = suffix === '/models' || suffix.startsWith('/models/');
    const isBilling = (billingSuffixes as readonly string[]).includes(suffix);
    if (!endpoint && !isModels && !isBilling) return fail(clientErrors.notFound(req.method ?? 'GET', path));
    if ((endpoint && req.method !== endpoint.method) || ((isModels || isBilling) && req.method !== 'GET')) return fail(clientErrors.methodNotAllowed(req.method ?? '', path));
    if (isBilling) label = 'billing';
    if (deps.draining()) return fail(clientErrors.overloaded());
    if (!deps.sink.accepting()) return fail(clientErrors.spoolFull());

    // --- who is calling ---------------------------------------------------------------
    const caller = await deps.auth.authenticate(req);
    if (isDenial(caller)) {
      // A page on an origin the key refuses must not read even the refusal.
      if (!corsAllowed(caller)) delete headers['access-control-allow-origin'];
      return fail(caller);
    }
    const { key, accounts } = caller;

    if (isBilling) {
      req.resume();
      const answer = await billingAnswer(suffix, new URLSearchParams(query), key, deps.redis, deps.clickhouse);
      if ('type' in answer) return fail(answer);
      const text = JSON.stringify(answer.body);
      metrics.request(label, answer.status);
      res.writeHead(answer.status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (isModels) {
      req.resume();
      const models = listModels(key, accounts);
      const id = suffix.startsWith('/models/') ? safeDecode(suffix.slice(8)) : null;
      const body = id === null ? { object: 'list', data: models } : models.find((m) => m.id === id);
      if (!body) return fail(clientErrors.unknownModel(id ?? ''));
      const text = JSON.stringify(body);
      metrics.request(label, 200);
      res.writeHead(200, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (!endpoint) return;
    label = endpoint.name;

    // --- what is asked --------------------------------------------------------------
    const read = await readBody(req, config.maxBodyBytes);
    if (!read.ok) return read.reason === 'too_large' ? fail(clientErrors.bodyTooLarge(config.maxBodyBytes)) : undefined;
    let json: Obj = {};
    let multipart: MultipartView | null = null;
    if (endpoint.body === 'json') {
      if (nestedDeeperThan(read.bytes, MAX_JSON_DEPTH)) return fail(clientErrors.tooDeep(MAX_JSON_DEPTH));
      try {
        const parsed: unknown = JSON.parse(read.bytes.toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail(clientErrors.badJson());
        json = parsed as Obj;
      } catch {
        return fail(clientErrors.badJson());
      }
    } else {
      const parsed = await parseMultipart(read.bytes, req.headers['content-type']);
      if (!parsed.ok) return fail(clientErrors.badMultipart(parsed.problem, parsed.detail));
      multipart = parsed.view;
      if (!multipart.files.some((f) => f.field === 'file' || f.field === 'image' || f.field === 'image[]')) {
        return fail(clientErrors.invalidValue(endpoint.name.startsWith('audio') ? 'file' : 'image', `Missing required parameter: '${endpoint.name.startsWith('audio') ? 'file' : 'image'}'.`));
      }
    }
    const rawModel = endpoint.body === 'json' ? json.model : multipart?.fields.model;
    if (rawModel !== undefined && typeof rawModel !== 'string') return fail(clientErrors.wrongType('model', 'a string'));
    const model = rawModel || endpoint.defaultModel;
    if (!model) return fail(clientErrors.missingModel());
    const invalid = endpoint.body === 'json' ? validate(endpoint, json) : null;
    if (invalid) return fail(invalid);
    const table = deps.prices.current;
    if (!findModelPrice(table, model)) return fail(clientErrors.unknownModel(model));
    if (!modelAllowed(key.models, model) || accounts.some((a) => !modelAllowed(a.models, model))) return fail(clientErrors.modelNotAllowed(model));

    // --- idempotency: one charge per (account, Idempotency-Key) -------------------------
    const idemKey = idempotencyKeyOf(req.headers['idempotency-key']);
    if (idemKey !== null && typeof idemKey !== 'string') return fail(idemKey);
    let idem: IdempotentRequest | null = null;
    if (idemKey !== null) {
      const claim = await claimIdempotency(deps.redis, {
        root: key.root, accountId: key.accountId, key: idemKey, fingerprint: requestFingerprint(endpoint, read.bytes, multipart), pendingMs: config.requestDeadlineMs + 60_000,
      });
      if (claim.kind === 'refused') return fail(claim.error);
      if (claim.kind === 'replay') {
        metrics.request(label, claim.answer.status);
        res.writeHead(claim.answer.status, { ...claim.answer.headers, ...corsHeaders(req.headers.origin), 'idempotent-replayed': 'true', 'content-length': claim.answer.body.length });
        res.end(claim.answer.body);
        return;
      }
      idem = claim.request;
    }

    // --- admission: funds and limits for the whole path, and the hold -----------------
    const est: Estimate = estimate(endpoint.name, model, json, multipart, config.defaultHoldCompletionTokens, read.bytes.length);
    const listEstimate = costOf(table, model, est.usage);
    if (!listEstimate.ok) return fail(clientErrors.invalidValue('size', `This image size is not available for ${model}.`));
    const multipliers = accounts.map((a) => a.multiplierPpm);
    const admission = await deps.admitter.admit({
      root: key.root, path: key.path, keyId: key.keyId, holdId: requestId,
      amounts: costsForPath(listEstimate.nano, multipliers), tokens: est.tokens,
      keyRpm: key.rpm, keyTpm: key.tpm, holdTtlMs: config.holdTtlMs,
    });
    if (!admission.ok) {
      await idem?.release();
      if (admission.reason === 'rpm' || admission.reason === 'tpm') {
        return fail(clientErrors.rateLimited(admission.reason === 'rpm' ? 'requests' : 'tokens', admission.limit, Math.max(1, Math.ceil(admission.retryAfterMs / 1000))));
      }
      return fail(admission.reason === 'funds' ? clientErrors.insufficientQuota() : clientErrors.accountDisabled());
    }
    const reset = `${Math.ceil(admission.windowResetMs / 1000)}s`;
    if (key.rpm !== null) Object.assign(headers, { 'x-ratelimit-limit-requests': String(key.rpm), 'x-ratelimit-remaining-requests': String(admission.keyRpmRemaining ?? 0), 'x-ratelimit-reset-requests': reset });
    if (key.tpm !== null) Object.assign(headers, { 'x-ratelimit-limit-tokens': String(key.tpm), 'x-ratelimit-remaining-tokens': String(admission.keyTpmRemaining ?? 0), 'x-ratelimit-reset-tokens': reset });

    // From here on every outcome is recorded as exactly one usage event, which also
    // releases the hold; a lease learns the cost at once (an unknown one counts in full).
    let charged: bigint[] | null = null;
    try {
      const stream = endpoint.streamable && json.stream === true;
      let body = read.bytes;
      let stripUsage = false;
      if (stream && (endpoint.name === 'chat.completions' || endpoint.name === 'completions')) {
        const so = (json.stream_options ?? {}) as Obj;
        if (so.include_usage !== true) {
          body = Buffer.from(JSON.stringify({ ...json, stream_options: { ...so, include_usage: true } }));
          stripUsage = true;
        }
      }
      const cancel = new Cancellation();
      res.once('close', () => {
        if (!res.writableFinished) cancel.cancel();
      });
      const extraHeaders: Record<string, string> = {};
      const beta = req.headers['openai-beta'];
      if (typeof beta === 'string') extraHeaders['openai-beta'] = beta;
      const fwd = await deps.forwarder.forward({
        method: endpoint.method, suffix: suffix + query, model, body, contentType: req.headers['content-type'],
        extraHeaders, deadline: Date.now() + config.requestDeadlineMs, cancel,
      });
      for (const a of fwd.attempts) metrics.attempt(a.outcome);

      let status: RequestStatus = 'ok';
      let httpStatus = 200;
      let errorCode: string | null = null;
      let reported: unknown = null;
      let delivered = '';
      let ttftMs: number | null = null;
      const upstreamKey = fwd.kind === 'failed' ? fwd.lastKey : fwd.key;

      if (fwd.kind === 'failed') {
        await idem?.release();
        status = cancel.cancelled ? 'client_abort' : 'upstream_error';
        httpStatus = fwd.error.status;
        errorCode = fwd.error.code;
        if (!cancel.cancelled) fail(fwd.error);
      } else {
        httpStatus = fwd.status;
        // `headers` is ours to extend: no error answer follows a response that has begun.
        const isSse = fwd.kind === 'body' && stream && String(fwd.headers['content-type'] ?? '').includes('text/event-stream');
        for (const h of PASSED_RESPONSE_HEADERS) {
          const v = fwd.headers[h];
          if (typeof v === 'string' && !(isSse && h === 'content-length')) headers[h] = v;
        }
        if (fwd.kind === 'refused') {
          status = 'rejected';
          errorCode = fwd.errorCode;
          headers['content-length'] = String(Buffer.byteLength(fwd.text));
          res.writeHead(fwd.status, headers);
          res.end(fwd.text);
          await idem?.finish({ status: fwd.status, headers, body: Buffer.from(fwd.text) });
        } else {
          if (isSse) {
            headers['cache-control'] = 'no-cache';
            headers.connection = 'keep-alive';
          }
          res.writeHead(fwd.status, headers);
          const meter = isSse ? new SseMeter(endpoint.name, stripUsage) : null;
          const tail = isSse ? null : new TailWindow();
          // A non-streaming answer is kept, up to a bound, for replays of its Idempotency-Key.
          const kept: Buffer[] | null = idem && !isSse ? [] : null;
          let keptBytes = 0;
          const ending = await relay(fwd.body, res, meter
            ? (chunk) => {
                const text = meter.feed(chunk);
                if (meter.firstTokenAt !== null && ttftMs === null) ttftMs = Math.round(meter.firstTokenAt - t0);
                return text;
              }
            : (chunk) => {
                tail?.push(chunk);
                if (kept && keptBytes <= MAX_REPLAY_BYTES) {
                  kept.push(chunk);
                  keptBytes += chunk.length;
                }
                return chunk;
              });
          let cut = ending === 'error';
          if (meter && ending === 'ended') {
            const rest = meter.flush();
            if (rest) res.write(rest);
            cut = !meter.done;
          }
          if (cancel.cancelled || res.destroyed) {
            status = 'client_abort';
            errorCode = 'client_closed_request';
          } else if (cut) {
            // The client must not mistake a cut stream for a complete one: an error event, no [DONE].
            status = 'upstream_error';
            errorCode = 'upstream_stream_cut';
            res.write(`data: ${errorBody({ message: 'The upstream connection was lost before the response was complete.', type: 'server_error', param: null, code: 'upstream_stream_cut' })}\n\n`);
            const last = fwd.attempts[fwd.attempts.length - 1];
            if (last) last.outcome = 'cut';
          }
          if (!res.writableEnded) res.end();
          if (idem) {
            if (isSse) await idem.finish('stream');
            else if (status !== 'ok') await idem.release();
            else await idem.finish(keptBytes > MAX_REPLAY_BYTES ? 'too_large' : { status: fwd.status, headers, body: Buffer.concat(kept ?? []) });
          }
          reported = meter ? meter.usage : usageFromTail(tail?.text() ?? '');
          delivered = meter?.delivered ?? '';
        }
      }

      // --- metering ---------------------------------------------------------------------
      const { usage, source } = finalUsage(endpoint, model, json, est, reported, delivered, httpStatus < 400 && status !== 'upstream_error' ? 'served' : 'failed', status === 'upstream_error' && delivered.length > 0);
      const priced = costOf(table, model, usage);
      const list = priced.ok ? priced.nano : 0n;
      const costs = costsForPath(list, multipliers);
      charged = costs;
      const latencyMs = Math.round(performance.now() - t0);
      metrics.request(label, httpStatus);
      metrics.latency(label, stream, latencyMs / 1000);
      if (ttftMs !== null) metrics.ttft(label, ttftMs / 1000);
      const event = makeEvent('usage.recorded', {
        id: `usage:${requestId}`,
        source: config.nodeId,
        accountPath: key.path,
        data: {
          requestId, apiKeyId: key.keyId, endpoint: endpoint.name, model, status, httpStatus, errorCode, stream,
          tokens: usage.tokens, images: usage.images, imageSize: usage.imageSize, imageQuality: usage.imageQuality,
          audioMs: usage.audioMs, speechCharacters: usage.speechCharacters, usageSource: source,
          costs: costs.map(String), listCostNano: list.toString(), priceVersion: table.version,
          holdId: admission.holdId, attempts: fwd.attempts as Attempt[], upstreamKeyId: upstreamKey?.id ?? null,
          upstreamOrg: upstreamKey?.organization ?? null, latencyMs, ttftMs,
        },
      });
      try {
        await deps.sink.emit(event);
      } catch (err) {
        metrics.eventsFailed.inc();
        log.error({ err: (err as Error).message, requestId }, 'usage event lost: neither Kafka nor the spool took it');
      }
    } finally {
      admission.done(charged);
    }
  };
}

/** A path segment as the client meant it; a malformed %-escape names no model, so it stays as sent. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** What makes two requests the same: the endpoint and the body (for forms, the fields and files, not the boundary). */
function requestFingerprint(endpoint: EndpointDef, bytes: Buffer, multipart: MultipartView | null): Buffer {
  if (!multipart) return Buffer.concat([Buffer.from(`${endpoint.name}\n`), bytes]);
  const files = multipart.files.map((f) => [f.field, f.filename, createHash('sha256').update(f.data).digest('hex')]);
  return Buffer.from(JSON.stringify([endpoint.name, Object.entries(multipart.fields).sort(), files]));
}

/**
 * Pipes an upstream body to the client with backpressure, each chunk through `transform`
 * (which may hold bytes back). Resolves with how the body ended: completely, cut by
 * upstream, or because the client went away.
 */
function relay(body: UpstreamBody, res: ServerResponse, transform: (chunk: Buffer) => string | Buffer): Promise<'ended' | 'error' | 'closed'> {
  return new Promise((resolve) => {
    const onDrain = () => body.resume();
    res.on('drain', onDrain);
    const finish = (how: 'ended' | 'error' | 'closed') => {
      res.off('drain', onDrain);
      resolve(how);
    };
    body.pipe({
      data(chunk) {
        const out = transform(chunk);
        return out.length === 0 || res.write(out);
      },
      end: () => finish('ended'),
      error: (err) => finish(err instanceof CancelledError ? 'closed' : 'error'),
    });
  });
}

/**
 * What to bill. Upstream's own usage when it sent one; otherwise, for text that reached the
 * client (an abort or a cut stream), the delivered text counted with the model's tokenizer;
 * for requests priced by what was asked (images, speech, translation minutes) the request.
 */
function finalUsage(
  endpoint: EndpointDef, model: string, json: Obj, est: Estimate, reported: unknown, delivered: string,
  outcome: 'served' | 'failed', partial: boolean,
): { usage: BillableUsage; source: 'upstream' | 'estimated' | 'none' } {
  const none: BillableUsage = { ...est.usage, tokens: { ...est.usage.tokens, prompt: 0, cached: 0, completion: 0, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 }, images: 0, audioMs: 0, speechCharacters: 0 };
  if (reported) {
    const r = readUsage(reported, model.startsWith('gpt-image'));
    const usage: BillableUsage = { ...none, tokens: r.tokens };
    if (r.audioSeconds !== null) usage.audioMs = r.audioSeconds * 1000;
    if (endpoint.name.startsWith('images') && !model.startsWith('gpt-image')) usage.images = est.usage.images;
    return { usage, source: 'upstream' };
  }
  const textual = endpoint.name === 'chat.completions' || endpoint.name === 'completions' || endpoint.name === 'responses';
  if (textual && (delivered.length > 0 || partial)) {
    const prompt = endpoint.name === 'chat.completions' && Array.isArray(json.messages)
      ? countChatPromptTokens(model, json.messages as ChatMessageLike[])
      : countTokens(model, typeof json.prompt === 'string' ? json.prompt : typeof json.input === 'string' ? json.input : JSON.stringify(json.input ?? json.prompt ?? ''));
    return { usage: { ...none, tokens: { ...none.tokens, prompt, completion: countTokens(model, delivered) } }, source: 'estimated' };
  }
  if (outcome === 'failed') return { usage: none, source: 'none' };
  switch (endpoint.name) {
    case 'images.generations':
    case 'images.edits':
    case 'images.variations':
      return { usage: { ...none, images: est.usage.images }, source: 'upstream' };
    case 'audio.speech':
      return { usage: { ...none, speechCharacters: est.usage.speechCharacters, tokens: { ...none.tokens, prompt: countTokens(model, typeof json.input === 'string' ? json.input : '') } }, source: 'estimated' };
    case 'audio.translations':
    case 'audio.transcriptions':
      return { usage: { ...none, audioMs: est.audioMs }, source: 'estimated' };
    default:
      return { usage: none, source: 'none' };
  }
}
