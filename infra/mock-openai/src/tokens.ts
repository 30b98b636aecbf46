import { countChatPromptTokens as countChat, countTokens as count, type ChatMessageLike } from '@yugong/metering';

/**
 * The real tokenizer, remembered: benchmarks and load tests send the same texts again and
 * again, and the mock must not be the slowest part of the path it is used to measure.
 */
const memo = new Map<string, number>();

function remember(key: string, compute: () => number): number {
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  const n = compute();
  if (memo.size >= 5_000) memo.clear();
  memo.set(key, n);
  return n;
}

export function countTokens(model: string, text: string): number {
  return remember(`t\u0000${model}\u0000${text}`, () => count(model, text));
}

export function countChatPromptTokens(model: string, messages: readonly ChatMessageLike[]): number {
  return remember(`c\u0000${model}\u0000${JSON.stringify(messages)}`, () => countChat(model, messages));
}
