import { countTokens } from '../tokens.js';
import { badRequest, int, streamEvents, type Route } from '../context.js';
import { replyPieces } from '../text.js';
import { nowSeconds, openaiId, sendJson, startSse } from '../wire.js';

function prompts(p: unknown): string[] | null {
  if (typeof p === 'string') return [p];
  if (Array.isArray(p) && p.every((x) => typeof x === 'string')) return p as string[];
  return null;
}

export const completionsRoute: Route = {
  method: 'POST',
  path: /^\/v1\/completions$/,
  body: 'json',
  needsModel: true,
  estimateTokens: (ctx) => (prompts(ctx.json.prompt) ?? []).reduce((n, p) => n + countTokens(ctx.model, p), 0) + (int(ctx.json.max_tokens) ?? 16),
  async handle(ctx) {
    const list = prompts(ctx.json.prompt);
    if (!list) return badRequest(ctx, 'prompt', "Invalid type for 'prompt': expected a string or an array of strings.");
    const model = ctx.model;
    const { pieces, truncated } = replyPieces({ reply: ctx.behaviour.reply, maxTokens: int(ctx.json.max_tokens) ?? 16 });
    const text = pieces.join('');
    const prompt = list.reduce((n, p) => n + countTokens(model, p), 0);
    const completion = countTokens(model, text) * list.length;
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const id = openaiId('cmpl-');
    const created = nowSeconds();
    const finish = truncated ? 'length' : 'stop';
    if (ctx.json.stream !== true) {
      const choices = list.map((_, index) => ({ text, index, logprobs: null, finish_reason: finish }));
      sendJson(ctx.res, 200, { id, object: 'text_completion', created, model, choices, usage }, ctx.headers);
      return;
    }
    const includeUsage = (ctx.json.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const chunk = (choices: unknown[]) => ({ id, object: 'text_completion', created, choices, model, ...(includeUsage ? { usage: null } : {}) });
    const events: { data: unknown; content?: boolean }[] = [];
    list.forEach((_, index) => {
      for (const piece of pieces) events.push({ content: true, data: chunk([{ text: piece, index, logprobs: null, finish_reason: null }]) });
      events.push({ data: chunk([{ text: '', index, logprobs: null, finish_reason: finish }]) });
    });
    if (includeUsage) events.push({ data: { ...chunk([]), usage } });
    events.push({ data: '[DONE]' });
    startSse(ctx.res, ctx.headers);
    await streamEvents(ctx, events);
  },
};
