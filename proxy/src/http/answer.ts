import type { ServerResponse } from 'node:http';
import { SseMeter, TailWindow, usageFromTail } from '@yugong/metering';
import type { RequestStatus } from '@yugong/schemas';
import type { MeteredEndpoint } from '../endpoints/index.js';
import { errorBody } from '../errors.js';
import type { Cancellation } from '../upstream/cancellation.js';
import { CancelledError } from '../upstream/cancellation.js';
import type { Forwarded, UpstreamBody } from '../upstream/forward.js';
import type { ApiCall } from './call.js';
import { MAX_REPLAY_BYTES, type IdempotentRequest } from './idempotency.js';

/** Upstream headers the client sees; everything else (organization, cookies) stays here. */
const PASSED_RESPONSE_HEADERS = ['content-type', 'content-length', 'openai-processing-ms', 'openai-version', 'content-disposition'];

/** How the exchange ended, for the usage event. */
export interface Outcome {
  status: RequestStatus;
  httpStatus: number;
  errorCode: string | null;
  /** Upstream's usage object, if it sent one. */
  reported: unknown;
  /** The text of a stream that reached the client. */
  delivered: string;
  ttftMs: number | null;
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
 * Gives the client upstream's answer: an error of ours when every attempt failed, upstream's
 * refusal as it is, or the body relayed (an SSE stream metered as it passes, with the usage
 * chunk it asked for on the client's behalf taken out). Stores the answer for replays of its
 * Idempotency-Key, or releases the key when nothing was done.
 *
 * `settle` records the outcome (the usage event, the hold brought down to the cost) and runs
 * before the answer's last bytes leave: the final chunk of a body, the terminal event of a
 * stream, or the whole of an error. A client that has its complete answer has been billed.
 */
export async function answerClient(
  call: ApiCall,
  endpoint: MeteredEndpoint,
  fwd: Forwarded,
  opts: {
    stream: boolean;
    stripUsage: boolean;
    cancel: Cancellation;
    idem: IdempotentRequest | null;
    settle(outcome: Outcome): Promise<void>;
    /** A replay record that could not be stored: logged, and the billed answer still completes. */
    onIdempotencyError(err: Error): void;
  },
): Promise<Outcome> {
  const { res, headers } = call;
  const { cancel } = opts;
  const keep = (p: Promise<void> | undefined) => p?.catch((err: unknown) => opts.onIdempotencyError(err as Error));
  const idem = opts.idem && {
    finish: (a: Parameters<IdempotentRequest['finish']>[0]) => keep(opts.idem?.finish(a)),
    release: () => keep(opts.idem?.release()),
  };
  const outcome: Outcome = { status: 'ok', httpStatus: 200, errorCode: null, reported: null, delivered: '', ttftMs: null };
  if (fwd.kind === 'failed') {
    await idem?.release();
    outcome.status = cancel.cancelled ? 'client_abort' : 'upstream_error';
    outcome.httpStatus = fwd.error.status;
    outcome.errorCode = fwd.error.code;
    await opts.settle(outcome);
    if (!cancel.cancelled) call.fail(fwd.error);
    return outcome;
  }
  outcome.httpStatus = fwd.status;
  // `headers` is ours to extend: no error answer follows a response that has begun.
  const isSse = fwd.kind === 'body' && opts.stream && String(fwd.headers['content-type'] ?? '').includes('text/event-stream');
  for (const h of PASSED_RESPONSE_HEADERS) {
    const v = fwd.headers[h];
    if (typeof v === 'string' && !(isSse && h === 'content-length')) headers[h] = v;
  }
  if (fwd.kind === 'refused') {
    outcome.status = 'rejected';
    outcome.errorCode = fwd.errorCode;
    headers['content-length'] = String(Buffer.byteLength(fwd.text));
    // A 429 that reaches the client is one retrying cannot fix (the retryable ones were retried here).
    if (fwd.status === 429) headers['x-should-retry'] = 'false';
    await opts.settle(outcome);
    await idem?.finish({ status: fwd.status, headers, body: Buffer.from(fwd.text) });
    res.writeHead(fwd.status, headers);
    res.end(fwd.text);
    return outcome;
  }
  if (isSse) {
    headers['cache-control'] = 'no-cache';
    headers.connection = 'keep-alive';
  }
  res.writeHead(fwd.status, headers);
  const meter = isSse ? new SseMeter(endpoint.name, opts.stripUsage) : null;
  const tail = isSse ? null : new TailWindow();
  // A non-streaming answer is kept, up to a bound, for replays of its Idempotency-Key.
  const kept: Buffer[] | null = idem && !isSse ? [] : null;
  let keptBytes = 0;
  // A body's latest chunk is sent only when the next arrives: its last one waits for `settle`.
  let last: Buffer | null = null;
  const ending = await relay(
    fwd.body,
    res,
    meter
      ? (chunk) => {
          const text = meter.feed(chunk);
          if (meter.firstTokenAt !== null && outcome.ttftMs === null) outcome.ttftMs = Math.round(meter.firstTokenAt - call.startedAt);
          return text;
        }
      : (chunk) => {
          tail?.push(chunk);
          if (kept && keptBytes <= MAX_REPLAY_BYTES) {
            kept.push(chunk);
            keptBytes += chunk.length;
          }
          const previous = last;
          last = chunk;
          return previous ?? EMPTY;
        },
  );
  let cut = ending === 'error';
  let rest = '';
  if (meter && ending === 'ended') {
    rest = meter.flush();
    cut = !meter.done;
  }
  let final: string | Buffer = meter ? meter.takeTerminal() + rest : (last ?? EMPTY);
  if (cancel.cancelled || res.destroyed) {
    outcome.status = 'client_abort';
    outcome.errorCode = 'client_closed_request';
  } else if (cut) {
    // The client must not mistake a cut stream for a complete one: an error event, no [DONE].
    outcome.status = 'upstream_error';
    outcome.errorCode = 'upstream_stream_cut';
    final = `${rest}data: ${errorBody({ message: 'The upstream connection was lost before the response was complete.', type: 'server_error', param: null, code: 'upstream_stream_cut' })}\n\n`;
    const attempt = fwd.attempts[fwd.attempts.length - 1];
    if (attempt) attempt.outcome = 'cut';
  }
  outcome.reported = meter ? meter.usage : usageFromTail(tail?.text() ?? '');
  outcome.delivered = meter?.delivered ?? '';
  await opts.settle(outcome);
  if (idem) {
    if (isSse) await idem.finish('stream');
    else if (outcome.status !== 'ok') await idem.release();
    else await idem.finish(keptBytes > MAX_REPLAY_BYTES ? 'too_large' : { status: fwd.status, headers, body: Buffer.concat(kept ?? []) });
  }
  if (!res.writableEnded && !res.destroyed) res.end(final);
  return outcome;
}

const EMPTY = Buffer.alloc(0);
