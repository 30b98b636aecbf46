import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseJsonObject, readMultipart, readRaw, type JsonBody, type MultipartBody } from './body.js';
import { MockState, statusOf, type Failure, type KeyBehaviour } from './behaviour.js';
import type { Ctx, Route } from './context.js';
import { chatRoute } from './routes/chat.js';
import { completionsRoute } from './routes/completions.js';
import { embeddingsRoute } from './routes/embeddings.js';
import { imageEditsRoute, imageGenerationsRoute, imageVariationsRoute, TINY_PNG_BASE64 } from './routes/images.js';
import { speechRoute, transcriptionsRoute, translationsRoute } from './routes/audio.js';
import { moderationsRoute } from './routes/moderations.js';
import { responsesRoute } from './routes/responses.js';
import { listModelsRoute, modelExists, retrieveModelRoute } from './routes/models.js';
import { bearerKey, errors, requestId, sendBadGateway, sendJson } from './wire.js';

export const routes: Route[] = [
  chatRoute,
  completionsRoute,
  embeddingsRoute,
  imageGenerationsRoute,
  imageEditsRoute,
  imageVariationsRoute,
  transcriptionsRoute,
  translationsRoute,
  speechRoute,
  moderationsRoute,
  responsesRoute,
  listModelsRoute,
  retrieveModelRoute,
];

export interface RecordedRequest {
  id: string;
  method: string;
  path: string;
  key: string | null;
  headers: Record<string, string | string[] | undefined>;
  json: JsonBody | null;
  multipart: { fields: Record<string, string>; files: { field: string; filename: string; contentType: string; size: number }[] } | null;
  receivedAt: number;
}

export interface MockOptions {
  port?: number;
  host?: string;
  /** Keep a log of received requests for assertions (off for benchmarks). */
  record?: boolean;
  recordLimit?: number;
}

export interface MockOpenAI {
  url: string;
  /** The base URL an OpenAI SDK takes: `${url}/v1`. */
  baseURL: string;
  server: Server;
  state: MockState;
  requests: RecordedRequest[];
  script(key: string, behaviour: KeyBehaviour): void;
  scriptOrganization(org: string, limits: { rpm?: number; tpm?: number }): void;
  fail(key: string, failure: Failure): void;
  reset(): void;
  close(): Promise<void>;
}

function answerFailure(ctx: Pick<Ctx, 'res' | 'headers' | 'key' | 'model'>, failure: Failure): void {
  const h = { ...ctx.headers };
  const status = statusOf[failure.kind];
  if (status === 429 && failure.retryAfterS !== undefined) {
    h['retry-after'] = String(failure.retryAfterS);
    h['retry-after-ms'] = String(failure.retryAfterS * 1000);
  }
  switch (failure.kind) {
    case 'rate_limit':
      return sendJson(ctx.res, 429, errors.rateLimited(ctx.model || 'gpt-4o', h['openai-organization'] ?? 'org-mock', 'requests', 1, 1, failure.retryAfterS ?? 1), h);
    case 'insufficient_quota':
      return sendJson(ctx.res, 429, errors.insufficientQuota(), h);
    case 'invalid_key':
      return sendJson(ctx.res, 401, errors.invalidKey(ctx.key), h);
    case 'server_error':
      return sendJson(ctx.res, 500, errors.serverError(), h);
    case 'overloaded':
      return sendJson(ctx.res, 503, errors.overloaded(), h);
    case 'timeout':
      return sendJson(ctx.res, 504, errors.serverError(), h);
    case 'bad_gateway':
      return sendBadGateway(ctx.res, h);
  }
}

