import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
export { writeChunk as write } from '@yugong/schemas';

const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** OpenAI-style ids: a prefix and random alphanumerics (chatcmpl-…, resp_…, req_…). */
export function openaiId(prefix: string, length = 29): string {
  const bytes = randomBytes(length);
  let out = prefix;
  for (let i = 0; i < length; i++) out += ALPHANUM[(bytes[i] ?? 0) % ALPHANUM.length];
  return out;
}

export function requestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function errorBody(message: string, type: string, code: string | null = null, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

/** The errors OpenAI actually sends, word for word where tools match on the text. */
export const errors = {
  invalidKey: (key: string) =>
    errorBody(`Incorrect API key provided: ${redactKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key'),
  missingKey: () =>
    errorBody(
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      'invalid_request_error',
    ),
  insufficientQuota: () =>
    errorBody(
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
      'insufficient_quota',
      'insufficient_quota',
    ),
  rateLimited: (model: string, org: string, kind: 'requests' | 'tokens', limit: number, used: number, retryAfterS: number) =>
    errorBody(
      `Rate limit reached for ${model} in organization ${org} on ${kind === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)'}: Limit ${limit}, Used ${used}, Requested 1. Please try again in ${retryAfterS}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
      kind,
      'rate_limit_exceeded',
    ),
  // The text OpenAI sends (https://platform.openai.com/docs/guides/rate-limits, error 429 "Request too large").
  requestTooLarge: (model: string, org: string, limit: number, requested: number) =>
    errorBody(
      `Request too large for ${model} in organization ${org} on tokens per min (TPM): Limit ${limit}, Requested ${requested}. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.`,
      'tokens',
      'rate_limit_exceeded',
    ),
  serverError: () => errorBody('The server had an error while processing your request. Sorry about that!', 'server_error'),
  overloaded: () => errorBody('The engine is currently overloaded, please try again later.', 'server_error'),
  modelNotFound: (model: string) => errorBody(`The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found', 'model'),
  badJson: () =>
    errorBody(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      'invalid_request_error',
    ),
  missingParam: (param: string) => errorBody(`Missing required parameter: '${param}'.`, 'invalid_request_error', 'missing_required_parameter', param),
  invalidParam: (param: string, message: string) => errorBody(message, 'invalid_request_error', 'invalid_value', param),
  unknownUrl: (method: string, path: string) => errorBody(`Invalid URL (${method} ${path})`, 'invalid_request_error'),
};

/** OpenAI shows the first 3 and last 4 characters of a wrong key. */
export function redactKey(key: string): string {
  return key.length <= 8 ? '***' : `${key.slice(0, 3)}${'*'.repeat(Math.min(key.length - 7, 20))}${key.slice(-4)}`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Cloudflare's answer when OpenAI's origin is down: HTML, not JSON. */
export function sendBadGateway(res: ServerResponse, headers: Record<string, string>): void {
  const html = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n';
  res.writeHead(502, { ...headers, 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

export function startSse(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

export function sseData(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

export function bearerKey(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m?.[1]?.trim() ?? null;
}

export const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** Drops the connection the way a dying upstream does: what was written arrives, then nothing. */
export function cutConnection(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  // A write's callback runs once everything before it is flushed to the kernel.
  socket.write('', () => socket.destroy());
}
