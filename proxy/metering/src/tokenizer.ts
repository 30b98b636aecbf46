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
 * BPE's merge is quadratic in the length of one pre-token, and a run of letters (or of
 * spaces, or of CJK) with no break is one pre-token: 80,000 × "a" took 7.4 s here. A run
 * longer than this is counted in pieces of this size (a piece can only split a merge, so the
 * count can only grow, by at most one token a piece), which keeps the work linear in the text.
 */
const RUN_PIECE = 256;

const isSpace = (c: number) => c <= 32 || c === 0xa0 || c === 0x3000 || (c >= 0x2000 && c <= 0x200b);

/** Where text is one long run of spaces or of non-spaces: [start, end) pairs, in order. */
function longRuns(text: string): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  let space = isSpace(text.charCodeAt(0));
  for (let i = 1; i <= text.length; i++) {
    const s = i < text.length ? isSpace(text.charCodeAt(i)) : !space;
    if (s === space) continue;
    if (i - start > RUN_PIECE) runs.push([start, i]);
    start = i;
    space = s;
  }
  return runs;
}

export function countTokens(model: string, text: string): number {
  if (text.length === 0) return 0;
  const enc = encoder(encodingForModel(model));
  const count = (from: number, to: number) => (to > from ? enc.encode(text.slice(from, to), NONE, NONE).length : 0);
  let n = 0;
  let at = 0;
  for (const [start, end] of longRuns(text)) {
    n += count(at, start);
    for (let i = start; i < end; i += RUN_PIECE) n += count(i, Math.min(end, i + RUN_PIECE));
    at = end;
  }
  return n + count(at, text.length);
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
