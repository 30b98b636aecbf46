import assert from 'node:assert/strict';
import { SseMeter } from '../../src/sse.js';
import { readUsage, TailWindow, usageFromTail } from '../../src/usage.js';

const chunk = (content: string | null, usage = 'null') =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[${content === null ? '' : `{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}`}],"usage":${usage}}\n\n`;

describe('metering', () => {
  it('strips what the proxy added to a stream, and keeps the usage for billing', () => {
    const m = new SseMeter('chat.completions', true);
    const usage = '{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}';
    const input = `${chunk('Hel') + chunk('lo') + chunk(null, usage)}data: [DONE]\n\n`;
    // Fed in awkward pieces, as TCP delivers them.
    let out = '';
    for (let i = 0; i < input.length; i += 7) out += m.feed(Buffer.from(input.slice(i, i + 7)));
    // [DONE] is kept back until the usage is recorded.
    assert.equal(out, `${chunk('Hel').replace(',"usage":null', '') + chunk('lo').replace(',"usage":null', '')}`);
    assert.equal(m.takeTerminal(), 'data: [DONE]\n\n');
    assert.equal(m.takeTerminal(), '', 'once');
    assert.deepEqual(m.usage, JSON.parse(usage));
    assert.equal(m.delivered, 'Hello');
    assert.equal(m.done, true);
  });

  it('passes a stream untouched when the client asked for usage', () => {
    const m = new SseMeter('chat.completions', false);
    const input = chunk('a') + chunk(null, '{"prompt_tokens":1,"completion_tokens":1}');
    assert.equal(m.feed(Buffer.from(input)), input);
    assert.equal(m.done, false, 'no [DONE] yet: a cut stream is noticed');
  });

  it('reads usage from the responses API events', () => {
    const m = new SseMeter('responses', false);
    m.feed(Buffer.from('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n'));
    const completed = 'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n';
    assert.equal(m.feed(Buffer.from(completed)), '', 'the terminal event waits for the usage to be recorded');
    assert.equal(m.takeTerminal(), completed);
    assert.equal(m.delivered, 'Hi');
    assert.deepEqual(m.usage, { input_tokens: 3, output_tokens: 1 });
    assert.ok(m.done);
  });

  it('decodes a character split across chunks whole (CJK, emoji), and passes on an endless event unread', () => {
    const m = new SseMeter('chat.completions', false);
    const text = '愚公移山 🏔️';
    const bytes = Buffer.from(chunk(text));
    let out = '';
    // One byte at a time: every multi-byte character is split.
    for (let i = 0; i < bytes.length; i++) out += m.feed(bytes.subarray(i, i + 1));
    assert.equal(out, chunk(text));
    assert.equal(m.delivered, text);
    assert.ok(!out.includes('\uFFFD'));
    const endless = new SseMeter('chat.completions', false);
    let passed = 0;
    for (let i = 0; i < 40; i++) passed += endless.feed(Buffer.alloc(1024 * 1024, 'a')).length;
    assert.ok(passed >= 32 * 1024 * 1024, 'a 40 MiB event without an end is not buffered whole');
  });

  it('finds usage at the end of a large JSON body from a small tail', () => {
    const tail = new TailWindow(1024);
    const body = `{"data":[${'1.0,'.repeat(100_000)}1.0],"usage":{"prompt_tokens":12,"total_tokens":12}}`;
    for (let i = 0; i < body.length; i += 4096) tail.push(Buffer.from(body.slice(i, i + 4096)));
    assert.deepEqual(usageFromTail(tail.text()), { prompt_tokens: 12, total_tokens: 12 });
    assert.equal(usageFromTail('{"usage": null}'), null);
    assert.deepEqual(usageFromTail('{"x":"\\"usage\\": {","usage":{"a":1}}'), { a: 1 });
  });

  it('maps every OpenAI usage shape onto token kinds', () => {
    const chat = readUsage({
      prompt_tokens: 100,
      completion_tokens: 50,
      prompt_tokens_details: { cached_tokens: 40, audio_tokens: 5 },
      completion_tokens_details: { reasoning_tokens: 20, audio_tokens: 3 },
    });
    assert.deepEqual(chat.tokens, { prompt: 100, cached: 40, completion: 50, reasoning: 20, audioPrompt: 5, audioCompletion: 3, imagePrompt: 0, imageCompletion: 0 });
    const responses = readUsage({ input_tokens: 10, input_tokens_details: { cached_tokens: 2 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 3 } });
    assert.equal(responses.tokens.prompt, 10);
    assert.equal(responses.tokens.reasoning, 3);
    const image = readUsage({ input_tokens: 20, input_tokens_details: { text_tokens: 10, image_tokens: 10 }, output_tokens: 4160 }, true);
    assert.equal(image.tokens.imageCompletion, 4160);
    assert.equal(image.tokens.imagePrompt, 10);
    assert.deepEqual(readUsage({ type: 'duration', seconds: 12 }).audioSeconds, 12);
    assert.equal(readUsage({ prompt_tokens: -3 }).tokens.prompt, 0);
  });
});
