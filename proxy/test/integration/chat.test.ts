import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, type Stack } from './harness.js';

/** gpt-4o list prices, written out here so the test does not trust the code under test. */
const GPT4O_NANO = { input: 2500n, cached: 1250n, output: 10000n };
function gpt4oCost(u: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } | null }): bigint {
  const cached = BigInt(u.prompt_tokens_details?.cached_tokens ?? 0);
  return (BigInt(u.prompt_tokens) - cached) * GPT4O_NANO.input + cached * GPT4O_NANO.cached + BigInt(u.completion_tokens) * GPT4O_NANO.output;
}

describe('proxy: chat completions through the official SDK', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  it('answers like OpenAI and bills prompt, cached and completion tokens exactly', async () => {
    s.mock.script('sk-upstream-a', { cachedTokens: 4 });
    const { accountId, key } = await s.fundedKey({ usd: '5' });
    const { data, response } = await s
      .client(key)
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello there, how are you?' }] })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'Hello! This is a reply from the mock upstream.');
    assert.match(response.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
    assert.equal(response.headers.get('openai-organization'), null, 'the upstream organization is not revealed');
    assert.ok(data.usage);
    const cost = gpt4oCost(data.usage);
    const after = await s.settled(accountId, 1);
    assert.equal(after.spent, cost.toString());
    assert.equal(after.held, '0', 'the hold was released at settlement');
    const [item] = await s.lineItems(accountId, 1);
    assert.equal(item?.request_id, response.headers.get('x-request-id'));
    assert.equal(item?.cost_nano, cost.toString());
    assert.equal(item?.prompt_tokens, data.usage.prompt_tokens);
    assert.equal(item?.cached_tokens, 4);
    assert.equal(item?.usage_source, 'upstream');
    // The upstream saw the pool's key, never the client's.
    const seen = s.mock.requests[s.mock.requests.length - 1];
    assert.equal(seen?.key, 'sk-upstream-a');
  });

  it('streams chunk by chunk and hides the usage chunk the client did not ask for', async () => {
    const { accountId, key } = await s.fundedKey();
    s.mock.requests.length = 0;
    const stream = await s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'stream please' }], stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length > 5);
    assert.ok(
      chunks.every((c) => !('usage' in c) && c.choices.length === 1),
      'no usage field, no usage chunk',
    );
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello! This is a reply from the mock upstream.');
    assert.deepEqual(s.mock.requests[0]?.json?.stream_options, { include_usage: true }, 'usage was asked of upstream');
    const after = await s.settled(accountId, 1);
    assert.ok(BigInt(after.spent ?? '0') > 0n);
    const [item] = await s.lineItems(accountId, 1);
    assert.equal(item?.usage_source, 'upstream');
    assert.equal(item?.stream, 1);
    assert.ok(Number(item?.ttft_ms) >= 0);
  });

  it('passes the usage chunk through when the client asked for it', async () => {
    const { key } = await s.fundedKey();
    const stream = await s.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last?.choices, []);
    assert.ok(last?.usage && last.usage.total_tokens > 0);
  });

  it('works for tools that forget /v1 in the base URL', async () => {
    const { key } = await s.fundedKey();
    const client = new OpenAI({ apiKey: key, baseURL: s.url, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.object, 'chat.completion');
  });

  describe('bad input gets OpenAI-shaped errors and is never billed', () => {
    let key: string;
    let accountId: string;
    before(async () => {
      ({ key, accountId } = await s.fundedKey({ key: { models: ['gpt-4o', 'gpt-4o-mini'] } }));
    });

    const raw = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body });

    async function expectError(res: Response, status: number, code: string | null, type = 'invalid_request_error') {
      assert.equal(res.status, status);
      const body = (await res.json()) as { error: { type: string; code: string | null; message: string } };
      assert.equal(body.error.type, type);
      assert.equal(body.error.code, code);
      assert.ok(body.error.message.length > 10);
      return body.error;
    }

    it('bad JSON, missing model, wrong types → 400', async () => {
      await expectError(await raw('{"model": "gpt-4o", '), 400, null);
      await expectError(await raw('[1,2]'), 400, null);
      await expectError(await raw(JSON.stringify({ messages: [] })), 400, 'missing_required_parameter');
      await expectError(await raw(JSON.stringify({ model: 42, messages: [] })), 400, 'invalid_type');
      await expectError(await raw(JSON.stringify({ model: 'gpt-4o', messages: 'hi' })), 400, 'invalid_type');
      await expectError(await raw(JSON.stringify({ model: 'gpt-4o', messages: [], stream: 'yes' })), 400, 'invalid_type');
      await expectError(await raw(JSON.stringify({ model: 'gpt-4o', messages: [], max_tokens: -5 })), 400, 'invalid_value');
    });

    it('unknown model → 404, model not allowed for the key → 403', async () => {
      await assert.rejects(
        s.client(key).chat.completions.create({ model: 'gpt-9-ultra', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
      );
      await assert.rejects(
        s.client(key).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.PermissionDeniedError && e.code === 'model_not_allowed',
      );
    });

    it('body too large → 413 before parsing', async () => {
      const big = 'x'.repeat(33 * 1024 * 1024);
      const res = await raw(big);
      await expectError(res, 413, 'request_too_large');
    });

    it('missing or wrong key → 401 naming the base URL; unknown path → 404', async () => {
      const none = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      const e1 = await expectError(none, 401, 'missing_api_key');
      assert.ok(e1.message.includes(`${s.nodes[0]?.config.publicUrl}/v1`));
      await assert.rejects(
        s.client('sk-yg-not-a-real-key').chat.completions.create({ model: 'gpt-4o', messages: [] }),
        (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key' && /base URL/.test(e.message),
      );
      await assert.rejects(s.client('sk-proj-an-openai-key').models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
      const unknown = await fetch(`${s.url}/v1/fine_tuning/jobs`, { headers: { authorization: `Bearer ${key}` } });
      await expectError(unknown, 404, 'unknown_url');
    });

    it('nothing above was billed or recorded', async () => {
      const h = await s.account(accountId);
      assert.equal(h.spent, '0');
      assert.equal(h.held, '0');
      assert.equal(h.requests, '0');
    });
  });

  it("passes upstream's own refusal on as it was sent, bills nothing and records it once", async () => {
    // This upstream key has no access to gpt-4o-mini: a deterministic 404 that no retry mends.
    s.mock.script('sk-upstream-a', { models: ['gpt-4o'] });
    try {
      const { accountId, key } = await s.fundedKey();
      s.mock.requests.length = 0;
      const res = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(res.status, 404);
      assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'model_not_found');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(s.mock.requests.length, 1, 'a deterministic 4xx is not retried');
      const after = await s.settled(accountId, 1);
      assert.equal(after.spent, '0');
      assert.equal(after.held, '0');
      const [item] = await s.lineItems(accountId, 1);
      assert.equal(item?.status, 'rejected');
      assert.equal(item?.http_status, 404);
      assert.equal(item?.error_code, 'model_not_found');
    } finally {
      s.mock.script('sk-upstream-a', { models: undefined });
    }
  });

  it('no funds → 429 insufficient_quota, and nothing is billed', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '0' });
    await assert.rejects(
      s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'insufficient_quota',
    );
    assert.equal((await s.account(accountId)).spent, '0');
  });

  it('rate limited by the key RPM → 429 with retry-after and x-ratelimit-* of the client', async () => {
    const { key } = await s.fundedKey({ key: { rpm: 2 } });
    const first = await s
      .client(key)
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    assert.equal(first.response.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '1');
    await s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(
      s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded' && Number(e.headers.get('retry-after')) >= 1,
    );
  });
});
