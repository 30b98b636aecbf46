import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { redisKeys } from '@yugong/schemas';
import { run as cli } from '../../src/cli.js';
import { ADMIN_TOKEN, startStack, waitFor, type Stack } from './harness.js';

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
/** gpt-4o-mini list prices in nano-USD per token. */
const listCost = (u: OpenAI.CompletionUsage | undefined) => BigInt(u?.prompt_tokens ?? 0) * 150n + BigInt(u?.completion_tokens ?? 0) * 600n;
/** cost × ppm / 1e6, rounded half up once, as the ledger does. */
const priced = (list: bigint, ppm: bigint) => (list * ppm + 500_000n) / 1_000_000n;

/** The part of a self-service account's id that its creator chose: ids are named under their parent. */
const seg = (id: string) => id.slice(id.lastIndexOf('.') + 1);
describe('accounts: self-service sub-accounts, operator API, prices and CLI', function () {
  this.timeout(90_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2 });
  });
  after(() => s.close());

  /** The self-service API, as an account's own key calls it. */
  const as = (key: string) => async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${s.url}/account/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };

  it('an account creates a reseller sub-account with its own key; charges are exact on the whole path and stop at the quota', async () => {
    // The operator creates the account, tops it up and gives it a key.
    const acme = uid('acme');
    assert.equal((await s.admin('POST', '/accounts', { id: acme, name: 'Acme' })).status, 201);
    const topup = await s.admin('POST', `/accounts/${acme}/credits`, { amount_usd: '5', note: 'invoice 1', idempotency_key: randomUUID() });
    assert.equal(topup.status, 201);
    assert.equal(topup.json.balance_usd, '5.000000000');
    const acmeKey = (await s.admin('POST', `/accounts/${acme}/keys`, { name: 'acme admin' })).json.key as string;
    const acmeApi = as(acmeKey);

    // Acme, with its own key, creates a sub-account at 1.5× with a quota, and a key for it.
    const child = `${acme}.${uid('shop')}`;
    const created = await acmeApi('POST', '/accounts', { id: seg(child), name: 'Shop', multiplier: 1.5, credit_limit_usd: '0.0001', rpm: 1000 });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.parent_id, acme);
    assert.equal(created.json.multiplier, 1.5);
    const childKey = await acmeApi('POST', `/accounts/${child}/keys`, { name: 'customer' });
    assert.equal(childKey.status, 201);
    assert.match(childKey.json.key, /^sk-yg-[0-9A-Za-z]{32}$/);
    const listed = await acmeApi('GET', `/accounts/${child}/keys`);
    assert.deepEqual(
      listed.json.data.map((k: { id: string }) => k.id),
      [childKey.json.id],
    );
    assert.ok(!JSON.stringify(listed.json).includes(childKey.json.key), 'a key is shown only once');

    const client = s.client(childKey.json.key);
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] });
    const list = listCost(r.usage);
    const kid = await s.settled(child, 1, acme);
    const dad = await s.settled(acme, 1);
    assert.equal(dad.spent, list.toString(), 'the parent pays list price');
    assert.equal(kid.spent, priced(list, 1_500_000n).toString(), 'the child pays 1.5 × list, rounded half up');

    // The balance endpoints (the child's key) and the self-service view agree with the ledger.
    const sub = (await (await fetch(`${s.url}/v1/dashboard/billing/subscription`, { headers: { authorization: `Bearer ${childKey.json.key}` } })).json()) as Record<string, any>;
    assert.equal(sub.hard_limit_usd, 0.0001);
    const usage = await waitFor('the child usage to match the ledger', async () => {
      const u = (await (
        await fetch(`${s.url}/v1/dashboard/billing/usage?start_date=${today()}&end_date=${tomorrow()}`, { headers: { authorization: `Bearer ${childKey.json.key}` } })
      ).json()) as Record<string, any>;
      return u.total_usage === Number(kid.spent) / 1e7 ? u : null;
    });
    assert.equal(usage.total_usage, Number(kid.spent) / 1e7);
    const seen = await acmeApi('GET', `/accounts/${child}`);
    assert.equal(seen.json.spent_nano, kid.spent);
    assert.equal((await as(childKey.json.key)('GET', '/me')).json.spent_nano, kid.spent);

    // The quota ($0.0001 = 100,000 nano at ~12,000 a request) stops the child within ten requests.
    let refused: unknown = null;
    for (let i = 0; i < 12 && !refused; i++) {
      await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }).catch((e: unknown) => (refused = e));
    }
    assert.ok(refused instanceof OpenAI.RateLimitError && refused.code === 'insufficient_quota', `stopped by the quota: ${String(refused)}`);
    const after = await s.account(child);
    assert.ok(100_000n + BigInt(after.credited ?? '0') - BigInt(after.spent ?? '0') >= 0n, 'never beyond the quota');

    // A top-up by the parent raises the child's allowance; the parent's balance is untouched by it.
    const before = await s.account(acme);
    const granted = await acmeApi('POST', `/accounts/${child}/credits`, { amount_usd: '0.01', idempotency_key: 'shop-1' });
    assert.equal(granted.status, 201);
    const again = await acmeApi('POST', `/accounts/${child}/credits`, { amount_usd: '0.01', idempotency_key: 'shop-1' });
    assert.equal(again.json.credited_nano, granted.json.credited_nano, 'the same idempotency key grants once');
    assert.equal((await s.account(acme)).credited, before.credited);
    await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] });
  });

  it('nests to any depth; each ancestor is charged at its own price', async () => {
    const top = await s.fundedKey({ usd: '1' });
    const api = as(top.key);
    const a = `${top.accountId}.${uid('lvl1')}`;
    const b = `${a}.${uid('lvl2')}`;
    const c = `${b}.${uid('lvl3')}`;
    assert.equal((await api('POST', '/accounts', { id: seg(a), multiplier: '2' })).status, 201);
    assert.equal((await api('POST', '/accounts', { id: seg(b), parent_id: a, multiplier: '1.25', credit_limit_usd: '1' })).status, 201);
    const bKey = (await api('POST', `/accounts/${b}/keys`, {})).json.key as string;
    // The level-2 account manages its own child with its own key.
    const made = await as(bKey)('POST', '/accounts', { id: seg(c), multiplier: '1.1', credit_limit_usd: '1' });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    assert.deepEqual(
      (await api('GET', `/accounts?under=${a}`)).json.data.map((x: { id: string }) => x.id),
      [a, b, c],
    );
    const cKey = (await as(bKey)('POST', `/accounts/${c}/keys`, {})).json.key as string;
    assert.equal((await api('POST', `/accounts/${a}/credits`, { amount_usd: '1', idempotency_key: randomUUID() })).status, 201);

    const r = await s.client(cKey).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'deep' }] });
    const list = listCost(r.usage);
    const spent = async (id: string) => (await s.settled(id, 1, top.accountId)).spent;
    assert.equal(await spent(top.accountId), list.toString());
    assert.equal(await spent(a), priced(list, 2_000_000n).toString());
    assert.equal(await spent(b), priced(list, 2_500_000n).toString());
    assert.equal(await spent(c), priced(list, 2_750_000n).toString());
    const [item] = await s.lineItems(c, 1);
    assert.deepEqual(item?.account_path, [top.accountId, a, b, c]);
  });

  it('a sub-account cannot read or change its parent, its siblings or their keys, nor raise its own limits', async () => {
    const parent = await s.fundedKey({ usd: '1' });
    const api = as(parent.key);
    const [me, sibling] = [`${parent.accountId}.${uid('me')}`, `${parent.accountId}.${uid('sib')}`];
    await api('POST', '/accounts', { id: seg(me), credit_limit_usd: '0.5' });
    await api('POST', '/accounts', { id: seg(sibling), credit_limit_usd: '0.5' });
    const myKey = (await api('POST', `/accounts/${me}/keys`, {})).json.key as string;
    const sibKey = await api('POST', `/accounts/${sibling}/keys`, {});
    const mine = as(myKey);
    const snapshot = async () => [await s.account(parent.accountId), await s.account(me), await s.account(sibling), await s.redis.hgetall(redisKeys.keyMeta(parent.accountId, sibKey.json.id))];
    const before = await snapshot();

    const denied: [string, string, unknown, number, string][] = [
      ['GET', `/accounts/${parent.accountId}`, undefined, 404, 'account_not_found'],
      ['GET', `/accounts/${sibling}`, undefined, 404, 'account_not_found'],
      ['GET', `/accounts/${sibling}/keys`, undefined, 404, 'account_not_found'],
      ['GET', `/accounts?under=${parent.accountId}`, undefined, 404, 'account_not_found'],
      ['PATCH', `/accounts/${sibling}`, { rpm: 1 }, 404, 'account_not_found'],
      ['PATCH', `/accounts/${parent.accountId}`, { name: 'mine now' }, 404, 'account_not_found'],
      ['POST', `/accounts/${sibling}/credits`, { amount_usd: '1', idempotency_key: 'x' }, 404, 'account_not_found'],
      ['POST', `/accounts/${sibling}/disable`, {}, 404, 'account_not_found'],
      ['POST', `/accounts/${sibling}/keys`, {}, 404, 'account_not_found'],
      ['DELETE', `/accounts/${sibling}/keys/${sibKey.json.id}`, undefined, 404, 'account_not_found'],
      ['DELETE', `/accounts/${me}/keys/${sibKey.json.id}`, undefined, 404, 'key_not_found'],
      ['DELETE', `/accounts/${parent.accountId}/keys/${parent.keyId}`, undefined, 404, 'account_not_found'],
      ['POST', '/accounts', { id: uid('x'), parent_id: sibling }, 404, 'account_not_found'],
      ['POST', '/accounts', { id: uid('x'), parent_id: parent.accountId }, 404, 'account_not_found'],
      // Its own limits, quota, multiplier and balance are its parent's to set.
      ['PATCH', `/accounts/${me}`, { credit_limit_usd: '1000' }, 403, 'permission_denied'],
      ['POST', `/accounts/${me}/credits`, { amount_usd: '1000', idempotency_key: 'self' }, 403, 'permission_denied'],
      ['POST', `/accounts/${me}/multiplier`, { multiplier: 0.1 }, 403, 'permission_denied'],
      ['POST', `/accounts/${me}/disable`, {}, 403, 'permission_denied'],
      // Mass assignment: balances, multiplier and ownership are never writable through an update.
      ['PATCH', `/accounts/${me}`, { balance_usd: '1000' }, 403, 'field_not_writable'],
      ['PATCH', `/accounts/${me}`, { name: 'x', credited_nano: '1' }, 403, 'field_not_writable'],
      ['PATCH', `/accounts/${me}`, { multiplier: 0.01 }, 403, 'field_not_writable'],
      ['PATCH', `/accounts/${me}`, { parent_id: null }, 403, 'field_not_writable'],
    ];
    for (const [method, path, body, status, code] of denied) {
      const r = await mine(method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, code, `${method} ${path}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    // The parent may not mass-assign either.
    const bal = await api('PATCH', `/accounts/${me}`, { balance_nano: '999999999999' });
    assert.equal(bal.status, 403);
    assert.equal((await api('POST', '/accounts', { id: uid('x'), credited_nano: '5' })).status, 400);
    assert.deepEqual(await snapshot(), before, 'nothing changed');

    // What it may do: see itself, create and revoke its own keys.
    assert.deepEqual(
      (await mine('GET', '/accounts')).json.data.map((a: { id: string }) => a.id),
      [me],
    );
    const own = await mine('POST', `/accounts/${me}/keys`, { name: 'second' });
    assert.equal(own.status, 201);
    assert.equal((await mine('DELETE', `/accounts/${me}/keys/${own.json.id}`)).json.status, 'revoked');
    // A revoked or wrong key gets the OpenAI-shaped 401.
    const wrong = await as('sk-yg-not-a-key')('GET', '/me');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'invalid_api_key');
    assert.equal((await as(own.json.key)('GET', '/me')).status, 401);
  });

  it('bad input gets a clear 400 and changes nothing', async () => {
    const parent = await s.fundedKey({ usd: '1' });
    const api = as(parent.key);
    const child = `${parent.accountId}.${uid('c')}`;
    assert.equal((await api('POST', '/accounts', { id: seg(child), credit_limit_usd: '0.5', rpm: 10 })).status, 201);
    const before = await s.account(child);
    const bad: [string, string, unknown, string | null][] = [
      ['POST', '/accounts', { id: uid('x'), colour: 'red' }, 'unknown_parameter'],
      ['POST', '/accounts', { id: 'has spaces' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), multiplier: 0 }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), multiplier: -1.5 }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), multiplier: '1e400' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), credit_limit_usd: '-1' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), credit_limit_usd: '1e30' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), rpm: '10' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), rpm: 1e12 }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), models: 'gpt-4o' }, 'invalid_value'],
      ['POST', '/accounts', { id: uid('x'), expires_at: 'tomorrow' }, 'invalid_value'],
      ['PATCH', `/accounts/${child}`, { rpm: -5 }, 'invalid_value'],
      ['PATCH', `/accounts/${child}`, { nickname: 'x' }, 'unknown_parameter'],
      ['PATCH', `/accounts/${child}`, { credit_limit_usd: 'lots' }, 'invalid_value'],
      ['POST', `/accounts/${child}/credits`, { amount_usd: '-1', idempotency_key: 'neg' }, 'invalid_value'],
      ['POST', `/accounts/${child}/credits`, { amount_usd: '0', idempotency_key: 'zero' }, 'invalid_value'],
      ['POST', `/accounts/${child}/credits`, { amount_usd: '99999999999999', idempotency_key: 'huge' }, 'invalid_value'],
      ['POST', `/accounts/${child}/credits`, { amount_usd: '0.0000000001', idempotency_key: 'tiny' }, 'invalid_value'],
      ['POST', `/accounts/${child}/credits`, { amount_usd: '1' }, 'invalid_value'],
      ['POST', `/accounts/${child}/multiplier`, { multiplier: 0 }, 'invalid_value'],
      ['POST', `/accounts/${child}/multiplier`, { multiplier: 'cheap' }, 'invalid_value'],
      ['POST', `/accounts/${child}/keys`, { rpm: 1.5 }, 'invalid_value'],
      ['POST', `/accounts/${child}/keys`, { origins: ['not a url'] }, 'invalid_value'],
      ['POST', `/accounts/${child}/keys`, { ip_allowlist: ['1.2.3.4; DROP'] }, 'invalid_value'],
    ];
    for (const [method, path, body, code] of bad) {
      const r = await api(method, path, body);
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.code, code, `${method} ${path} ${JSON.stringify(body)}`);
    }
    const raw = await fetch(`${s.url}/account/v1/accounts`, { method: 'POST', headers: { authorization: `Bearer ${parent.key}`, 'content-type': 'application/json' }, body: '{"id": ' });
    assert.equal(raw.status, 400);
    assert.deepEqual(await s.account(child), before, 'the account did not change');
    assert.deepEqual(await s.redis.smembers(redisKeys.keysOf(parent.accountId, child)), [], 'no key was created');
  });

  it('the parent updates and disables a sub-account; the change reaches every node', async () => {
    const parent = await s.fundedKey({ usd: '1' });
    const api = as(parent.key);
    const child = `${parent.accountId}.${uid('c')}`;
    await api('POST', '/accounts', { id: seg(child), credit_limit_usd: '1' });
    const key = (await api('POST', `/accounts/${child}/keys`, {})).json.key as string;
    const updated = await api('PATCH', `/accounts/${child}`, { models: ['gpt-4o-mini'], rpm: 100, name: 'Renamed' });
    assert.equal(updated.status, 200);
    assert.deepEqual([updated.json.name, updated.json.rpm, updated.json.tpm, updated.json.models], ['Renamed', 100, null, ['gpt-4o-mini']]);
    for (const n of s.nodes) {
      const c = new OpenAI({ apiKey: key, baseURL: `${n.url}/v1`, maxRetries: 0 });
      await assert.rejects(c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), (e: unknown) => e instanceof OpenAI.PermissionDeniedError);
      await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ok' }] });
    }
    const multiplied = await api('POST', `/accounts/${child}/multiplier`, { multiplier: '1.75' });
    assert.equal(multiplied.json.multiplier_ppm, 1_750_000);
    const disabled = await api('POST', `/accounts/${child}/disable`, { reason: 'unpaid' });
    assert.equal(disabled.json.status, 'disabled');
    for (const n of s.nodes) {
      const c = new OpenAI({ apiKey: key, baseURL: `${n.url}/v1`, maxRetries: 0 });
      await waitFor(
        'the disable to reach the node',
        async () =>
          c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'no' }] }).then(
            () => null,
            (e: unknown) => (e instanceof OpenAI.PermissionDeniedError && e.code === 'account_disabled' ? true : null),
          ),
        1000,
      );
    }
  });

  it('the operator lists every account page by page, with balances', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++) ids.add((await s.fundedKey({ usd: '0.5' })).accountId);
    const seen: string[] = [];
    let cursor: string | null = '0';
    while (cursor !== null) {
      const page = await s.admin('GET', `/accounts?limit=3&cursor=${cursor}`);
      assert.equal(page.status, 200);
      for (const a of page.json.data) seen.push(a.id);
      for (const a of page.json.data.filter((x: { id: string }) => ids.has(x.id))) assert.equal(a.balance_usd, '0.500000000');
      cursor = page.json.next_cursor;
    }
    for (const id of ids) assert.ok(seen.includes(id), `${id} listed`);
    assert.equal(new Set(seen).size, seen.length, 'no account listed twice');
    for (const q of ['limit=0', 'limit=5000', 'limit=abc', "cursor=1'--"]) assert.equal((await s.admin('GET', `/accounts?${q}`)).status, 400, q);
  });

  it('the operator publishes a price override; requests are billed at it and line items name its version', async () => {
    const versions = await s.admin('GET', '/prices');
    const current = versions.json.data.find((v: { current: boolean }) => v.current);
    assert.ok(current, 'a table is in force');
    const bad = await s.admin('POST', '/prices', { overrides: [{ id: 'x', rates_usd_per_1m: { input: '-1' } }] });
    assert.equal(bad.status, 400);
    const published = await s.admin('POST', '/prices', { overrides: [{ id: 'gpt-4o-mini', rates_usd_per_1m: { input: '1', output: '2' } }] });
    assert.equal(published.status, 201, JSON.stringify(published.json));
    const version = published.json.version as string;
    assert.notEqual(version, current.version);
    assert.equal((await s.admin('GET', `/prices/${version}`)).json.models[0].rates.input, 1_000_000_000);
    const { key, accountId } = await s.fundedKey({ usd: '1' });
    const r = await s.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'priced' }] });
    const h = await s.settled(accountId, 1);
    assert.equal(h.spent, (BigInt(r.usage?.prompt_tokens ?? 0) * 1000n + BigInt(r.usage?.completion_tokens ?? 0) * 2000n).toString());
    const [item] = await s.lineItems(accountId, 1);
    assert.equal(item?.price_version, version);
    // Back to the maintained package's prices.
    const restored = await s.admin('POST', '/prices', { base: 'package' });
    assert.equal(restored.status, 201);
    assert.ok((await s.admin('GET', '/prices')).json.data.some((v: { version: string; current: boolean }) => v.version === restored.json.version && v.current));
  });

  it('the CLI drives the same API for scripts', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { YUGONG_URL: s.url, YUGONG_ADMIN_TOKEN: ADMIN_TOKEN };
    const yg = (...argv: string[]) =>
      cli(
        argv,
        env,
        (t) => out.push(t),
        (t) => err.push(t),
      );
    const id = uid('cli');
    assert.equal(await yg('accounts', 'create', id, '--name', 'From CLI', '--rpm', '60', '--models', 'gpt-4o-mini,gpt-4o'), 0, err.join(''));
    assert.equal(await yg('accounts', 'credit', id, '2.5', '--note', 'wire'), 0, err.join(''));
    assert.equal(await yg('keys', 'create', id, '--name', 'ci'), 0, err.join(''));
    const key = (JSON.parse(out.at(-1) ?? '{}') as { key: string }).key;
    assert.equal(await yg('accounts', 'get', id), 0);
    const shown = JSON.parse(out.at(-1) ?? '{}') as Record<string, unknown>;
    assert.deepEqual([shown.balance_usd, shown.rpm, shown.models], ['2.500000000', 60, ['gpt-4o-mini', 'gpt-4o']]);
    // With an account key the same commands manage its sub-accounts.
    const sub = uid('clisub');
    assert.equal(
      await cli(
        ['accounts', 'create', sub, '--multiplier', '1.2'],
        { YUGONG_URL: s.url, YUGONG_API_KEY: key },
        (t) => out.push(t),
        (t) => err.push(t),
      ),
      0,
      err.join(''),
    );
    assert.equal((JSON.parse(out.at(-1) ?? '{}') as { parent_id: string }).parent_id, id);
    // Errors are the API's message and a non-zero exit.
    err.length = 0;
    assert.equal(await yg('accounts', 'credit', id, '0.0000000001'), 1);
    assert.match(err.join(''), /Error 400: Invalid 'amount_usd'/);
    assert.equal(await yg('accounts', 'frobnicate'), 2);
    assert.equal(
      await cli(
        ['accounts', 'get', id],
        { YUGONG_URL: s.url },
        () => undefined,
        () => undefined,
      ),
      2,
      'no credentials',
    );
    // And as the executable scripts call.
    const bin = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'accounts', 'get', id], { env: { ...process.env, ...env } });
    assert.equal((JSON.parse(stdout) as { id: string }).id, id);
  });
});
