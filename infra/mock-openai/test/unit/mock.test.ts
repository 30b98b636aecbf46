import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { createMockOpenAI, type MockOpenAI } from '../../src/index.js';
import { countChatPromptTokens, countTokens, silentWav } from '@yugong/metering';

describe('mock OpenAI upstream, through the official SDK', function () {
  this.timeout(20_000);
  let mock: MockOpenAI;
  const client = (key = 'sk-test-good', opts: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) => new OpenAI({ apiKey: key, baseURL: mock.baseURL, maxRetries: 0, ...opts });

  before(async () => {
    mock = await createMockOpenAI();
  });
  afterEach(() => mock.reset());
  after(() => mock.close());

  describe('chat completions', () => {
    it('answers non-streaming with exact usage and OpenAI headers', async () => {
      const messages = [{ role: 'user' as const, content: 'Say hello' }];
      const { data, response } = await client().chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      const text = data.choices[0]?.message.content ?? '';
      assert.equal(text, 'Hello! This is a reply from the mock upstream.');
      assert.equal(data.object, 'chat.completion');
      assert.match(data.id, /^chatcmpl-/);
      assert.equal(data.usage?.prompt_tokens, countChatPromptTokens('gpt-4o', messages));
      assert.equal(data.usage?.completion_tokens, countTokens('gpt-4o', text));
      assert.match(response.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '29999');
      assert.equal(response.headers.get('openai-version'), '2020-10-01');
    });

    it('streams chunks and adds the usage chunk only when asked', async () => {
      const withUsage = await client().chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const c of withUsage) chunks.push(c);
      const last = chunks[chunks.length - 1];
      assert.deepEqual(last?.choices, []);
      assert.ok(last?.usage && last.usage.completion_tokens > 0);
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      assert.equal(last?.usage?.completion_tokens, countTokens('gpt-4o-mini', text));

      const plain = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const plainChunks = [];
      for await (const c of plain) plainChunks.push(c);
      assert.ok(plainChunks.every((c) => c.usage === undefined && c.choices.length === 1));
      assert.equal(plainChunks[plainChunks.length - 1]?.choices[0]?.finish_reason, 'stop');
    });

    it('reports cached and reasoning tokens and respects max_tokens', async () => {
      mock.script('sk-cache', { cachedTokens: 5 });
      const r = await client('sk-cache').chat.completions.create({ model: 'o3-mini', messages: [{ role: 'user', content: 'think' }], max_completion_tokens: 3 });
      assert.equal(r.usage?.prompt_tokens_details?.cached_tokens, 5);
      assert.equal(r.usage?.completion_tokens_details?.reasoning_tokens, 64);
      assert.equal(r.choices[0]?.finish_reason, 'length');
      assert.equal(r.choices[0]?.message.content, 'Hello! This');
    });

    it('passes tool calls through, streamed and not', async () => {
      const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
      const r = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'weather?' }], tools });
      const call = r.choices[0]?.message.tool_calls?.[0];
      assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
      assert.equal(call?.type === 'function' ? call.function.name : '', 'get_weather');
      assert.deepEqual(JSON.parse(call?.type === 'function' ? call.function.arguments : '{}'), { city: 'mock' });

      const s = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'weather?' }], tools, stream: true });
      let args = '';
      for await (const c of s) args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      assert.deepEqual(JSON.parse(args), { city: 'mock' });
    });

    it('accepts vision inputs', async () => {
      const r = await client().chat.completions.create({
        model: 'gpt-4o',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
            ],
          },
        ],
      });
      assert.equal(r.usage?.prompt_tokens, 3 + 3 + 1 + countTokens('gpt-4o', 'what is this?') + 85);
    });
  });

  describe('the rest of the API surface', () => {
    it('legacy completions', async () => {
      const r = await client().completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon', max_tokens: 4 });
      assert.equal(r.object, 'text_completion');
      assert.equal(r.choices[0]?.text, 'Hello! This is');
      assert.equal(r.usage?.prompt_tokens, countTokens('gpt-3.5-turbo-instruct', 'Once upon'));
    });

    it('embeddings, as floats and as the SDK default base64', async () => {
      const r = await client().embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
      assert.equal(r.data.length, 2);
      assert.equal(r.data[0]?.embedding.length, 1536);
      const again = await client().embeddings.create({ model: 'text-embedding-3-small', input: 'a', dimensions: 8, encoding_format: 'float' });
      assert.equal(again.data[0]?.embedding.length, 8);
      const norm = Math.sqrt((r.data[0]?.embedding ?? []).reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4);
      const lastRequest = mock.requests[0];
      assert.equal(lastRequest?.json?.encoding_format, 'base64');
    });

    it('images: generations, edits and variations', async () => {
      const g = await client().images.generate({ model: 'dall-e-3', prompt: 'a cat', size: '1024x1792', quality: 'hd', response_format: 'b64_json' });
      assert.ok(g.data?.[0]?.b64_json);
      assert.ok(g.data?.[0]?.revised_prompt);
      const png = await toFile(Buffer.from('iVBORw0KGgo=', 'base64'), 'cat.png', { type: 'image/png' });
      const e = await client().images.edit({ model: 'gpt-image-1', image: png, prompt: 'add a hat' });
      assert.ok(e.usage && e.usage.output_tokens > 0);
      const v = await client().images.createVariation({ image: await toFile(Buffer.from('x'), 'a.png', { type: 'image/png' }), n: 2 });
      assert.equal(v.data?.length, 2);
      await assert.rejects(client().images.generate({ model: 'dall-e-3', prompt: 'x', n: 2 }), (err: unknown) => err instanceof OpenAI.BadRequestError);
    });

    it('audio: transcription (multipart), translation and speech (binary)', async () => {
      const wav = await toFile(silentWav(3_500), 'hello.wav', { type: 'audio/wav' });
      const t = await client().audio.transcriptions.create({ model: 'whisper-1', file: wav });
      assert.equal(t.text, 'Hello! This is a reply from the mock upstream.');
      assert.deepEqual((t as unknown as { usage: unknown }).usage, { type: 'duration', seconds: 4 });
      const verbose = await client().audio.transcriptions.create({ model: 'whisper-1', file: await toFile(silentWav(2_000), 'a.wav'), response_format: 'verbose_json' });
      assert.equal(verbose.duration, 2);
      const tr = await client().audio.translations.create({ model: 'whisper-1', file: await toFile(silentWav(1_000), 'a.wav') });
      assert.ok(tr.text.length > 0);
      const speech = await client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello there' });
      assert.equal(speech.headers.get('content-type'), 'audio/mpeg');
      assert.equal((await speech.arrayBuffer()).byteLength, 4400);
      assert.equal(mock.requests.find((r) => r.path === '/v1/audio/transcriptions')?.multipart?.fields.model, 'whisper-1');
    });

    it('moderations', async () => {
      const r = await client().moderations.create({ model: 'omni-moderation-latest', input: ['I will kill the process', 'hello'] });
      assert.deepEqual(
        r.results.map((x) => x.flagged),
        [true, false],
      );
      assert.equal(r.results[0]?.categories.violence, true);
    });

    it('responses, streamed and not', async () => {
      const r = await client().responses.create({ model: 'gpt-4o', input: 'Say hi', instructions: 'be brief' });
      assert.equal(r.output_text, 'Hello! This is a reply from the mock upstream.');
      assert.ok(r.usage && r.usage.input_tokens > 0);
      const s = await client().responses.create({ model: 'gpt-4o', input: 'Say hi', stream: true });
      const types: string[] = [];
      let text = '';
      for await (const e of s) {
        types.push(e.type);
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.completed') assert.ok(e.response.usage && e.response.usage.output_tokens > 0);
      }
      assert.equal(types[0], 'response.created');
      assert.equal(types[types.length - 1], 'response.completed');
      assert.equal(text, 'Hello! This is a reply from the mock upstream.');
    });

    it('models: list, retrieve, 404, and a key limited to some models', async () => {
      const all = [];
      for await (const m of client().models.list()) all.push(m.id);
      assert.ok(all.includes('gpt-4o') && all.includes('whisper-1'));
      assert.equal((await client().models.retrieve('gpt-4o')).id, 'gpt-4o');
      await assert.rejects(client().models.retrieve('gpt-9'), (err: unknown) => err instanceof OpenAI.NotFoundError);
      mock.script('sk-limited', { models: ['gpt-4o-mini'] });
      await assert.rejects(
        client('sk-limited').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
        (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
      );
    });
  });

  describe('scripted failures', () => {
    const ask = (key: string, opts = {}) => client(key, opts).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });

    it('401 for a key scripted invalid or missing', async () => {
      mock.script('sk-bad', { valid: false });
      await assert.rejects(ask('sk-bad'), (err: unknown) => err instanceof OpenAI.AuthenticationError && err.code === 'invalid_api_key');
      const res = await fetch(`${mock.baseURL}/chat/completions`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 401);
    });

    it('429 with retry-after, insufficient_quota, 500, 502 (HTML) and 503, each once', async () => {
      mock.fail('sk-f', { kind: 'rate_limit', retryAfterS: 7 });
      await assert.rejects(ask('sk-f'), (err: unknown) => err instanceof OpenAI.RateLimitError && err.headers.get('retry-after') === '7' && err.code === 'rate_limit_exceeded');
      mock.fail('sk-f', { kind: 'insufficient_quota' });
      await assert.rejects(ask('sk-f'), (err: unknown) => err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota');
      mock.fail('sk-f', { kind: 'server_error' });
      await assert.rejects(ask('sk-f'), (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 500);
      mock.fail('sk-f', { kind: 'bad_gateway' });
      const res = await fetch(`${mock.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-f' }, body: '{}' });
      assert.equal(res.status, 502);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      mock.fail('sk-f', { kind: 'overloaded' });
      await assert.rejects(ask('sk-f'), (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 503);
      assert.ok((await ask('sk-f')).choices.length === 1, 'failures were used up');
    });

    it('enforces RPM per key and per organization, with x-ratelimit headers', async () => {
      mock.script('sk-rpm', { rpm: 2 });
      const first = await client('sk-rpm')
        .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
        .withResponse();
      assert.equal(first.response.headers.get('x-ratelimit-limit-requests'), '2');
      assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '1');
      await ask('sk-rpm');
      await assert.rejects(ask('sk-rpm'), (err: unknown) => err instanceof OpenAI.RateLimitError && Number(err.headers.get('retry-after')) > 0 && /RPM/.test(err.message));

      mock.scriptOrganization('org-shared', { rpm: 1 });
      mock.script('sk-org-1', { organization: 'org-shared' });
      mock.script('sk-org-2', { organization: 'org-shared' });
      await ask('sk-org-1');
      await assert.rejects(ask('sk-org-2'), (err: unknown) => err instanceof OpenAI.RateLimitError);
    });

    it('cuts a stream in the middle', async () => {
      mock.script('sk-cut', { cutStreamAfterChunks: 3 });
      const s = await client('sk-cut').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
      const got: string[] = [];
      await assert.rejects(async () => {
        for await (const c of s) got.push(c.choices[0]?.delta.content ?? '');
      });
      assert.equal(got.join(''), 'Hello! This');
    });

    it('hangs until the client gives up', async () => {
      mock.script('sk-hang', { hang: true });
      await assert.rejects(ask('sk-hang', { timeout: 300 }), (err: unknown) => err instanceof OpenAI.APIConnectionTimeoutError);
    });

    it('keeps its token cadence and latency', async () => {
      mock.script('sk-slow', { latencyMs: 100, tokenDelayMs: 20 });
      const t0 = Date.now();
      const s = await client('sk-slow').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
      for await (const _ of s) void _;
      // 100 ms before the first byte, then 10 gaps of 20 ms between 11 pieces.
      assert.ok(Date.now() - t0 >= 300, `took ${Date.now() - t0} ms`);
    });

    it('answers bad JSON and unknown URLs the way OpenAI does', async () => {
      const bad = await fetch(`${mock.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-x', 'content-type': 'application/json' }, body: '{nope' });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, /could not parse the JSON body/);
      const unknown = await fetch(`${mock.baseURL}/nothing`, { headers: { authorization: 'Bearer sk-x' } });
      assert.equal(unknown.status, 404);
      assert.deepEqual(await unknown.json(), { error: { message: 'Invalid URL (GET /v1/nothing)', type: 'invalid_request_error', param: null, code: null } });
    });
  });

  describe('control API over HTTP', () => {
    it('scripts keys and reads the recorded requests', async () => {
      await fetch(`${mock.url}/__mock/keys/sk-remote`, { method: 'PUT', body: JSON.stringify({ reply: 'scripted!' }) });
      const r = await client('sk-remote').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(r.choices[0]?.message.content, 'scripted!');
      const recorded = (await (await fetch(`${mock.url}/__mock/requests`)).json()) as { data: { key: string; path: string }[] };
      assert.deepEqual(
        recorded.data.map((x) => [x.key, x.path]),
        [['sk-remote', '/v1/chat/completions']],
      );
    });
  });
});
