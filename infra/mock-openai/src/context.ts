import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonBody, MultipartBody } from './body.js';
import type { KeyBehaviour, MockState } from './behaviour.js';
import { cutConnection, errorBody, sendJson, sleep, write, type OpenAIErrorBody } from './wire.js';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  key: string;
  behaviour: KeyBehaviour;
  state: MockState;
  /** request id, organization, version, processing time and x-ratelimit-* headers. */
  headers: Record<string, string>;
  json: JsonBody;
  multipart: MultipartBody;
  model: string;
  baseUrl: string;
}

export type BodyKind = 'json' | 'multipart' | 'none';

export interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  body: BodyKind;
  /** The request's model is required and must exist. */
  needsModel: boolean;
  /** Field the model comes from in a multipart body defaults to "model" too. */
  defaultModel?: string;
  /** Tokens counted against TPM before answering. */
  estimateTokens(ctx: Ctx): number;
  handle(ctx: Ctx, params: string[]): Promise<void> | void;
}

export function fail(ctx: Ctx, status: number, body: OpenAIErrorBody): void {
  sendJson(ctx.res, status, body, ctx.headers);
}

export function badRequest(ctx: Ctx, param: string, message: string): void {
  fail(ctx, 400, errorBody(message, 'invalid_request_error', null, param));
}

export function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/**
 * Streams SSE events with the key's token cadence; cuts the connection after the scripted
 * number of content events. Returns false if the stream did not finish (cut or client gone).
 */
export async function streamEvents(ctx: Ctx, events: { data: unknown; event?: string; content?: boolean }[]): Promise<boolean> {
  let contentSent = 0;
  const cutAfter = ctx.behaviour.cutStreamAfterChunks;
  for (const e of events) {
    if (e.content) {
      if (cutAfter !== undefined && contentSent >= cutAfter) {
        cutConnection(ctx.res);
        return false;
      }
      if (contentSent > 0) await sleep(ctx.behaviour.tokenDelayMs ?? 0);
      contentSent++;
    }
    const text = `${e.event ? `event: ${e.event}\n` : ''}data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`;
    if (!(await write(ctx.res, text))) return false;
  }
  ctx.res.end();
  return true;
}
