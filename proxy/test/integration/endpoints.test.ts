import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { startStack, type Stack } from './harness.js';
import { silentWav } from '@yugong/metering';

/** List prices written out independently of the price table (nano-USD per token / unit). */
const P = {
  miniIn: 150n,
  miniOut: 600n, // gpt-4o-mini $0.15 / $0.60
  instructIn: 1500n,
  instructOut: 2000n, // gpt-3.5-turbo-instruct $1.50 / $2
  embedSmall: 20n, // text-embedding-3-small $0.02
  whisperPerSecond: 100_000n, // $0.006 / minute
  tts1PerChar: 15_000n, // $15 / 1M characters
  dalle3HdTall: 120_000_000n, // $0.12 per 1024x1792 HD image
  dalle2Square: 20_000_000n, // $0.02 per 1024x1024 image
};

describe('proxy: every OpenAI endpoint through the official SDK, billed exactly', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  async function spentAfter(accountId: string, requests: number): Promise<bigint> {
    return BigInt((await s.settled(accountId, requests)).spent ?? '0');
  }

  it('legacy completions, streamed and not', async () => {
    const { key, accountId } = await s.fundedKey();
    const r = await s.client(key).completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon a time', max_tokens: 5 });
    assert.equal(r.choices[0]?.text, 'Hello! This is a');
    const cost1 = BigInt(r.usage?.prompt_tokens ?? 0) * P.instructIn + BigInt(r.usage?.completion_tokens ?? 0) * P.instructOut;
    const stream = await s.client(key).completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'x', stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assert.equal(text, 'Hello! This is a reply from the mock upstream.');
    const spent = await spentAfter(accountId, 2);
    assert.ok(spent > cost1, 'the stream was billed too');
    const items = await s.lineItems(accountId, 2);
    assert.deepEqual(
      items.map((i) => i.endpoint),
      ['completions', 'completions'],
    );
  });

  it('embeddings (the SDK asks for base64)', async () => {
    const { key, accountId } = await s.fundedKey();
    const r = await s.client(key).embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta gamma'] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0]?.embedding.length, 1536);
    assert.equal(await spentAfter(accountId, 1), BigInt(r.usage.prompt_tokens) * P.embedSmall);
  });

  it('images: generations, edits, variations, priced per image', async () => {
    const { key, accountId } = await s.fundedKey();
    const g = await s.client(key).images.generate({ model: 'dall-e-3', prompt: 'a lighthouse', size: '1024x1792', quality: 'hd' });
    assert.ok(g.data?.[0]?.url);
    const png = await toFile(Buffer.from('iVBORw0KGgo=', 'base64'), 'a.png', { type: 'image/png' });
    const e = await s.client(key).images.edit({ image: png, prompt: 'add a boat', n: 1 });
    assert.equal(e.data?.length, 1);
    const v = await s.client(key).images.createVariation({ image: await toFile(Buffer.from('x'), 'b.png', { type: 'image/png' }), n: 2 });
    assert.equal(v.data?.length, 2);
    assert.equal(await spentAfter(accountId, 3), P.dalle3HdTall + 3n * P.dalle2Square);
    const items = await s.lineItems(accountId, 3);
    assert.deepEqual(items.map((i) => Number(i.images)).sort(), [1, 1, 2]);
  });

  it('audio: transcription and translation by the second, speech by the character (binary, streamed)', async () => {
    const { key, accountId } = await s.fundedKey();
    const t = await s.client(key).audio.transcriptions.create({ model: 'whisper-1', file: await toFile(silentWav(61_000), 'talk.wav', { type: 'audio/wav' }) });
    assert.ok(t.text.length > 0);
    const tr = await s.client(key).audio.translations.create({ model: 'whisper-1', file: await toFile(silentWav(30_000), 'talk.wav', { type: 'audio/wav' }) });
    assert.ok(tr.text.length > 0);
    const input = 'Twenty-five characters ok';
    const speech = await s.client(key).audio.speech.create({ model: 'tts-1', voice: 'alloy', input });
    assert.equal(speech.headers.get('content-type'), 'audio/mpeg');
    assert.equal((await speech.arrayBuffer()).byteLength, Math.max(4096, input.length * 400));
    assert.equal(await spentAfter(accountId, 3), 61n * P.whisperPerSecond + 30n * P.whisperPerSecond + BigInt(input.length) * P.tts1PerChar);
    const uploaded = s.mock.requests.find((r) => r.path === '/v1/audio/transcriptions');
    assert.equal(uploaded?.multipart?.files[0]?.size, silentWav(61_000).length, 'the upload reached upstream byte for byte');
  });

  it('moderations are free and recorded', async () => {
    const { key, accountId } = await s.fundedKey();
    const r = await s.client(key).moderations.create({ input: 'I will kill this bug' });
    assert.equal(r.results[0]?.flagged, true);
    assert.equal(await spentAfter(accountId, 1), 0n);
  });

  it('responses, streamed and not', async () => {
    const { key, accountId } = await s.fundedKey();
    const r = await s.client(key).responses.create({ model: 'gpt-4o-mini', input: 'Say hi' });
    assert.equal(r.output_text, 'Hello! This is a reply from the mock upstream.');
    const cost = BigInt(r.usage?.input_tokens ?? 0) * P.miniIn + BigInt(r.usage?.output_tokens ?? 0) * P.miniOut;
    const stream = await s.client(key).responses.create({ model: 'gpt-4o-mini', input: 'Say hi', stream: true });
    let text = '';
    for await (const e of stream) if (e.type === 'response.output_text.delta') text += e.delta;
    assert.equal(text, 'Hello! This is a reply from the mock upstream.');
    assert.equal(await spentAfter(accountId, 2), 2n * cost);
  });

  it('models: only those the key may use', async () => {
    const { key } = await s.fundedKey({ key: { models: ['gpt-4o-mini', 'whisper-1'] } });
    const ids = [];
    for await (const m of s.client(key).models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['gpt-4o-mini', 'whisper-1']);
    assert.equal((await s.client(key).models.retrieve('whisper-1')).id, 'whisper-1');
    await assert.rejects(s.client(key).models.retrieve('gpt-4o'), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it('vision and tool calls pass through', async () => {
    const { key } = await s.fundedKey();
    const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
    const r = await s.client(key).chat.completions.create({
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
      tools,
    });
    const call = r.choices[0]?.message.tool_calls?.[0];
    assert.equal(call?.type === 'function' ? call.function.name : '', 'lookup');
    const sent = s.mock.requests[s.mock.requests.length - 1]?.json as { tools?: unknown; messages?: unknown[] };
    assert.deepEqual(sent.tools, tools, 'tools reached upstream unchanged');
  });

  it('CORS: allowed origins get headers, others a 403', async () => {
    const { key } = await s.fundedKey({ key: { origins: ['https://app.example.com'] } });
    const pre = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-stainless-os/);
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    const ok = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      body,
      headers: { origin: 'https://app.example.com', authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const bad = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      body,
      headers: { origin: 'https://evil.example.com', authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    assert.equal(bad.status, 403);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'origin_not_allowed');
  });

  it('IP allowlists and expired keys', async () => {
    const blocked = await s.fundedKey({ key: { ip_allowlist: ['10.0.0.0/8'] } });
    await assert.rejects(s.client(blocked.key).models.list(), (e: unknown) => e instanceof OpenAI.PermissionDeniedError && e.code === 'ip_not_allowed');
    const allowed = await s.fundedKey({ key: { ip_allowlist: ['127.0.0.1'] } });
    assert.ok((await s.client(allowed.key).models.list()).data.length > 0);
    const expired = await s.fundedKey({ key: { expires_at: '2020-01-01T00:00:00Z' } });
    await assert.rejects(s.client(expired.key).models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  });
});
