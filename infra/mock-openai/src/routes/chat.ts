import { countChatPromptTokens, countTokens } from '../tokens.js';
import { badRequest, int, streamEvents, type Ctx, type Route } from '../context.js';
import { replyPieces, reasoningTokensFor } from '../text.js';
import { nowSeconds, openaiId, sendJson, startSse } from '../wire.js';
import type { ChatMessageLike } from '@yugong/metering';

interface ToolDef {
  type?: string;
  function?: { name?: string; parameters?: { properties?: Record<string, { type?: string }> } };
}

/** Arguments that satisfy the tool's schema shape: "mock" strings, 1s and trues. */
function toolArguments(tool: ToolDef): string {
  const args: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(tool.function?.parameters?.properties ?? {})) {
    args[name] = prop.type === 'number' || prop.type === 'integer' ? 1 : prop.type === 'boolean' ? true : 'mock';
  }
  return JSON.stringify(args);
}

function chosenTool(body: Ctx['json']): ToolDef | null {
  const tools = body.tools;
  if (!Array.isArray(tools) || tools.length === 0 || body.tool_choice === 'none') return null;
  const messages = body.messages as ChatMessageLike[];
  if (messages[messages.length - 1]?.role === 'tool') return null; // the tool answered: reply in text
  const choice = body.tool_choice as { function?: { name?: string } } | undefined;
  const named = choice?.function?.name;
  return ((named ? (tools as ToolDef[]).find((t) => t.function?.name === named) : tools[0]) as ToolDef) ?? null;
}

export function usageOf(prompt: number, cached: number, completion: number, reasoning: number) {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion + reasoning,
    total_tokens: prompt + completion + reasoning,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function promptTokens(ctx: Ctx): number {
  const messages = ctx.json.messages as ChatMessageLike[];
  const tools = ctx.json.tools;
  return countChatPromptTokens(ctx.model, messages) + (Array.isArray(tools) ? countTokens(ctx.model, JSON.stringify(tools)) : 0);
}

export const chatRoute: Route = {
  method: 'POST',
  path: /^\/v1\/chat\/completions$/,
  body: 'json',
  needsModel: true,
  estimateTokens: (ctx) => (Array.isArray(ctx.json.messages) ? promptTokens(ctx) : 0) + (int(ctx.json.max_completion_tokens ?? ctx.json.max_tokens) ?? 16),
  async handle(ctx) {
    const b = ctx.json;
    if (!Array.isArray(b.messages)) return badRequest(ctx, 'messages', `Invalid type for 'messages': expected an array of objects, but got a ${typeof b.messages} instead.`);
    if (b.messages.length === 0) return badRequest(ctx, 'messages', "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.");
    const model = ctx.model;
    const n = int(b.n) ?? 1;
    const maxTokens = int(b.max_completion_tokens ?? b.max_tokens);
    const prompt = promptTokens(ctx);
    const cached = Math.min(ctx.behaviour.cachedTokens ?? 0, prompt);
    const reasoning = reasoningTokensFor(model);
    const tool = chosenTool(b);
    const { pieces, truncated } = replyPieces({ reply: ctx.behaviour.reply, maxTokens });
    const text = pieces.join('');
    const args = tool ? toolArguments(tool) : '';
    const perChoice = tool ? countTokens(model, args) : countTokens(model, text);
    const usage = usageOf(prompt, cached, perChoice * n, reasoning);
    const finish = tool ? 'tool_calls' : truncated ? 'length' : 'stop';
    const id = openaiId('chatcmpl-');
    const created = nowSeconds();
    const fingerprint = 'fp_mock0001';
    const callId = openaiId('call_', 24);

    if (b.stream !== true) {
      const choices = Array.from({ length: n }, (_, index) => ({
        index,
        message: tool
          ? { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: tool.function?.name ?? 'tool', arguments: args } }], refusal: null, annotations: [] }
          : { role: 'assistant', content: text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: finish,
      }));
      sendJson(ctx.res, 200, { id, object: 'chat.completion', created, model, choices, usage, service_tier: 'default', system_fingerprint: fingerprint }, ctx.headers);
      return;
    }

    const includeUsage = (b.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      service_tier: 'default',
      system_fingerprint: fingerprint,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });
    const events: { data: unknown; content?: boolean }[] = [];
    for (let index = 0; index < n; index++) {
      if (tool) {
        events.push({
          data: chunk([
            {
              index,
              delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: tool.function?.name ?? 'tool', arguments: '' } }], refusal: null },
              logprobs: null,
              finish_reason: null,
            },
          ]),
        });
        for (const piece of args.match(/.{1,8}/g) ?? []) {
          events.push({ content: true, data: chunk([{ index, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, logprobs: null, finish_reason: null }]) });
        }
      } else {
        events.push({ data: chunk([{ index, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]) });
        for (const piece of pieces) events.push({ content: true, data: chunk([{ index, delta: { content: piece }, logprobs: null, finish_reason: null }]) });
      }
      events.push({ data: chunk([{ index, delta: {}, logprobs: null, finish_reason: finish }]) });
    }
    if (includeUsage) events.push({ data: { ...chunk([]), usage } });
    events.push({ data: '[DONE]' });
    startSse(ctx.res, ctx.headers);
    await streamEvents(ctx, events);
  },
};
