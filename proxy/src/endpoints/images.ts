import type { Endpoint } from '@yugong/schemas';
import { emptyUsage, positiveInt, whenServed, nothing, type EndpointRequest, type Estimate, type MeteredEndpoint } from './endpoint.js';

/** Output tokens of one gpt-image picture, the largest size of each quality. */
const GPT_IMAGE_TOKENS: Record<string, number> = { low: 408, medium: 1568, high: 6240, auto: 6240 };
/** Input tokens of one image given to gpt-image (65 + 129 a tile, 8 tiles at most), rounded up. */
const GPT_IMAGE_INPUT_TOKENS = 1_100;

const isTokenPriced = (model: string) => model.startsWith('gpt-image');

/** DALL·E is priced per picture of a size and quality; gpt-image by tokens, in and out. */
function hold({ model, json, multipart }: EndpointRequest): Estimate {
  const usage = emptyUsage();
  const t = usage.tokens;
  const f = multipart?.fields ?? {};
  const images = positiveInt(json.n) ?? (Number(f.n) || 1);
  usage.images = images;
  usage.imageSize = (typeof json.size === 'string' ? json.size : f.size) ?? '1024x1024';
  const quality = (typeof json.quality === 'string' ? json.quality : f.quality) ?? null;
  usage.imageQuality = quality === 'hd' ? 'hd' : 'standard';
  if (isTokenPriced(model)) {
    const prompt = typeof json.prompt === 'string' ? json.prompt : (f.prompt ?? '');
    t.prompt = Buffer.byteLength(prompt) + (multipart?.files.length ?? 0) * GPT_IMAGE_INPUT_TOKENS;
    t.completion = t.imageCompletion = (GPT_IMAGE_TOKENS[quality ?? 'auto'] ?? GPT_IMAGE_TOKENS.high ?? 0) * images;
    usage.images = 0;
  }
  return { usage, tokens: t.prompt + t.completion, audioMs: 0 };
}

function images(name: Endpoint, suffix: string, body: 'json' | 'multipart'): MeteredEndpoint {
  return {
    name,
    method: 'POST',
    suffix,
    body,
    defaultModel: 'dall-e-2',
    streamable: false,
    ...(body === 'multipart' ? { upload: 'image' as const } : {}),
    hold,
    // A DALL·E answer reports no tokens: the pictures asked for are the bill.
    fromReport: (usage, req, est) => (isTokenPriced(req.model) ? usage : { ...usage, images: est.usage.images }),
    unreported: whenServed(({ hold: est }) => ({ usage: { ...nothing(est), images: est.usage.images }, source: 'upstream' })),
  };
}

export const imagesGenerations = images('images.generations', '/images/generations', 'json');
export const imagesEdits = images('images.edits', '/images/edits', 'multipart');
export const imagesVariations = images('images.variations', '/images/variations', 'multipart');
