import type { Endpoint } from '@yugong/schemas';

export interface EndpointDef {
  name: Endpoint;
  method: 'GET' | 'POST';
  /** The path after /v1. */
  suffix: string;
  body: 'json' | 'multipart' | 'none';
  model: 'required' | 'optional';
  defaultModel?: string;
  /** Accepts `stream: true` and answers with SSE. */
  streamable: boolean;
}

export const endpoints: EndpointDef[] = [
  { name: 'chat.completions', method: 'POST', suffix: '/chat/completions', body: 'json', model: 'required', streamable: true },
  { name: 'completions', method: 'POST', suffix: '/completions', body: 'json', model: 'required', streamable: true },
  { name: 'embeddings', method: 'POST', suffix: '/embeddings', body: 'json', model: 'required', streamable: false },
  { name: 'images.generations', method: 'POST', suffix: '/images/generations', body: 'json', model: 'optional', defaultModel: 'dall-e-2', streamable: false },
  { name: 'images.edits', method: 'POST', suffix: '/images/edits', body: 'multipart', model: 'optional', defaultModel: 'dall-e-2', streamable: false },
  { name: 'images.variations', method: 'POST', suffix: '/images/variations', body: 'multipart', model: 'optional', defaultModel: 'dall-e-2', streamable: false },
  { name: 'audio.transcriptions', method: 'POST', suffix: '/audio/transcriptions', body: 'multipart', model: 'required', streamable: false },
  { name: 'audio.translations', method: 'POST', suffix: '/audio/translations', body: 'multipart', model: 'required', streamable: false },
  { name: 'audio.speech', method: 'POST', suffix: '/audio/speech', body: 'json', model: 'required', streamable: false },
  { name: 'moderations', method: 'POST', suffix: '/moderations', body: 'json', model: 'optional', defaultModel: 'omni-moderation-latest', streamable: false },
  { name: 'responses', method: 'POST', suffix: '/responses', body: 'json', model: 'required', streamable: true },
];

const bySuffix = new Map(endpoints.map((e) => [e.suffix, e]));

/** "/v1/chat/completions" and the forgetful "/chat/completions" both name the same route. */
export function apiSuffix(path: string): string {
  return path.startsWith('/v1/') || path === '/v1' ? path.slice(3) : path;
}

export function findEndpoint(suffix: string): EndpointDef | undefined {
  return bySuffix.get(suffix);
}

export function isApiPath(path: string): boolean {
  const s = apiSuffix(path);
  return bySuffix.has(s) || s === '/models' || s.startsWith('/models/') || s.startsWith('/dashboard/billing/') || path.startsWith('/v1/');
}
