import type { IncomingMessage } from 'node:http';
import { findModelPrice, modelAllowed, type PriceTable } from '@yugong/schemas';
import type { AccountView, ClientKey } from '../auth/projections.js';
import type { EndpointRequest, MeteredEndpoint, MultipartView } from '../endpoints/index.js';
import { clientErrors, type ApiError } from '../errors.js';
import type { PriceBook } from '../prices.js';
import { nestedDeeperThan, parseMultipart, readBody } from './body.js';

type Obj = Record<string, unknown>;

/** OpenAI's own schemas nest a few levels; tool parameter schemas perhaps a dozen. */
const MAX_JSON_DEPTH = 64;

export interface ApiRequest extends EndpointRequest {
  bytes: Buffer;
  stream: boolean;
  /** The prices it was checked against, which price it to the end. */
  table: PriceTable;
}

/** The request, read and checked; or an error to answer (none when the client went away mid-body). */
export type ReadResult = { ok: true; request: ApiRequest } | { ok: false; error: ApiError | null };

const refuse = (error: ApiError | null): ReadResult => ({ ok: false, error });

/** The checks every JSON endpoint shares: the stream flag and the numbers that size an answer. */
function validateShared(endpoint: MeteredEndpoint, json: Obj): ApiError | null {
  if ('stream' in json && typeof json.stream !== 'boolean') return clientErrors.wrongType('stream', 'a boolean');
  if (json.stream === true && !endpoint.streamable) return clientErrors.invalidValue('stream', `Streaming is not supported for ${endpoint.suffix}.`);
  for (const p of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
    if (p in json && json[p] !== null && !(Number.isInteger(json[p]) && (json[p] as number) >= 1)) return clientErrors.invalidValue(p, `Invalid '${p}': expected an integer of at least 1.`);
  }
  if ('n' in json && json.n !== null && !(Number.isInteger(json.n) && (json.n as number) >= 1 && (json.n as number) <= 128)) {
    return clientErrors.invalidValue('n', "Invalid 'n': expected an integer from 1 to 128.");
  }
  return endpoint.validate?.(json) ?? null;
}

/** The body as a JSON object, or null when it is not one. */
function parseObject(bytes: Buffer): Obj | null {
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Obj) : null;
  } catch {
    return null;
  }
}

const MAX_MODEL_CHARS = 256;

/** Reads the body (bounded), parses it as the endpoint expects, and checks the model against the prices and the key. */
export async function readApiRequest(
  endpoint: MeteredEndpoint,
  req: IncomingMessage,
  caller: { key: ClientKey; accounts: AccountView[] },
  opts: { maxBodyBytes: number; prices: PriceBook },
): Promise<ReadResult> {
  const read = await readBody(req, opts.maxBodyBytes);
  if (!read.ok) return refuse(read.reason === 'too_large' ? clientErrors.bodyTooLarge(opts.maxBodyBytes) : null);
  let json: Obj = {};
  let multipart: MultipartView | null = null;
  if (endpoint.body === 'json') {
    if (nestedDeeperThan(read.bytes, MAX_JSON_DEPTH)) return refuse(clientErrors.tooDeep(MAX_JSON_DEPTH));
    const parsed = parseObject(read.bytes);
    if (!parsed) return refuse(clientErrors.badJson());
    json = parsed;
  } else {
    const parsed = await parseMultipart(read.bytes, req.headers['content-type']);
    if (!parsed.ok) return refuse(clientErrors.badMultipart(parsed.problem, parsed.detail));
    multipart = parsed.view;
    if (!multipart.files.some((f) => f.field === 'file' || f.field === 'image' || f.field === 'image[]')) {
      const field = endpoint.upload ?? 'file';
      return refuse(clientErrors.invalidValue(field, `Missing required parameter: '${field}'.`));
    }
  }
  const rawModel = endpoint.body === 'json' ? json.model : multipart?.fields.model;
  if (rawModel !== undefined && typeof rawModel !== 'string') return refuse(clientErrors.wrongType('model', 'a string'));
  const model = rawModel || endpoint.defaultModel;
  if (!model) return refuse(clientErrors.missingModel());
  // OpenAI's model ids are short; a longer one is refused before it is looked up or echoed anywhere.
  if (model.length > MAX_MODEL_CHARS) return refuse(clientErrors.invalidValue('model', `The model name is longer than ${MAX_MODEL_CHARS} characters.`));
  const invalid = endpoint.body === 'json' ? validateShared(endpoint, json) : null;
  if (invalid) return refuse(invalid);
  const table = opts.prices.current;
  if (!findModelPrice(table, model)) return refuse(clientErrors.unknownModel(model));
  const { key, accounts } = caller;
  if (!modelAllowed(key.models, model) || accounts.some((a) => !modelAllowed(a.models, model))) return refuse(clientErrors.modelNotAllowed(model));
  const request = { model, json, multipart, bodyBytes: read.bytes.length, bytes: read.bytes, stream: endpoint.streamable && json.stream === true, table };
  return { ok: true, request };
}
