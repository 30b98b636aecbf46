import type { MeteredEndpoint } from './endpoint.js';
import { deliveredText, promptTokens, textHold } from './text.js';

export const responses: MeteredEndpoint = {
  name: 'responses',
  method: 'POST',
  suffix: '/responses',
  body: 'json',
  // The Responses API always ends its stream with usage.
  streamable: true,
  hold: (req, defaultCompletion) => textHold(req, req.json.input, defaultCompletion),
  unreported: deliveredText(promptTokens),
};
