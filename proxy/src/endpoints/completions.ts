import type { MeteredEndpoint } from './endpoint.js';
import { deliveredText, promptTokens, textHold } from './text.js';

export const completions: MeteredEndpoint = {
  name: 'completions',
  method: 'POST',
  suffix: '/completions',
  body: 'json',
  streamable: true,
  usageOnRequest: true,
  // A legacy prompt is text or tokens only: no inline media.
  hold: (req, defaultCompletion) => textHold(req, null, defaultCompletion),
  unreported: deliveredText(promptTokens),
};
