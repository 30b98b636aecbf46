import { nothing, emptyUsage, type MeteredEndpoint } from './endpoint.js';

/** Free at OpenAI: nothing held, nothing billed, but counted and limited like any request. */
export const moderations: MeteredEndpoint = {
  name: 'moderations',
  method: 'POST',
  suffix: '/moderations',
  body: 'json',
  defaultModel: 'omni-moderation-latest',
  streamable: false,
  hold: () => ({ usage: emptyUsage(), tokens: 0, audioMs: 0 }),
  unreported: ({ hold }) => ({ usage: nothing(hold), source: 'none' }),
};
