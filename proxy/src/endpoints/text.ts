import { emptyUsage, nothing, positiveInt, type Billed, type EndpointRequest, type Estimate, type Obj, type Unreported } from './endpoint.js';
import { inlineMedia } from './media.js';
import { countTokens } from '@yugong/metering';

/** The tokens of the chat format around each message (role markers, separators) and the reply's priming. */
const PER_MESSAGE_TOKENS = 4;
const PER_REQUEST_TOKENS = 3;
/** The rendering of a tool's schema into the prompt adds a few framing tokens per tool. */
const PER_TOOL_TOKENS = 16;

const count = (v: unknown): number => (Array.isArray(v) ? v.length : 0);

/**
 * An upper bound of what a text request can cost, for its hold. A byte-level BPE token is at
 * least one byte of text, so no tokenizer counts more tokens in a text than its UTF-8 bytes;
 * the raw JSON body is at least as long as the UTF-8 of every string in it (escapes only make
 * it longer), so the body's bytes bound the tokens of every text field at once: messages,
 * tools and functions, response_format schemas, instructions, token arrays. Inline images and
 * audio (`media`: where they may be) are taken out and bounded by their own rules; the chat
 * format's framing tokens are added; the completion is the budget the request allows
 * (`max_tokens`, or the configured default when it sets none, which is the one part not
 * bounded by the request itself).
 */
export function textHold(req: EndpointRequest, media: unknown, defaultCompletion: number): Estimate {
  const { json, model } = req;
  const usage = emptyUsage();
  const t = usage.tokens;
  const inline = inlineMedia(media, model);
  const framing = PER_REQUEST_TOKENS + PER_MESSAGE_TOKENS * Math.max(1, count(json.messages) + count(json.input)) + PER_TOOL_TOKENS * (count(json.tools) + count(json.functions));
  t.audioPrompt = inline.audioTokens;
  t.prompt = req.bodyBytes - inline.bytes + framing + inline.imageTokens + inline.audioTokens;
  // Predicted output that the model does not use is billed as completion tokens.
  const predicted = json.prediction === undefined ? 0 : Buffer.byteLength(JSON.stringify(json.prediction));
  const n = positiveInt(json.n) ?? 1;
  t.completion = (positiveInt(json.max_completion_tokens) ?? positiveInt(json.max_tokens) ?? positiveInt(json.max_output_tokens) ?? defaultCompletion) * n + predicted;
  // Spoken answers are priced at the audio rate, which is above the text rate.
  if (Array.isArray(json.modalities) && json.modalities.includes('audio')) t.audioCompletion = t.completion;
  return { usage, tokens: t.prompt + t.completion, audioMs: 0 };
}

/** A prompt given as `prompt` or `input`: the string itself, anything else as its JSON. */
export function promptTokens(model: string, json: Obj): number {
  return countTokens(model, typeof json.prompt === 'string' ? json.prompt : typeof json.input === 'string' ? json.input : JSON.stringify(json.input ?? json.prompt ?? ''));
}

/**
 * Text that reached the client before an abort or a cut, without upstream's usage: the
 * delivered text counted with the model's tokenizer, and the prompt as `prompt` counts it.
 */
export function deliveredText(prompt: (model: string, json: Obj) => number): (u: Unreported) => Billed {
  return ({ req, hold, delivered, partial }) => {
    const none = nothing(hold);
    if (delivered.length === 0 && !partial) return { usage: none, source: 'none' };
    return { usage: { ...none, tokens: { ...none.tokens, prompt: prompt(req.model, req.json), completion: countTokens(req.model, delivered) } }, source: 'estimated' };
  };
}
