import { audioDuration, type BillableUsage, type Endpoint } from '@yugong/schemas';
import { zeroTokens } from './usage.js';

type Obj = Record<string, unknown>;

/** Characters of text a request sends; images count as a 1024² image's 765 tokens. */
function promptChars(value: unknown): { chars: number; imageTokens: number } {
  let chars = 0;
  let imageTokens = 0;
  const walk = (v: unknown): void => {
    if (typeof v === 'string') chars += v.length;
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Obj;
      if (o.type === 'image_url' || o.type === 'input_image') imageTokens += 765;
      else for (const [k, x] of Object.entries(o)) if (k !== 'image_url' && k !== 'image') walk(x);
    }
  };
  walk(value);
  return { chars, imageTokens };
}

export interface Estimate {
  usage: BillableUsage;
  /** Tokens counted against TPM: the prompt estimate plus the completion budget. */
  tokens: number;
}

const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
const GPT_IMAGE_TOKENS: Record<string, number> = { low: 272, medium: 1056, high: 4160, auto: 4160 };

/**
 * A deliberately generous estimate of what a request will cost, for its hold: a third of
 * a token per character of prompt (OpenAI averages a quarter) and the full completion
 * budget. CJK text runs nearer one token per character, so its holds can fall short; the
 * overdraft that allows is bounded by one request's estimate error.
 */
export function estimate(endpoint: Endpoint, model: string, json: Obj, multipart: { fields: Record<string, string>; files: { field: string; data: Buffer }[] } | null, defaultCompletion: number): Estimate {
  const usage: BillableUsage = { tokens: zeroTokens(), images: 0, imageSize: null, imageQuality: null, audioMs: 0, speechCharacters: 0 };
  const t = usage.tokens;
  const n = int(json.n) ?? 1;
  switch (endpoint) {
    case 'chat.completions':
    case 'completions':
    case 'responses': {
      const { chars, imageTokens } = promptChars(endpoint === 'chat.completions' ? json.messages : endpoint === 'completions' ? json.prompt : [json.input, json.instructions]);
      t.prompt = Math.ceil(chars / 3) + imageTokens + (Array.isArray(json.tools) ? Math.ceil(JSON.stringify(json.tools).length / 3) : 0);
      t.completion = (int(json.max_completion_tokens) ?? int(json.max_tokens) ?? int(json.max_output_tokens) ?? defaultCompletion) * n;
      break;
    }
    case 'embeddings':
      t.prompt = Math.ceil(promptChars(json.input).chars / 3) + (Array.isArray(json.input) ? json.input.length : 1);
      break;
    case 'images.generations':
    case 'images.edits':
    case 'images.variations': {
      const f = multipart?.fields ?? {};
      const count = int(json.n) ?? (Number(f.n) || 1);
      usage.images = count;
      usage.imageSize = (typeof json.size === 'string' ? json.size : f.size) ?? '1024x1024';
      const quality = (typeof json.quality === 'string' ? json.quality : f.quality) ?? null;
      usage.imageQuality = quality === 'hd' ? 'hd' : 'standard';
      if (model.startsWith('gpt-image')) {
        t.prompt = Math.ceil(String(json.prompt ?? f.prompt ?? '').length / 3) + (multipart?.files.length ?? 0) * 323;
        t.completion = t.imageCompletion = (GPT_IMAGE_TOKENS[quality ?? 'auto'] ?? 4160) * count;
        usage.images = 0;
      }
      break;
    }
    case 'audio.transcriptions':
    case 'audio.translations': {
      const file = multipart?.files.find((f) => f.field === 'file');
      usage.audioMs = file ? audioDuration(file.data).ms : 0;
      // Token-priced transcription models: about 10 audio tokens a second, plus the text out.
      t.prompt = t.audioPrompt = Math.ceil((usage.audioMs / 1000) * 10);
      t.completion = Math.ceil((usage.audioMs / 1000) * 5);
      break;
    }
    case 'audio.speech': {
      const input = typeof json.input === 'string' ? json.input : '';
      usage.speechCharacters = input.length;
      t.prompt = Math.ceil(input.length / 3);
      t.completion = t.audioCompletion = input.length * 2;
      break;
    }
    default:
      break;
  }
  return { usage, tokens: t.prompt + t.completion };
}
