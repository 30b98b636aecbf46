import type { ServerResponse } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { apiError, errorBody, type ApiError } from '@yugong/schemas';

export { apiError, errorBody, type ApiError };

export const clientErrors = {
  missingKey: (base: string) =>
    apiError(401, 'invalid_request_error', 'missing_api_key', `You didn't provide an API key. Send your Yugong key (sk-yg-…) as "Authorization: Bearer <key>", with the base URL ${base}/v1.`),
  invalidKey: (base: string) =>
    apiError(401, 'invalid_request_error', 'invalid_api_key', `Incorrect API key provided. Use a Yugong key (sk-yg-…) with the base URL ${base}/v1; OpenAI keys do not work here.`),
  keyRevoked: () => apiError(401, 'invalid_request_error', 'invalid_api_key', 'This API key has been revoked.'),
  keyExpired: () => apiError(401, 'invalid_request_error', 'invalid_api_key', 'This API key has expired.'),
  authRateLimited: (retryAfterS: number) =>
    apiError(429, 'requests', 'rate_limit_exceeded', `Too many failed authentication attempts from your address. Try again in ${retryAfterS}s.`, null, { 'retry-after': String(retryAfterS) }),
  badJson: () =>
    apiError(
      400,
      'invalid_request_error',
      null,
      'We could not parse the JSON body of your request. The API expects a JSON object; check that the body is valid JSON and that Content-Type is application/json.',
    ),
  badMultipart: (problem: 'not_multipart' | 'malformed' | 'too_many_parts' | 'field_too_large', detail: string) =>
    apiError(
      400,
      'invalid_request_error',
      problem === 'not_multipart' ? 'invalid_content_type' : 'invalid_multipart_body',
      problem === 'not_multipart'
        ? 'This endpoint expects Content-Type: multipart/form-data with a boundary, carrying the file and the model as form fields.'
        : `We could not parse the multipart/form-data body of your request: ${detail}. Send the whole form, ending with its closing boundary.`,
    ),
  tooDeep: (max: number) => apiError(400, 'invalid_request_error', 'invalid_value', `The JSON body nests objects and arrays more than ${max} levels deep.`),
  bodyTooLarge: (limit: number) => apiError(413, 'invalid_request_error', 'request_too_large', `The request body is larger than the ${limit} bytes this gateway accepts.`),
  missingModel: () => apiError(400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'model'.", 'model'),
  wrongType: (param: string, expected: string) => apiError(400, 'invalid_request_error', 'invalid_type', `Invalid type for '${param}': expected ${expected}.`, param),
  invalidValue: (param: string, message: string) => apiError(400, 'invalid_request_error', 'invalid_value', message, param),
  unknownModel: (model: string) => apiError(404, 'invalid_request_error', 'model_not_found', `The model \`${model}\` does not exist or you do not have access to it.`, 'model'),
  modelNotAllowed: (model: string) => apiError(403, 'invalid_request_error', 'model_not_allowed', `This API key is not allowed to use the model \`${model}\`.`, 'model'),
  ipNotAllowed: () => apiError(403, 'invalid_request_error', 'ip_not_allowed', 'Requests from your IP address are not allowed for this API key.'),
  originNotAllowed: () => apiError(403, 'invalid_request_error', 'origin_not_allowed', 'Requests from this web origin are not allowed for this API key.'),
  accountDisabled: () => apiError(403, 'invalid_request_error', 'account_disabled', 'The account of this API key is disabled.'),
  // Retrying cannot help until someone tops up: the official SDKs honour x-should-retry.
  insufficientQuota: () =>
    apiError(429, 'insufficient_quota', 'insufficient_quota', 'You exceeded your current quota, please top up your balance or ask your account owner for a higher limit.', null, {
      'x-should-retry': 'false',
    }),
  // Retrying helps: what requests in flight reserved comes back as they finish.
  fundsReserved: (retryAfterS: number) =>
    apiError(
      429,
      'requests',
      'rate_limit_exceeded',
      `Your remaining balance is reserved by requests of this account that are still running. Please try again in ${retryAfterS}s, or send fewer requests at once.`,
      null,
      { 'retry-after': String(retryAfterS) },
    ),
  // As OpenAI answers a request above a TPM limit: no window admits it, so retrying cannot help.
  requestTooLarge: (limit: number, tokens: number) =>
    apiError(
      429,
      'tokens',
      'rate_limit_exceeded',
      `Request too large on tokens per min (TPM): Limit ${limit}, Requested ${tokens}. The input or output tokens must be reduced in order to run successfully: shorten the input, or set max_tokens (max_completion_tokens, max_output_tokens) so that the input and the output together fit within ${limit} tokens.`,
      null,
      { 'x-should-retry': 'false' },
    ),
  rateLimited: (kind: 'requests' | 'tokens', limit: number, retryAfterS: number) =>
    apiError(
      429,
      kind,
      'rate_limit_exceeded',
      `Rate limit reached on ${kind === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)'}: Limit ${limit}. Please try again in ${retryAfterS}s.`,
      null,
      { 'retry-after': String(retryAfterS) },
    ),
  notFound: (method: string, path: string) =>
    apiError(404, 'invalid_request_error', 'unknown_url', `Invalid URL (${method} ${path}). Yugong serves the OpenAI API under /v1, e.g. POST /v1/chat/completions.`),
  methodNotAllowed: (method: string, path: string) => apiError(405, 'invalid_request_error', 'method_not_allowed', `Method ${method} is not allowed for ${path}.`),
  noUpstream: (model: string, retryAfterS?: number) =>
    apiError(
      503,
      'server_error',
      'no_upstream_available',
      `No upstream key can serve \`${model}\` right now. Please try again shortly.`,
      null,
      retryAfterS ? { 'retry-after': String(Math.max(1, retryAfterS)) } : undefined,
    ),
  upstreamFailed: () => apiError(502, 'server_error', 'upstream_error', 'The upstream service failed to answer after several attempts. Please try again.'),
  upstreamTimeout: () => apiError(504, 'server_error', 'upstream_timeout', 'The upstream service did not answer in time. Please try again.'),
  spoolFull: () => apiError(503, 'server_error', 'billing_unavailable', 'The gateway cannot record usage right now and is not accepting requests. Please try again shortly.'),
  overloaded: () => apiError(503, 'server_error', 'shutting_down', 'This gateway node is shutting down. Please retry.'),
  internal: () => apiError(500, 'server_error', null, 'The gateway had an error while processing your request.'),
};

export function sendError(res: ServerResponse, e: ApiError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(e);
  res.writeHead(e.status, { ...headers, ...e.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendApiError(res: Response, status: number, code: string | null, message: string, param: string | null = null, type = 'invalid_request_error'): void {
  res.status(status).type('application/json').send(errorBody({ message, type, param, code }));
}

/** The last handlers of an express app: an OpenAI-shaped 404 naming where the API is, and every error as an OpenAI error body. */
export function expressFallbacks(app: Express, publicUrl: string, log: Logger): void {
  app.use((req: Request, res: Response) => sendApiError(res, 404, 'unknown_url', `Invalid URL (${req.method} ${req.path}). The OpenAI API is under ${publicUrl}/v1.`));
  app.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return sendApiError(res, 400, null, 'We could not parse the JSON body of your request.');
    if (err.type === 'entity.too.large') return sendApiError(res, 413, 'request_too_large', 'The request body is too large.');
    // Express's own refusals of what a client sent (a malformed %-escape in the path, an unsupported charset).
    if (err.status !== undefined && err.status >= 400 && err.status < 500) return sendApiError(res, err.status, 'invalid_request', `The request could not be read: ${err.message}`);
    if (err.name === 'NotAppliedError') {
      log.warn({ err: err.message }, 'write not applied in time');
      res.set('retry-after', '5');
      return sendApiError(res, 503, 'write_not_applied', err.message, null, 'server_error');
    }
    log.error({ err: err.message }, 'admin request failed');
    sendApiError(res, 500, null, 'The gateway had an error while processing your request.', null, 'server_error');
  });
}