export async function createMockOpenAI(opts: MockOptions = {}): Promise<MockOpenAI> {
  const state = new MockState();
  const requests: RecordedRequest[] = [];
  const record = opts.record ?? true;
  const recordLimit = opts.recordLimit ?? 10_000;
  const hanging = new Set<ServerResponse>();
  let baseUrl = '';

  async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent); // ['__mock', ...]
    const body = req.method === 'GET' ? {} : (parseJsonObject(await readRaw(req)) ?? {});
    if (req.method === 'PUT' && parts[1] === 'keys' && parts[2] && parts.length === 3) state.script(parts[2], body as KeyBehaviour);
    else if (req.method === 'POST' && parts[1] === 'keys' && parts[2] && parts[3] === 'failures') state.fail(parts[2], body as unknown as Failure);
    else if (req.method === 'PUT' && parts[1] === 'orgs' && parts[2]) state.scriptOrganization(parts[2], body as { rpm?: number; tpm?: number });
    else if (req.method === 'GET' && parts[1] === 'requests') return sendJson(res, 200, { data: requests });
    else if (req.method === 'DELETE' && parts[1] === 'requests') requests.length = 0;
    else if (req.method === 'POST' && parts[1] === 'reset') {
      state.reset();
      requests.length = 0;
    } else if (req.method === 'GET' && parts[1] === 'files') {
      const png = Buffer.from(TINY_PNG_BASE64, 'base64');
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
      return;
    } else return sendJson(res, 404, errors.unknownUrl(req.method ?? 'GET', path));
    sendJson(res, 200, { ok: true });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith('/__mock/')) return control(req, res, path);
    const id = requestId();
    const key = bearerKey(req);
    const behaviour = key ? state.behaviour(key) : {};
    const headers: Record<string, string> = {
      'x-request-id': id,
      'openai-organization': behaviour.organization ?? 'org-mock',
      'openai-version': '2020-10-01',
      'openai-processing-ms': '0',
    };
    let match: { route: Route; params: string[] } | undefined;
    for (const route of routes) {
      const m = route.path.exec(path);
      if (m && route.method === req.method) {
        match = { route, params: m.slice(1) };
        break;
      }
    }
    if (!match) {
      req.resume();
      return sendJson(res, 404, errors.unknownUrl(req.method ?? 'GET', path), headers);
    }
    if (!key) {
      req.resume();
      return sendJson(res, 401, errors.missingKey(), headers);
    }
    const { route, params } = match;
    let json: JsonBody = {};
    let multipart: MultipartBody = { fields: {}, files: [] };
    if (route.body === 'json') {
      const parsed = parseJsonObject(await readRaw(req));
      if (!parsed) return sendJson(res, 400, errors.badJson(), headers);
      json = parsed;
    } else if (route.body === 'multipart') {
      try {
        multipart = await readMultipart(req);
      } catch {
        return sendJson(res, 400, errors.invalidParam('file', 'Could not parse multipart form'), headers);
      }
    } else {
      req.resume();
    }
    if (record) {
      if (requests.length >= recordLimit) requests.shift();
      requests.push({
        id,
        method: req.method ?? 'GET',
        path,
        key,
        headers: { ...req.headers },
        json: route.body === 'json' ? json : null,
        multipart:
          route.body === 'multipart'
            ? { fields: multipart.fields, files: multipart.files.map((f) => ({ field: f.field, filename: f.filename, contentType: f.contentType, size: f.data.length })) }
            : null,
        receivedAt: started,
      });
    }
    if (behaviour.latencyMs) await new Promise((r) => setTimeout(r, behaviour.latencyMs));
    if (behaviour.hang) {
      hanging.add(res);
      res.once('close', () => hanging.delete(res));
      return;
    }
    const rawModel = route.body === 'multipart' ? multipart.fields.model : json.model;
    const model = typeof rawModel === 'string' && rawModel.length > 0 ? rawModel : (route.defaultModel ?? '');
    if (behaviour.valid === false) return sendJson(res, 401, errors.invalidKey(key), headers);
    const failure = state.takeFailure(key);
    if (failure) return answerFailure({ res, headers, key, model }, failure);
    if (behaviour.quota === false && req.method !== 'GET') return sendJson(res, 429, errors.insufficientQuota(), headers);
    if (route.needsModel && !model) return sendJson(res, 400, errors.missingParam('model'), headers);
    if (model && !modelExists(model, behaviour.models)) return sendJson(res, 404, errors.modelNotFound(model), headers);
    const ctx: Ctx = { req, res, key, behaviour, state, headers, json, multipart, model, baseUrl };
    const verdict = state.admit(key, route.estimateTokens(ctx));
    Object.assign(headers, verdict.headers);
    if (verdict.exceeded?.kind === 'too_large') {
      return sendJson(res, 429, errors.requestTooLarge(model, headers['openai-organization'] ?? 'org-mock', verdict.exceeded.limit, verdict.exceeded.requested), headers);
    }
    if (verdict.exceeded) {
      const e = verdict.exceeded;
      headers['retry-after'] = String(e.retryAfterS);
      return sendJson(res, 429, errors.rateLimited(model, headers['openai-organization'] ?? 'org-mock', e.kind, e.limit, e.used, e.retryAfterS), headers);
    }
    headers['openai-processing-ms'] = String(Date.now() - started);
    await route.handle(ctx, params);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errors.serverError());
      else res.destroy(err as Error);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  baseUrl = `http://${opts.host ?? '127.0.0.1'}:${address.port}`;
  return {
    url: baseUrl,
    baseURL: `${baseUrl}/v1`,
    server,
    state,
    requests,
    script: (key, b) => state.script(key, b),
    scriptOrganization: (org, limits) => state.scriptOrganization(org, limits),
    fail: (key, f) => state.fail(key, f),
    reset() {
      state.reset();
      requests.length = 0;
    },
    close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
