import { modelAllowed } from '@yugong/schemas';
import { clientErrors } from '../errors.js';
import type { PriceBook } from '../prices.js';
import type { ReadRoute } from './read-route.js';

/** A path segment as the client meant it; a malformed %-escape names no model, so it stays as sent. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export const isModelsSuffix = (suffix: string): boolean => suffix === '/models' || suffix.startsWith('/models/');

/** `/models` and `/models/{id}`: the priced models this key and every account above it may use. */
export function modelsRoute(prices: PriceBook): ReadRoute {
  return {
    label: 'models',
    matches: isModelsSuffix,
    answer({ suffix, key, accounts }) {
      const table = prices.current;
      const created = Math.floor(Date.parse(table.createdAt) / 1000);
      const models = table.models
        .map((m) => m.id)
        .filter((id) => /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/i.test(id) && modelAllowed(key.models, id) && accounts.every((a) => modelAllowed(a.models, id)))
        .map((id) => ({ id, object: 'model', created, owned_by: 'openai' }));
      const id = suffix.startsWith('/models/') ? safeDecode(suffix.slice(8)) : null;
      const body = id === null ? { object: 'list', data: models } : models.find((m) => m.id === id);
      return body ? { status: 200, body } : clientErrors.unknownModel(id ?? '');
    },
  };
}
