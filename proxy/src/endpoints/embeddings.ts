import { clientErrors } from '../errors.js';
import { emptyUsage, nothing, type MeteredEndpoint } from './endpoint.js';

export const embeddings: MeteredEndpoint = {
  name: 'embeddings',
  method: 'POST',
  suffix: '/embeddings',
  body: 'json',
  streamable: false,
  validate: (json) => (typeof json.input === 'string' || Array.isArray(json.input) ? null : clientErrors.wrongType('input', 'a string or an array')),
  // Every input is text or tokens in the body: its bytes bound its tokens.
  hold(req) {
    const usage = emptyUsage();
    usage.tokens.prompt = req.bodyBytes;
    return { usage, tokens: req.bodyBytes, audioMs: 0 };
  },
  unreported: ({ hold }) => ({ usage: nothing(hold), source: 'none' }),
};
