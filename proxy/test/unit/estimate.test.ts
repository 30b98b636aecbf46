import assert from 'node:assert/strict';
import fc from 'fast-check';
import { meteredEndpoints, type MeteredEndpoint } from '../../src/endpoints/index.js';
import { countChatPromptTokens, countTokens, loadTokenizers, silentWav } from '@yugong/metering';

/** Texts a tokenizer finds expensive: CJK, Hangul, Devanagari, emoji, rare scripts, symbols, control characters. */
const ADVERSARIAL = [
  '𒀀'.repeat(3000), // cuneiform: four UTF-8 bytes and several tokens a character
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢'.repeat(400),
  '한국어 텍스트는 비싸다'.repeat(200),
  '中文文本的令牌更多'.repeat(300),
  'हिन्दी पाठ अधिक टोकन'.repeat(200),
  '👩‍👩‍👧‍👦🏳️‍🌈🧑🏿‍🚀'.repeat(300),
  'ⅦⅧ∰⨌⫷⟁'.repeat(500),
  '\u0000\u0001\u001f\u007f'.repeat(500),
  'ꦲꦏ꧀ꦱꦫꦗꦮ'.repeat(300), // Javanese
];

/** Strings from every plane, not only the characters tokenizers know well. */
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: 'grapheme', maxLength: 200 }), fc.constantFrom(...ADVERSARIAL));

/** What OpenAI (and the mock) would count as the prompt of a chat request. */
function chatPromptTokens(model: string, body: Record<string, unknown>): number {
  const tools = Array.isArray(body.tools) ? countTokens(model, JSON.stringify(body.tools)) : 0;
  return countChatPromptTokens(model, body.messages as never) + tools;
}

function endpoint(name: MeteredEndpoint['name']): MeteredEndpoint {
  const found = meteredEndpoints.find((e) => e.name === name);
  if (!found) throw new Error(`no endpoint ${name}`);
  return found;
}

/** The hold an endpoint's module estimates for a JSON body, with a default completion budget of 1,024 tokens. */
function bound(name: MeteredEndpoint['name'], model: string, body: Record<string, unknown>) {
  return endpoint(name).hold({ model, json: body, multipart: null, bodyBytes: Buffer.byteLength(JSON.stringify(body)) }, 1024);
}

describe('the hold is an upper bound of the cost', function () {
  this.timeout(120_000);
  before(() => loadTokenizers());

  for (const model of ['gpt-4o-mini', 'gpt-4']) {
    it(`chat prompts of any text, with tools, on ${model}`, () => {
      fc.assert(
        fc.property(fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: anyText }), { minLength: 1, maxLength: 4 }), fc.option(anyText), (messages, toolText) => {
          const body: Record<string, unknown> = { model, messages, max_tokens: 10 };
          if (toolText !== null)
            body.tools = [{ type: 'function', function: { name: 'f', description: toolText, parameters: { type: 'object', properties: { q: { type: 'string', description: toolText } } } } }];
          const est = bound('chat.completions', model, body);
          const real = chatPromptTokens(model, body);
          return est.usage.tokens.prompt >= real;
        }),
        { numRuns: 120 },
      );
    });
  }

  it('the adversarial prompts one by one, as a whole message and as a tool schema', () => {
    for (const text of ADVERSARIAL) {
      for (const body of [
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] },
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', description: text, parameters: { type: 'object', properties: {} } } }] },
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text }] }] },
      ]) {
        assert.ok(bound('chat.completions', 'gpt-4o-mini', body).usage.tokens.prompt >= chatPromptTokens('gpt-4o-mini', body), text.slice(0, 10));
      }
      assert.ok(bound('completions', 'gpt-4o-mini', { model: 'x', prompt: text }).usage.tokens.prompt >= countTokens('gpt-4o-mini', text));
      assert.ok(bound('embeddings', 'text-embedding-3-small', { model: 'x', input: [text, text] }).usage.tokens.prompt >= 2 * countTokens('text-embedding-3-small', text));
    }
  });

  it('counts response_format schemas, prediction and function definitions', () => {
    const schema = { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object', properties: { a: { type: 'string', description: '中文'.repeat(500) } } } } };
    const plain = bound('chat.completions', 'gpt-4o-mini', { messages: [{ role: 'user', content: 'x' }], max_tokens: 10 });
    const withSchema = bound('chat.completions', 'gpt-4o-mini', { messages: [{ role: 'user', content: 'x' }], max_tokens: 10, response_format: schema });
    assert.ok(withSchema.usage.tokens.prompt - plain.usage.tokens.prompt >= countTokens('gpt-4o-mini', JSON.stringify(schema)));
    const predicted = bound('chat.completions', 'gpt-4o-mini', { messages: [{ role: 'user', content: 'x' }], max_tokens: 10, prediction: { type: 'content', content: 'y'.repeat(1000) } });
    assert.ok(predicted.usage.tokens.completion >= 10 + 1000);
    const fns = bound('chat.completions', 'gpt-4o-mini', { messages: [{ role: 'user', content: 'x' }], functions: [{ name: 'f', description: '한'.repeat(900) }] });
    assert.ok(fns.usage.tokens.prompt > countTokens('gpt-4o-mini', '한'.repeat(900)));
  });

  it('bounds inline images by the most an image can cost, not by their base64 bytes', () => {
    const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(100_000)}`, detail: 'low' } };
    const est = bound('chat.completions', 'gpt-4o', { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it' }, image] }] });
    assert.ok(est.usage.tokens.prompt >= 85 + 170 * 8, 'at least the largest image gpt-4o bills');
    assert.ok(est.usage.tokens.prompt < 10_000, 'the base64 is not counted as text');
    const mini = bound('chat.completions', 'gpt-4o-mini', { messages: [{ role: 'user', content: [image] }] });
    assert.ok(mini.usage.tokens.prompt >= 2833 + 5667 * 8);
  });

  it('bounds input audio by its length and prices spoken answers at the audio rate', () => {
    const wav = silentWav(3000).toString('base64');
    const est = bound('chat.completions', 'gpt-4o-audio-preview', {
      modalities: ['text', 'audio'],
      max_tokens: 100,
      messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: wav, format: 'wav' } }] }],
    });
    assert.ok(est.usage.tokens.audioPrompt >= 30, 'three seconds at ten tokens a second');
    assert.ok(est.usage.tokens.prompt < 200);
    assert.equal(est.usage.tokens.audioCompletion, 100);
  });

  it('bounds a transcription by its audio: exact for WAV, the lowest bitrate otherwise; bills the likely length', () => {
    const upload = (data: Buffer) =>
      endpoint('audio.transcriptions').hold({ model: 'whisper-1', json: {}, multipart: { fields: {}, files: [{ field: 'file', filename: 'a.wav', data }] }, bodyBytes: 0 }, 1024);
    const wav = upload(silentWav(2000));
    assert.equal(wav.usage.audioMs, 2000);
    assert.equal(wav.audioMs, 2000);
    const opaque = upload(Buffer.alloc(16_000, 7));
    assert.equal(opaque.usage.audioMs, 64_000, '16 kB at 2 kbit/s');
    assert.ok(opaque.audioMs < opaque.usage.audioMs);
  });
});
