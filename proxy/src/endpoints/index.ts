import { audioSpeech, audioTranscriptions, audioTranslations } from './audio.js';
import { billingRoute, isBillingSuffix } from './billing.js';
import { chatCompletions } from './chat-completions.js';
import { completions } from './completions.js';
import { embeddings } from './embeddings.js';
import type { MeteredEndpoint } from './endpoint.js';
import { imagesEdits, imagesGenerations, imagesVariations } from './images.js';
import { isModelsSuffix, modelsRoute } from './models.js';
import { moderations } from './moderations.js';
import { responses } from './responses.js';

export type { MeteredEndpoint, EndpointRequest, Estimate, Billed, MultipartView } from './endpoint.js';
export type { ReadRoute, Answer } from './read-route.js';
export { billingRoute, modelsRoute };

export const meteredEndpoints: readonly MeteredEndpoint[] = [
  chatCompletions,
  completions,
  embeddings,
  imagesGenerations,
  imagesEdits,
  imagesVariations,
  audioTranscriptions,
  audioTranslations,
  audioSpeech,
  moderations,
  responses,
];

const meteredSuffixes = new Set(meteredEndpoints.map((e) => e.suffix));

/** "/v1/chat/completions" and the forgetful "/chat/completions" both name the same route. */
export function apiSuffix(path: string): string {
  return path.startsWith('/v1/') || path === '/v1' ? path.slice(3) : path;
}

/** What the API handler serves rather than the control plane's express app: every path under /v1, and the metered routes, models and billing without it. */
export function isApiPath(path: string): boolean {
  const s = apiSuffix(path);
  return meteredSuffixes.has(s) || isModelsSuffix(s) || isBillingSuffix(s) || path.startsWith('/v1/');
}
