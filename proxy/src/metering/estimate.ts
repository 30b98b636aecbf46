import { audioDuration, type BillableUsage, type Endpoint } from '@yugong/schemas';
import { zeroTokens } from './usage.js';

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
const AUDIO_TOKENS_PER_SECOND = 10;
/** The tokens of the chat format around each message (role markers, separators) and the reply's priming. */
const PER_MESSAGE_TOKENS = 4;
const PER_REQUEST_TOKENS = 3;
/** The rendering of a tool's schema into the prompt adds a few framing tokens per tool. */
const PER_TOOL_TOKENS = 16;

/** Seconds of audio a file can hold at most: exact from a WAV header, else by the lowest bitrate. */
function audioSecondsBound(data: Buffer): number {
  const d = audioDuration(data);
  return d.exact ? d.ms / 1000 : data.length / MIN_AUDIO_BYTES_PER_SECOND;
}

/**
 * What a request's payload strings (images and audio sent inline) cost instead of their
 * bytes: each such string's bytes are taken out of the body's count and its own bound is
 * added. Walks only objects that are content parts.
 */
function inlineMedia(value: unknown, model: string): { bytes: number; imageTokens: number; audioTokens: number } {
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

export interface Estimate {
  usage: BillableUsage;
  /** Tokens counted against TPM: the prompt bound plus the completion budget. */
  tokens: number;
  /** The audio's likely length (not its bound), billed when upstream reports none. */
  audioMs: number;
}

const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
const count = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
/** Output tokens of one gpt-image picture, the largest size of each quality. */
const GPT_IMAGE_TOKENS: Record<string, number> = { low: 408, medium: 1568, high: 6240, auto: 6240 };
/** Input tokens of one image given to gpt-image (65 + 129 a tile, 8 tiles at most), rounded up. */
const GPT_IMAGE_INPUT_TOKENS = 1_100;

/**
 * An upper bound of what a request can cost, for its hold. A byte-level BPE token is at least
 * one byte of text, so no tokenizer counts more tokens in a text than its UTF-8 bytes; the
 * raw JSON body is at least as long as the UTF-8 of every string in it (escapes only make it
 * longer), so `bodyBytes` bounds the tokens of every text field at once: messages, tools and
 * functions, response_format schemas, instructions, token arrays. Inline images and audio are
 * taken out and bounded by their own rules; the chat format's framing tokens are added; the
 * completion is the budget the request allows (`max_tokens`, or the configured default when
 * it sets none, which is the one part not bounded by the request itself).
 */
export function estimate(
  endpoint: Endpoint, model: string, json: Obj, multipart: { fields: Record<string, string>; files: { field: string; data: Buffer }[] } | null,
  defaultCompletion: number, bodyBytes: number,
): Estimate {
  const usage: BillableUsage = { tokens: zeroTokens(), images: 0, imageSize: null, imageQuality: null, audioMs: 0, speechCharacters: 0 };
  const t = usage.tokens;
  const n = int(json.n) ?? 1;
  let audioMs = 0;
  switch (endpoint) {
    case 'chat.completions':
    case 'completions':
    case 'responses': {
      const media = inlineMedia(endpoint === 'completions' ? null : endpoint === 'chat.completions' ? json.messages : json.input, model);
      const framing = PER_REQUEST_TOKENS + PER_MESSAGE_TOKENS * Math.max(1, count(json.messages) + count(json.input))
        + PER_TOOL_TOKENS * (count(json.tools) + count(json.functions));
      t.audioPrompt = media.audioTokens;
      t.prompt = bodyBytes - media.bytes + framing + media.imageTokens + media.audioTokens;
      // Predicted output that the model does not use is billed as completion tokens.
      const predicted = json.prediction === undefined ? 0 : Buffer.byteLength(JSON.stringify(json.prediction));
      t.completion = (int(json.max_completion_tokens) ?? int(json.max_tokens) ?? int(json.max_output_tokens) ?? defaultCompletion) * n + predicted;
      // Spoken answers are priced at the audio rate, which is above the text rate.
      if (Array.isArray(json.modalities) && json.modalities.includes('audio')) t.audioCompletion = t.completion;
      break;
    }
    case 'embeddings':
      t.prompt = bodyBytes;
      break;
    case 'images.generations':
    case 'images.edits':
    case 'images.variations': {
      const f = multipart?.fields ?? {};
      const images = int(json.n) ?? (Number(f.n) || 1);
      usage.images = images;
      usage.imageSize = (typeof json.size === 'string' ? json.size : f.size) ?? '1024x1024';
      const quality = (typeof json.quality === 'string' ? json.quality : f.quality) ?? null;
      usage.imageQuality = quality === 'hd' ? 'hd' : 'standard';
      if (model.startsWith('gpt-image')) {
        const prompt = typeof json.prompt === 'string' ? json.prompt : f.prompt ?? '';
        t.prompt = Buffer.byteLength(prompt) + (multipart?.files.length ?? 0) * GPT_IMAGE_INPUT_TOKENS;
        t.completion = t.imageCompletion = (GPT_IMAGE_TOKENS[quality ?? 'auto'] ?? GPT_IMAGE_TOKENS.high ?? 0) * images;
        usage.images = 0;
      }
      break;
    }
    case 'audio.transcriptions':
    case 'audio.translations': {
      const file = multipart?.files.find((f) => f.field === 'file');
      const seconds = file ? audioSecondsBound(file.data) : 0;
      usage.audioMs = Math.ceil(seconds * 1000);
      audioMs = file ? audioDuration(file.data).ms : 0;
      // Token-priced transcription models: audio tokens in, and the text out (a few tokens a second).
      t.prompt = t.audioPrompt = Math.ceil(seconds * AUDIO_TOKENS_PER_SECOND) + Buffer.byteLength(multipart?.fields.prompt ?? '');
      t.completion = Math.ceil(seconds * 5);
      break;
    }
    case 'audio.speech': {
      const input = typeof json.input === 'string' ? json.input : '';
      usage.speechCharacters = input.length;
      t.prompt = bodyBytes;
      t.completion = t.audioCompletion = input.length * 2;
      break;
    }
    default:
      break;
  }
  return { usage, tokens: t.prompt + t.completion, audioMs };
}
