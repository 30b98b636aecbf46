import { countTokens } from '../tokens.js';
import { badRequest, int, type Ctx, type Route } from '../context.js';
import { nowSeconds, sendJson } from '../wire.js';

/** A valid 1×1 PNG: small, and every image viewer opens it. */
export const TINY_PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const GPT_IMAGE_OUTPUT_TOKENS: Record<string, number> = { low: 272, medium: 1056, high: 4160, auto: 1056 };
const DALLE_SIZES: Record<string, string[]> = {
  'dall-e-2': ['256x256', '512x512', '1024x1024'],
  'dall-e-3': ['1024x1024', '1792x1024', '1024x1792'],
};

function respond(ctx: Ctx, opts: { prompt: string; n: number; size: string; quality: string; inputImages: number }): void {
  const isGptImage = ctx.model.startsWith('gpt-image');
  const b64 = isGptImage || (ctx.json.response_format ?? ctx.multipart.fields.response_format) === 'b64_json';
  const data = Array.from({ length: opts.n }, () => ({
    ...(b64 ? { b64_json: TINY_PNG_BASE64 } : { url: `${ctx.baseUrl}/__mock/files/image.png` }),
    ...(ctx.model === 'dall-e-3' ? { revised_prompt: `A detailed rendering of: ${opts.prompt}` } : {}),
  }));
  const body: Record<string, unknown> = { created: nowSeconds(), data };
  if (isGptImage) {
    const text = countTokens(ctx.model, opts.prompt);
    const image = opts.inputImages * 323;
    const output = (GPT_IMAGE_OUTPUT_TOKENS[opts.quality] ?? 1056) * opts.n;
    body.usage = { input_tokens: text + image, input_tokens_details: { text_tokens: text, image_tokens: image }, output_tokens: output, total_tokens: text + image + output };
    body.size = opts.size;
    body.quality = opts.quality;
  }
  sendJson(ctx.res, 200, body, ctx.headers);
}

function validSize(ctx: Ctx, size: string): boolean {
  const allowed = DALLE_SIZES[ctx.model];
  if (!allowed || allowed.includes(size)) return true;
  badRequest(ctx, 'size', `'${size}' is not one of ${allowed.map((s) => `'${s}'`).join(', ')} - 'size'`);
  return false;
}

export const imageGenerationsRoute: Route = {
  method: 'POST',
  path: /^\/v1\/images\/generations$/,
  body: 'json',
  needsModel: false,
  defaultModel: 'dall-e-2',
  estimateTokens: () => 0,
  handle(ctx) {
    const prompt = ctx.json.prompt;
    if (typeof prompt !== 'string' || prompt.length === 0) return badRequest(ctx, 'prompt', "Missing required parameter: 'prompt'.");
    const n = int(ctx.json.n) ?? 1;
    if (ctx.model === 'dall-e-3' && n !== 1) return badRequest(ctx, 'n', 'You must provide n=1 for this model.');
    const size = typeof ctx.json.size === 'string' ? ctx.json.size : '1024x1024';
    if (!validSize(ctx, size)) return;
    const quality = typeof ctx.json.quality === 'string' ? ctx.json.quality : ctx.model.startsWith('gpt-image') ? 'auto' : 'standard';
    respond(ctx, { prompt, n, size, quality, inputImages: 0 });
  },
};

function multipartImageRoute(path: RegExp, requirePrompt: boolean): Route {
  return {
    method: 'POST',
    path,
    body: 'multipart',
    needsModel: false,
    defaultModel: 'dall-e-2',
    estimateTokens: () => 0,
    handle(ctx) {
      const f = ctx.multipart.fields;
      const images = ctx.multipart.files.filter((x) => x.field === 'image' || x.field === 'image[]');
      if (images.length === 0) return badRequest(ctx, 'image', "Missing required parameter: 'image'.");
      const prompt = f.prompt ?? '';
      if (requirePrompt && prompt.length === 0) return badRequest(ctx, 'prompt', "Missing required parameter: 'prompt'.");
      const size = f.size ?? '1024x1024';
      if (!validSize(ctx, size)) return;
      respond(ctx, { prompt, n: Number(f.n ?? '1') || 1, size, quality: f.quality ?? 'auto', inputImages: images.length });
    },
  };
}

export const imageEditsRoute = multipartImageRoute(/^\/v1\/images\/edits$/, true);
export const imageVariationsRoute = multipartImageRoute(/^\/v1\/images\/variations$/, false);
