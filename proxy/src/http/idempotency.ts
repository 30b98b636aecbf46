import { createHash } from 'node:crypto';
import { Command } from 'ioredis';
import { redisKeys, type RedisClient } from '@yugong/schemas';
import { apiError, type ApiError } from '../errors.js';

/** How long a finished request's answer is kept for replays. */
const KEEP_MS = 24 * 3_600_000;
/** The largest answer kept for a replay; a larger one can only be refused on a retry. */
export const MAX_REPLAY_BYTES = 1024 * 1024;

/** Claims the key if it is new; otherwise answers what is stored under it. */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'status', 'headers', 'body')
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false`;

export interface StoredAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface IdempotentRequest {
  /** The answer was sent in full: later requests with this key get it again. */
  finish(answer: StoredAnswer | 'stream' | 'too_large'): Promise<void>;
  /** Nothing was done or charged: a retry with this key may run. */
  release(): Promise<void>;
}

export type Claim = { kind: 'new'; request: IdempotentRequest } | { kind: 'replay'; answer: StoredAnswer } | { kind: 'refused'; error: ApiError };

const conflict = (message: string) => apiError(409, 'invalid_request_error', 'idempotency_conflict', message, 'Idempotency-Key');

/** `Idempotency-Key` as sent, or null when absent; an unusable one is a client error. */
export function idempotencyKeyOf(header: string | string[] | undefined): string | ApiError | null {
  if (header === undefined) return null;
  if (Array.isArray(header) || header.length === 0 || header.length > 255) {
    return apiError(400, 'invalid_request_error', 'invalid_idempotency_key', 'The Idempotency-Key header must be one value of 1 to 255 characters.', 'Idempotency-Key');
  }
  return header;
}

/**
 * One charge per (account, Idempotency-Key) for 24 hours: the first request runs; the same
 * key with the same request replays its stored answer, or answers 409 while it is still
 * running or when its answer was a stream; the same key with another request answers 422.
 */
export async function claimIdempotency(redis: RedisClient, opts: { root: string; accountId: string; key: string; fingerprint: Buffer; pendingMs: number }): Promise<Claim> {
  const id = createHash('sha256').update(opts.key).digest('hex');
  const rkey = redisKeys.idempotentRequest(opts.root, opts.accountId, id);
  const fingerprint = createHash('sha256').update(opts.fingerprint).digest('hex');
  // A Command of its own, not callBuffer('EVAL', …): the node's connection is auto-pipelined,
  // and there ioredis drops a generic call's command name (Redis took the script for the command).
  const found = (await redis.sendCommand(new Command('eval', [CLAIM, 1, rkey, fingerprint, String(opts.pendingMs)], { replyEncoding: null }))) as (Buffer | null)[] | null;
  if (!found) {
    return {
      kind: 'new',
      request: {
        async finish(answer) {
          const fields = typeof answer === 'string' ? { state: answer } : { state: 'done', status: String(answer.status), headers: JSON.stringify(answer.headers), body: answer.body };
          await redis.multi().hset(rkey, fields).pexpire(rkey, KEEP_MS).exec();
        },
        async release() {
          await redis.del(rkey);
        },
      },
    };
  }
  const [storedPrint, state, status, headers, body] = found;
  if (storedPrint?.toString() !== fingerprint) {
    return {
      kind: 'refused',
      error: apiError(422, 'invalid_request_error', 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request. Use a new key for a new request.', 'Idempotency-Key'),
    };
  }
  switch (state?.toString()) {
    case 'done':
      return { kind: 'replay', answer: { status: Number(status?.toString()), headers: JSON.parse(headers?.toString() ?? '{}') as Record<string, string>, body: body ?? Buffer.alloc(0) } };
    case 'stream':
      return { kind: 'refused', error: conflict('The request with this Idempotency-Key was answered with a stream, which cannot be replayed.') };
    case 'too_large':
      return { kind: 'refused', error: conflict(`The answer to the request with this Idempotency-Key was larger than ${MAX_REPLAY_BYTES} bytes and was not kept, so it cannot be replayed.`) };
    default:
      return { kind: 'refused', error: conflict('A request with this Idempotency-Key is still in progress. Retry once it has finished.') };
  }
}
