import assert from 'node:assert/strict';
import { startStack, type Stack } from './harness.js';

/** A key never makes or unmakes a key that reaches further than itself. */
describe('self-service keys stay within the limits of the key that makes them', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  async function self(key: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${s.url}/account/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  }

  const chat = (key: string, model: string) =>
    fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }),
    });

  const soon = new Date(Date.now() + 3_600_000).toISOString();
  const later = new Date(Date.now() + 7_200_000).toISOString();
  const LIMITED = { models: ['gpt-4o-mini'], rpm: 100, tpm: 50_000, ip_allowlist: ['127.0.0.0/8'], origins: ['https://app.example'], expires_at: soon };

  it('a new key left open inherits every limit of its maker, so gpt-4o stays refused', async () => {
    const { accountId, key } = await s.fundedKey({ key: LIMITED });
    assert.equal((await chat(key, 'gpt-4o')).status, 403);
    const made = await self(key, 'POST', `/accounts/${accountId}/keys`, { name: 'escape' });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    assert.equal((await chat(made.json.key, 'gpt-4o')).status, 403, 'the new key may not use what its maker may not');
    assert.equal((await chat(made.json.key, 'gpt-4o-mini')).status, 200);
    const listed = (await s.admin('GET', `/accounts/${accountId}/keys`)).json.data.find((k: any) => k.id === made.json.id);
    assert.deepEqual(
      { models: listed.models, rpm: listed.rpm, tpm: listed.tpm, ip_allowlist: listed.ip_allowlist, origins: listed.origins, expires: Date.parse(listed.expires_at) },
      { models: LIMITED.models, rpm: 100, tpm: 50_000, ip_allowlist: LIMITED.ip_allowlist, origins: LIMITED.origins, expires: Date.parse(soon) },
    );
  });

  for (const [field, value] of [
    ['models', ['gpt-4o']],
    ['models', ['gpt-4o*']],
    ['models', ['*']],
    ['rpm', 101],
    ['tpm', 50_001],
    ['ip_allowlist', ['0.0.0.0/0']],
    ['ip_allowlist', ['10.0.0.1']],
    ['origins', ['https://evil.example']],
    ['expires_at', later],
  ] as const) {
    it(`refuses a key whose ${field} reaches beyond its maker's (${JSON.stringify(value)})`, async () => {
      const { accountId, key } = await s.fundedKey({ key: LIMITED });
      const r = await self(key, 'POST', `/accounts/${accountId}/keys`, { [field]: value });
      assert.equal(r.status, 403, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'key_limits_exceeded');
      assert.equal(r.json.error.param, field);
      assert.equal((await s.admin('GET', `/accounts/${accountId}/keys`)).json.data.length, 1, 'nothing was created');
    });
  }

  it('accepts narrower limits, also for keys of its sub-accounts', async () => {
    const { accountId, key } = await s.fundedKey({ key: { models: ['gpt-4o*'], rpm: 100 } });
    const r = await self(key, 'POST', `/accounts/${accountId}/keys`, { models: ['gpt-4o-mini'], rpm: 10 });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const child = await self(key, 'POST', '/accounts', { id: 'c' });
    assert.equal(child.status, 201, JSON.stringify(child.json));
    assert.equal(child.json.id, `${accountId}.c`);
    const wide = await self(key, 'POST', `/accounts/${accountId}.c/keys`, { models: ['o1'] });
    assert.equal(wide.status, 403);
    const inherited = await self(key, 'POST', `/accounts/${accountId}.c/keys`, {});
    assert.equal(inherited.status, 201);
    assert.equal((await chat(inherited.json.key, 'o1')).status, 403);
  });

  it('a limited key cannot revoke a key that reaches further, but can revoke one it could have made', async () => {
    const { accountId, key: full } = await s.fundedKey();
    const limited = await s.admin('POST', `/accounts/${accountId}/keys`, { models: ['gpt-4o-mini'] });
    const fullId = (await s.admin('GET', `/accounts/${accountId}/keys`)).json.data.find((k: any) => k.models === null).id as string;
    const refused = await self(limited.json.key, 'DELETE', `/accounts/${accountId}/keys/${fullId}`);
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.equal(refused.json.error.code, 'permission_denied');
    assert.equal((await chat(full, 'gpt-4o')).status, 200, 'the wider key still works');
    const own = await self(limited.json.key, 'POST', `/accounts/${accountId}/keys`, {});
    const revoked = await self(limited.json.key, 'DELETE', `/accounts/${accountId}/keys/${own.json.id}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    // The unrestricted key may revoke the limited one.
    assert.equal((await self(full, 'DELETE', `/accounts/${accountId}/keys/${limited.json.id}`)).status, 200);
  });
});
