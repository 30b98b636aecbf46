import { get_encoding, type Tiktoken } from 'tiktoken';

/**
 * OpenAI's tokenizers, for counting what was delivered when upstream usage is missing (a
 * client abort or a cut stream). o200k_base for the gpt-4o/4.1/5, o-series and gpt-image
 * families, cl100k_base for gpt-4, gpt-3.5 and the embedding models.
 *
 * The WASM build keeps its rank tables in WASM memory: the pure-JS tokenizer held them as
 * about 100 MB of Maps on the JS heap, which every major garbage collection of a proxy had
 * to mark again.
 */
export type EncodingName = 'o200k_base' | 'cl100k_base';

const encoders = new Map<EncodingName, Tiktoken>();
/** Special tokens in delivered text are counted as the text they are, never refused. */
const NONE: string[] = [];

function encoder(name: EncodingName): Tiktoken {
  let enc = encoders.get(name);
  if (!enc) {
    // Loaded once per process and kept for its lifetime (never freed).
    enc = get_encoding(name);
    encoders.set(name, enc);
  }
  return enc;
}

/**
 * Loads every encoding now. A proxy calls this at start: the first count otherwise loads
 * its rank table synchronously, in the middle of serving, and stalls every request for a
 * second or more on a slow machine.
 */
export function loadTokenizers(): void {
  for (const name of ['o200k_base', 'cl100k_base'] as const) encoder(name);
}

export function encodingForModel(model: string): EncodingName {
  const m = model.replace(/^ft:/, '');
  if (/^(gpt-4-|gpt-4$|gpt-3\.5|gpt-35|text-embedding|davinci|babbage)/.test(m) && !/^gpt-4\.|^gpt-4o/.test(m)) return 'cl100k_base';
  return 'o200k_base';
}

/**
 * BPE's merge is quadratic in the length of one pre-token, and what makes one pre-token is the
 * tokenizer's own word split, which a client can dodge (a run of letters, of spaces, or of
 * characters of two classes in turn): 80,000 × "a" took 7.4 s here. So text is counted in
 * pieces of at most this many characters, cut before a space where the piece has one (which
 * keeps ordinary words whole, so prose counts exactly), else anywhere but inside a surrogate
 * pair. A cut can only stop a merge: the count grows by at most one token a piece, and the
 * work is linear in the text.
 */
const PIECE = 256;

const isSpace = (c: number) => c <= 32 || c === 0xa0 || c === 0x3000 || (c >= 0x2000 && c <= 0x200b);
const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;

export function countTokens(model: string, text: string): number {
  if (text.length === 0) return 0;
  const enc = encoder(encodingForModel(model));
  let n = 0;
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + PIECE);
    if (end < text.length) {
      let cut = end;
      while (cut > at + 1 && !isSpace(text.charCodeAt(cut))) cut--;
      if (cut > at + 1) end = cut;
      else if (isHighSurrogate(text.charCodeAt(end - 1))) end--;
    }
    n += enc.encode(text.slice(at, end), NONE, NONE).length;
    at = end;
  }
  return n;
}

type ContentPart = { type?: string; text?: unknown; image_url?: unknown; input_audio?: unknown };
export interface ChatMessageLike {
  role?: unknown;
  name?: unknown;
  content?: unknown;
  tool_calls?: unknown;
}

/** Tokens an image part costs: low detail 85, otherwise a 1024² image's 4 tiles (765). */
function imageTokens(part: ContentPart): number {
  const detail = typeof part.image_url === 'object' && part.image_url !== null ? (part.image_url as { detail?: unknown }).detail : undefined;
  return detail === 'low' ? 85 : 765;
}

function contentTokens(model: string, content: unknown): number {
  if (typeof content === 'string') return countTokens(model, content);
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content as ContentPart[]) {
    if (typeof part?.text === 'string') n += countTokens(model, part.text);
    else if (part?.type === 'image_url') n += imageTokens(part);
  }
  return n;
}

/**
 * Prompt tokens of a chat request the way OpenAI's cookbook counts them: 3 per message,
 * 1 per name, 3 to prime the reply. Exact for text; images are counted by detail.
 */
export function countChatPromptTokens(model: string, messages: readonly ChatMessageLike[]): number {
  let n = 3;
  for (const m of messages) {
    n += 3;
    if (typeof m.role === 'string') n += countTokens(model, m.role);
    if (typeof m.name === 'string') n += countTokens(model, m.name) + 1;
    n += contentTokens(model, m.content);
    if (m.tool_calls !== undefined) n += countTokens(model, JSON.stringify(m.tool_calls));
  }
  return n;
}
