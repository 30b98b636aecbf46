import { audioDuration } from '@yugong/metering';

type Obj = Record<string, unknown>;

/**
 * The most tokens one input image can cost. OpenAI scales an image to fit 2048², then its
 * short side to 768: at most 2 × 4 tiles of 512². gpt-4o counts 85 + 170 a tile (1,445);
 * gpt-4o-mini 2,833 + 5,667 a tile (48,169) at a price 33× lower; the patch-counted models
 * (gpt-4.1-mini/nano, o4-mini) at most 1,536 patches × 2.46. Detail does not lower the bound:
 * "auto" may pick high.
 */
function maxImageTokens(model: string): number {
  return /^gpt-4o-mini/.test(model) ? 48_169 : 4_000;
}

/** Speech is never encoded below 2 kbit/s by the formats Whisper accepts: 250 bytes a second at most. */
const MIN_AUDIO_BYTES_PER_SECOND = 250;
/** Input audio is counted at one token per 100 ms. */
export const AUDIO_TOKENS_PER_SECOND = 10;

/** Seconds of audio a file can hold at most: exact from a WAV header, else by the lowest bitrate. */
export function audioSecondsBound(data: Buffer): number {
  const d = audioDuration(data);
  return d.exact ? d.ms / 1000 : data.length / MIN_AUDIO_BYTES_PER_SECOND;
}

/**
 * What a request's payload strings (images and audio sent inline) cost instead of their
 * bytes: each such string's bytes are taken out of the body's count and its own bound is
 * added. Walks only objects that are content parts.
 */
export function inlineMedia(value: unknown, model: string): { bytes: number; imageTokens: number; audioTokens: number } {
  const out = { bytes: 0, imageTokens: 0, audioTokens: 0 };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Obj;
    if (o.type === 'image_url' || o.type === 'input_image') {
      const ref = o.image_url;
      const url = typeof ref === 'string' ? ref : ref && typeof ref === 'object' ? (ref as Obj).url : undefined;
      if (typeof url === 'string') out.bytes += Buffer.byteLength(url);
      out.imageTokens += maxImageTokens(model);
      return;
    }
    if (o.type === 'input_audio' && o.input_audio && typeof o.input_audio === 'object') {
      const data = (o.input_audio as Obj).data;
      if (typeof data === 'string') {
        out.bytes += data.length;
        out.audioTokens += Math.ceil(audioSecondsBound(Buffer.from(data, 'base64')) * AUDIO_TOKENS_PER_SECOND);
      }
      return;
    }
    for (const x of Object.values(o)) walk(x);
  };
  walk(value);
  return out;
}
