import { clientErrors } from '../errors.js';
import type { MeteredEndpoint } from './endpoint.js';
import { deliveredText, textHold } from './text.js';
import { countChatPromptTokens, type ChatMessageLike } from '@yugong/metering';

export const chatCompletions: MeteredEndpoint = {
  name: 'chat.completions',
  method: 'POST',
  suffix: '/chat/completions',
  body: 'json',
  streamable: true,
  usageOnRequest: true,
  validate(json) {
    if (!Array.isArray(json.messages)) return clientErrors.wrongType('messages', 'an array of message objects');
    // As OpenAI does: each message is an object; anything else never reaches upstream.
    const bad = json.messages.findIndex((m) => typeof m !== 'object' || m === null || Array.isArray(m));
    return bad >= 0 ? clientErrors.wrongType(`messages[${bad}]`, 'an object') : null;
  },
  hold: (req, defaultCompletion) => textHold(req, req.json.messages, defaultCompletion),
  // validate() made `messages` an array of objects.
  unreported: deliveredText((model, json) => countChatPromptTokens(model, json.messages as ChatMessageLike[])),
};
