import { createHash } from 'node:crypto';
import { countTokens } from '../tokens.js';
import { badRequest, int, type Ctx, type Route } from '../context.js';
import { sendJson } from '../wire.js';

const DIMENSIONS: Record<string, number> = { 'text-embedding-3-large': 3072, 'text-embedding-3-small': 1536, 'text-embedding-ada-002': 1536 };

type Input = string | number[];
function inputs(v: unknown): Input[] | null {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.length > 0) {
    if (v.every((x) => typeof x === 'string')) return v as string[];
    if (v.every((x) => typeof x === 'number')) return [v as number[]];
    if (v.every((x) => Array.isArray(x) && x.every((y) => typeof y === 'number'))) return v as number[][];
  }
  return null;
}

function tokensOf(ctx: Ctx, input: Input): number {
  return typeof input === 'string' ? countTokens(ctx.model, input) : input.length;
}

/** A unit vector derived from the input's hash: the same text always embeds the same. */
function vector(input: Input, dims: number): Float32Array {
  const out = new Float32Array(dims);
  let seed = createHash('sha256')
    .update(typeof input === 'string' ? input : input.join(','))
    .digest();
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    if (i % 32 === 0 && i > 0) seed = createHash('sha256').update(seed).digest();
    const v = ((seed[i % 32] ?? 0) - 127.5) / 127.5;
    out[i] = v;
    norm += v * v;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dims; i++) out[i] = (out[i] ?? 0) * scale;
  return out;
}

export const embeddingsRoute: Route = {
  method: 'POST',
  path: /^\/v1\/embeddings$/,
  body: 'json',
  needsModel: true,
  estimateTokens: (ctx) => (inputs(ctx.json.input) ?? []).reduce((n, i) => n + tokensOf(ctx, i), 0),
  handle(ctx) {
    const list = inputs(ctx.json.input);
    if (!list) return badRequest(ctx, 'input', "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
    if (list.some((i) => (typeof i === 'string' ? i.length === 0 : i.length === 0)))
      return badRequest(ctx, 'input', "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
    const dims = int(ctx.json.dimensions) ?? DIMENSIONS[ctx.model] ?? 1536;
    const base64 = ctx.json.encoding_format === 'base64';
    const data = list.map((input, index) => {
      const v = vector(input, dims);
      return { object: 'embedding', index, embedding: base64 ? Buffer.from(v.buffer).toString('base64') : Array.from(v) };
    });
    const tokens = list.reduce((n, i) => n + tokensOf(ctx, i), 0);
    sendJson(ctx.res, 200, { object: 'list', data, model: ctx.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, ctx.headers);
  },
};
