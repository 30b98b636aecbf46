import { countTokens } from '../tokens.js';
import { badRequest, type Route } from '../context.js';
import { openaiId, sendJson } from '../wire.js';

const CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
];

function texts(input: unknown): string[] | null {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    return input.map((x) => (typeof x === 'string' ? x : typeof x === 'object' && x && 'text' in x ? String((x as { text: unknown }).text) : ''));
  }
  return null;
}

export const moderationsRoute: Route = {
  method: 'POST',
  path: /^\/v1\/moderations$/,
  body: 'json',
  needsModel: false,
  defaultModel: 'omni-moderation-latest',
  estimateTokens: (ctx) => (texts(ctx.json.input) ?? []).reduce((n, t) => n + countTokens('gpt-4o', t), 0),
  handle(ctx) {
    const list = texts(ctx.json.input);
    if (!list) return badRequest(ctx, 'input', "Missing required parameter: 'input'.");
    const results = list.map((t) => {
      // Deterministic: text that talks about killing is flagged as violence.
      const violent = /\bkill/i.test(t);
      const categories = Object.fromEntries(CATEGORIES.map((c) => [c, violent && c === 'violence']));
      const category_scores = Object.fromEntries(CATEGORIES.map((c) => [c, violent && c === 'violence' ? 0.91 : 0.0001]));
      const category_applied_input_types = Object.fromEntries(CATEGORIES.map((c) => [c, ['text']]));
      return { flagged: violent, categories, category_scores, category_applied_input_types };
    });
    sendJson(ctx.res, 200, { id: openaiId('modr-', 24), model: ctx.model, results }, ctx.headers);
  },
};
