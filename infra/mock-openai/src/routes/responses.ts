import { countChatPromptTokens, countTokens } from '../tokens.js';
import { badRequest, int, streamEvents, type Ctx, type Route } from '../context.js';
import { reasoningTokensFor, replyPieces } from '../text.js';
import { nowSeconds, openaiId, sendJson, startSse } from '../wire.js';
import type { ChatMessageLike } from '@yugong/metering';

function inputMessages(ctx: Ctx): ChatMessageLike[] | null {
  const input = ctx.json.input;
  const instructions = typeof ctx.json.instructions === 'string' ? [{ role: 'system', content: ctx.json.instructions }] : [];
  if (typeof input === 'string') return [...instructions, { role: 'user', content: input }];
  if (Array.isArray(input)) {
    return [
      ...instructions,
      ...(input as { role?: unknown; content?: unknown }[]).map((m) => ({
        role: m.role,
        content: Array.isArray(m.content) ? (m.content as { type?: string; text?: unknown }[]).map((p) => (p.type === 'input_image' ? { type: 'image_url' } : { text: p.text })) : m.content,
      })),
    ];
  }
  return null;
}

export const responsesRoute: Route = {
  method: 'POST',
  path: /^\/v1\/responses$/,
  body: 'json',
  needsModel: true,
  estimateTokens: (ctx) => {
    const msgs = inputMessages(ctx);
    return (msgs ? countChatPromptTokens(ctx.model, msgs) : 0) + (int(ctx.json.max_output_tokens) ?? 16);
  },
  async handle(ctx) {
    const messages = inputMessages(ctx);
    if (!messages) return badRequest(ctx, 'input', "Missing required parameter: 'input'.");
    const model = ctx.model;
    const { pieces, truncated } = replyPieces({ reply: ctx.behaviour.reply, maxTokens: int(ctx.json.max_output_tokens) });
    const text = pieces.join('');
    const inputTokens = countChatPromptTokens(model, messages);
    const cached = Math.min(ctx.behaviour.cachedTokens ?? 0, inputTokens);
    const reasoning = reasoningTokensFor(model);
    const outputTokens = countTokens(model, text) + reasoning;
    const id = openaiId('resp_', 48);
    const msgId = openaiId('msg_', 48);
    const base = {
      id,
      object: 'response',
      created_at: nowSeconds(),
      background: false,
      error: null,
      incomplete_details: truncated ? { reason: 'max_output_tokens' } : null,
      instructions: typeof ctx.json.instructions === 'string' ? ctx.json.instructions : null,
      max_output_tokens: int(ctx.json.max_output_tokens) ?? null,
      model,
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: true,
      temperature: 1,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [],
      top_p: 1,
      truncation: 'disabled',
      user: null,
      metadata: {},
    };
    const item = (status: string, t: string) => ({
      id: msgId,
      type: 'message',
      status,
      role: 'assistant',
      content: status === 'in_progress' ? [] : [{ type: 'output_text', annotations: [], logprobs: [], text: t }],
    });
    const usage = {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: inputTokens + outputTokens,
    };
    const done = { ...base, status: truncated ? 'incomplete' : 'completed', output: [item('completed', text)], usage };
    if (ctx.json.stream !== true) {
      sendJson(ctx.res, 200, done, ctx.headers);
      return;
    }
    let seq = 0;
    const ev = (type: string, fields: Record<string, unknown>, content = false) => ({ event: type, content, data: { type, sequence_number: seq++, ...fields } });
    const inProgress = { ...base, status: 'in_progress', output: [], usage: null };
    const part = (t: string) => ({ type: 'output_text', annotations: [], logprobs: [], text: t });
    const events = [
      ev('response.created', { response: inProgress }),
      ev('response.in_progress', { response: inProgress }),
      ev('response.output_item.added', { output_index: 0, item: item('in_progress', '') }),
      ev('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: part('') }),
      ...pieces.map((delta) => ev('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta, logprobs: [] }, true)),
      ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] }),
      ev('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part: part(text) }),
      ev('response.output_item.done', { output_index: 0, item: item('completed', text) }),
      ev(truncated ? 'response.incomplete' : 'response.completed', { response: done }),
    ];
    startSse(ctx.res, ctx.headers);
    await streamEvents(ctx, events);
  },
};
