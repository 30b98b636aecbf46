/**
 * The mock's replies: a fixed opening and then common words, each a single token in both
 * of OpenAI's encodings, so a reply of N words is about N tokens and usage is exact.
 */
const OPENING = ['Hello', '!', ' This', ' is', ' a', ' reply', ' from', ' the', ' mock', ' upstream', '.'];
const FILLER = [' The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', '.'];

/** The reply split into stream pieces, limited to `maxPieces` (finish_reason "length"). */
export function replyPieces(opts: { reply?: string; words?: number; maxTokens?: number }): { pieces: string[]; truncated: boolean } {
  let pieces: string[];
  if (opts.reply !== undefined) {
    pieces = opts.reply.match(/\s*\S+|\s+$/g) ?? [];
  } else {
    const n = opts.words ?? OPENING.length;
    pieces = OPENING.slice(0, n);
    for (let i = 0; pieces.length < n; i++) pieces.push(FILLER[i % FILLER.length] ?? ' fox');
  }
  if (opts.maxTokens !== undefined && opts.maxTokens >= 0 && pieces.length > opts.maxTokens) {
    return { pieces: pieces.slice(0, opts.maxTokens), truncated: true };
  }
  return { pieces, truncated: false };
}

/** Reasoning models report hidden reasoning tokens, billed as output. */
export function reasoningTokensFor(model: string): number {
  return /^(o\d|gpt-5)/.test(model) ? 64 : 0;
}
