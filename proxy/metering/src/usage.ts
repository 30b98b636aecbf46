import type { TokenCounts } from '@yugong/schemas';

export const zeroTokens = (): TokenCounts => ({
  prompt: 0,
  cached: 0,
  completion: 0,
  reasoning: 0,
  audioPrompt: 0,
  audioCompletion: 0,
  imagePrompt: 0,
  imageCompletion: 0,
});

type Obj = Record<string, unknown>;
const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const o = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});

export interface ReportedUsage {
  tokens: TokenCounts;
  /** Whisper-style usage: seconds of audio. */
  audioSeconds: number | null;
}

/**
 * Any usage object OpenAI sends, in either naming: chat/completions/embeddings
 * (prompt_tokens…), responses/images/transcriptions (input_tokens…), Whisper ({type:'duration'}).
 */
export function readUsage(raw: unknown, imageOutput = false): ReportedUsage {
  const u = o(raw);
  const t = zeroTokens();
  if (u.type === 'duration') return { tokens: t, audioSeconds: n(u.seconds) };
  const pd = o(u.prompt_tokens_details ?? u.input_tokens_details ?? u.input_token_details);
  const cd = o(u.completion_tokens_details ?? u.output_tokens_details);
  t.prompt = n(u.prompt_tokens ?? u.input_tokens);
  t.completion = n(u.completion_tokens ?? u.output_tokens);
  t.cached = n(pd.cached_tokens);
  t.audioPrompt = n(pd.audio_tokens);
  t.imagePrompt = n(pd.image_tokens);
  t.reasoning = n(cd.reasoning_tokens);
  t.audioCompletion = n(cd.audio_tokens);
  // gpt-image models answer with image tokens only.
  if (imageOutput) t.imageCompletion = t.completion;
  return { tokens: t, audioSeconds: null };
}

/**
 * The last `"usage": {…}` object in the tail of a JSON body. Responses put usage near
 * their end, so the proxy keeps only a tail window instead of buffering whole bodies.
 */
export function usageFromTail(tail: string): unknown {
  const at = tail.lastIndexOf('"usage"');
  if (at < 0) return null;
  const open = tail.indexOf('{', at);
  if (open < 0 || /[^\s:]/.test(tail.slice(at + 7, open))) return null;
  let depth = 0;
  let inString = false;
  for (let i = open; i < tail.length; i++) {
    const c = tail[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try {
        return JSON.parse(tail.slice(open, i + 1));
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** A bounded window of the last bytes of a body. */
export class TailWindow {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = 16 * 1024) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.limit) {
      this.size -= this.chunks.shift()?.length ?? 0;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}
