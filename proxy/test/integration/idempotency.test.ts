import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { startStack, type Stack } from './harness.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'once' }] });

describe('idempotent requests: one charge per (account, Idempotency-Key)', function () {
  this.timeout(90_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2 });
  });
  after(() => s.close());
  afterEach(() => s.mock.reset());

  const post = (node: number, key: string, body: string, idem?: string, path = '/v1/chat/completions') =>
    fetch(`${s.nodes[node]?.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(idem ? { 'idempotency-key': idem } : {}) }, body });

  it('replays the stored answer of a finished request on any node and charges once', async () => {
    const { key, accountId } = await s.fundedKey();
    const idem = randomUUID();
    const first = await post(0, key, BODY, idem);
    const firstText = await first.text();
    assert.equal(first.status, 200);
    const again = await post(1, key, BODY, idem);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(await again.text(), firstText, 'the same answer, byte for byte');
    assert.equal(again.headers.get('x-request-id'), first.headers.get('x-request-id'));
    const h = await s.settled(accountId, 1);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await s.account(accountId)).requests, '1');
    assert.equal((await s.account(accountId)).spent, h.spent);
  });

  it('answers 422 for the same key with another request, 409 while the first runs or after a stream', async () => {
    const { key, accountId } = await s.fundedKey();
    const idem = randomUUID();
    s.mock.script('sk-upstream-a', { latencyMs: 1500 });
    const running = post(0, key, BODY, idem);
    await new Promise((r) => setTimeout(r, 300));
    const during = await post(1, key, BODY, idem);
    assert.equal(during.status, 409);
    assert.equal(((await during.json()) as any).error.code, 'idempotency_conflict');
    assert.equal((await running).status, 200);
    const other = await post(0, key, BODY.replace('once', 'twice'), idem);
    assert.equal(other.status, 422);
    assert.equal(((await other.json()) as any).error.code, 'idempotency_key_reused');

    const streamKey = randomUUID();
    const streamed = await post(0, key, JSON.stringify({ ...JSON.parse(BODY), stream: true }), streamKey);
    assert.equal(streamed.status, 200);
    await streamed.text();
    const replayStream = await post(0, key, JSON.stringify({ ...JSON.parse(BODY), stream: true }), streamKey);
    assert.equal(replayStream.status, 409);
    await s.settled(accountId, 2);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await s.account(accountId)).requests, '2', 'one charge for each key');
  });

  it('leaves requests without the header alone, and frees a key whose request was refused', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '0' });
    const idem = randomUUID();
    assert.equal((await post(0, key, BODY, idem)).status, 429, 'no funds');
    await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: '1', idempotency_key: randomUUID() });
    assert.equal((await post(0, key, BODY, idem)).status, 200, 'the refused request charged nothing and kept nothing');
    assert.equal((await post(0, key, BODY)).status, 200);
    assert.equal((await post(0, key, BODY)).status, 200);
    await s.settled(accountId, 3);
  });

  it('tells the official SDK not to retry a refusal for missing funds', async () => {
    const { key } = await s.fundedKey({ usd: '0' });
    let calls = 0;
    const client = new OpenAI({
      apiKey: key,
      baseURL: `${s.url}/v1`,
      maxRetries: 3,
      fetch: (url, init) => {
        calls++;
        return fetch(url, init);
      },
    });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.RateLimitError);
    assert.equal(calls, 1);
  });

  it('a top-up that reuses an idempotency key for another amount is a conflict, not a silent no-op', async () => {
    const { accountId } = await s.fundedKey({ usd: '0' });
    const first = await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: '2', idempotency_key: 'inv-7' });
    assert.equal(first.status, 201);
    const same = await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: '2', idempotency_key: 'inv-7' });
    assert.equal(same.status, 201);
    const other = await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: '3', idempotency_key: 'inv-7' });
    assert.equal(other.status, 409);
    assert.equal(other.json.error.code, 'idempotency_key_conflict');
    assert.match(other.json.error.message, /\$2\.000000000/);
    assert.equal((await s.account(accountId)).credited, '2000000000');
  });
});

describe('self-service account ids stay inside the caller subtree', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  async function self(key: string, body: unknown) {
    const res = await fetch(`${s.url}/account/v1/accounts`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  }

  it('names a new account under its parent, so it neither collides with nor reveals ids elsewhere', async () => {
    const elsewhere = `other-${randomUUID().slice(0, 8)}`;
    assert.equal((await s.admin('POST', '/accounts', { id: elsewhere })).status, 201);
    const { key, accountId } = await s.fundedKey();
    const made = await self(key, { id: elsewhere });
    assert.equal(made.status, 201, 'an id taken outside the subtree is no obstacle and no hint');
    assert.equal(made.json.id, `${accountId}.${elsewhere}`);
    assert.equal((await s.admin('GET', `/accounts/${elsewhere}`)).json.parent_id, null, 'the other account is untouched');
    assert.equal((await self(key, { id: elsewhere })).status, 409, "a clash can only be with the caller's own sub-accounts");
    const nested = await self(key, { id: 'team', parent_id: made.json.id });
    assert.equal(nested.json.id, `${accountId}.${elsewhere}.team`);
    for (const id of ['a.b', 'UPPER', '']) assert.equal((await self(key, { id })).status, 400, id);
  });

  it('refuses "parent_id": null from an account key', async () => {
    const { key } = await s.fundedKey();
    const r = await self(key, { id: 'root-attempt', parent_id: null });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'permission_denied');
  });
});
