import { errors, sendJson } from '../wire.js';
import type { Route } from '../context.js';

/** The models the mock serves (and lists), with OpenAI's creation times where known. */
export const MODELS: { id: string; created: number }[] = [
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-4o',
  'gpt-4o-2024-08-06',
  'gpt-4o-mini',
  'gpt-4o-audio-preview',
  'o1',
  'o3',
  'o3-mini',
  'o4-mini',
  'gpt-4-turbo',
  'gpt-4',
  'gpt-3.5-turbo',
  'gpt-3.5-turbo-instruct',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
  'dall-e-2',
  'dall-e-3',
  'gpt-image-1',
  'whisper-1',
  'gpt-4o-transcribe',
  'gpt-4o-mini-transcribe',
  'tts-1',
  'tts-1-hd',
  'gpt-4o-mini-tts',
  'omni-moderation-latest',
  'text-moderation-latest',
].map((id, i) => ({ id, created: 1_700_000_000 + i * 86_400 }));

const known = new Set(MODELS.map((m) => m.id));

/** Dated snapshots (gpt-4o-2024-11-20) and fine-tunes (ft:gpt-4o-mini:…) of a known model exist too. */
export function modelExists(model: string, allowed?: string[]): boolean {
  const base = model.replace(/^ft:([^:]+):.*$/, '$1').replace(/-\d{4}-\d{2}-\d{2}$/, '');
  const exists = known.has(model) || known.has(base);
  return exists && (!allowed || allowed.includes(model) || allowed.includes(base));
}

function modelObject(m: { id: string; created: number }) {
  return { id: m.id, object: 'model', created: m.created, owned_by: m.id.startsWith('gpt-3.5') || m.id.startsWith('text-') ? 'openai' : 'system' };
}

export const listModelsRoute: Route = {
  method: 'GET',
  path: /^\/v1\/models$/,
  body: 'none',
  needsModel: false,
  estimateTokens: () => 0,
  handle(ctx) {
    const allowed = ctx.behaviour.models;
    sendJson(ctx.res, 200, { object: 'list', data: MODELS.filter((m) => !allowed || allowed.includes(m.id)).map(modelObject) }, ctx.headers);
  },
};

export const retrieveModelRoute: Route = {
  method: 'GET',
  path: /^\/v1\/models\/(.+)$/,
  body: 'none',
  needsModel: false,
  estimateTokens: () => 0,
  handle(ctx, [id = '']) {
    const model = MODELS.find((m) => m.id === decodeURIComponent(id));
    if (!model || !modelExists(model.id, ctx.behaviour.models)) {
      sendJson(ctx.res, 404, errors.modelNotFound(decodeURIComponent(id)), ctx.headers);
      return;
    }
    sendJson(ctx.res, 200, modelObject(model), ctx.headers);
  },
};
