import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ADMIN_TOKEN, startStack, waitFor, type Stack } from './harness.js';
import { countTokens } from '@yugong/metering';

const ask = (s: Stack, key: string) => s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
/** Client traffic that reached an upstream key (probes of /models are not traffic). */
const hits = (s: Stack, upstreamKey: string) => s.mock.requests.filter((r) => r.key === upstreamKey && r.path === '/v1/chat/completions').length;

describe('proxy: upstream key pool and transparent retries', function () {
  this.timeout(60_000);

  describe('with two organizations', () => {
    let s: Stack;
    beforeEach(async () => {
      s = await startStack({
        upstreams: [
          { key: 'sk-a', organization: 'org-a' },
          { key: 'sk-b', organization: 'org-b' },
        ],
      });
    });
    afterEach(() => s.close());

    it('a key answering 429 is cooled and traffic moves; the client never sees it', async () => {
      s.mock.fail('sk-a', { kind: 'rate_limit', retryAfterS: 30, times: Infinity });
      const { key, accountId } = await s.fundedKey();
      for (let i = 0; i < 6; i++) assert.equal((await ask(s, key)).object, 'chat.completion');
      assert.ok(hits(s, 'sk-a') <= 1, `the cooled key got ${hits(s, 'sk-a')} requests`);
      assert.equal(s.mock.requests.filter((r) => r.key === 'sk-b').length, 6);
      const items = await s.lineItems(accountId, 6);
      assert.equal(items.length, 6, 'one usage event per client request, retried or not');
      const retried = items.filter((i) => Number(i.attempts) === 2);
      assert.equal(retried.length, hits(s, 'sk-a'));
      for (const r of retried) {
        const attempts = JSON.parse(r.attempts_json) as { status: number; outcome: string }[];
        assert.deepEqual(
          attempts.map((a) => [a.status, a.outcome]),
          [
            [429, 'retryable'],
            [200, 'ok'],
          ],
        );
      }
    });

    it("a tenant's requests larger than the organizations' TPM are its own: returned once each, not retried, and no key cools for the others", async () => {
      // Each key's organization allows 2,000 tokens a minute.
      for (const [key, organization] of [
        ['sk-a', 'org-a'],
        ['sk-b', 'org-b'],
      ] as const) {
        s.mock.script(key, { organization });
        s.mock.scriptOrganization(organization, { tpm: 2000 });
      }
      const attacker = await s.fundedKey();
      const other = await s.fundedKey();
      const big = JSON.stringify({ model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'lorem ipsum '.repeat(2000) }] });
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${attacker.key}`, 'content-type': 'application/json' }, body: big });
        const json = (await r.json()) as { error: { message: string } };
        assert.equal(r.status, 429);
        assert.match(json.error.message, /^Request too large/);
        assert.equal(r.headers.get('x-should-retry'), 'false', 'the SDKs do not retry it');
      }
      assert.equal(hits(s, 'sk-a') + hits(s, 'sk-b'), 10, 'each tried once, on one key');
      // The other tenant is served at once, on its first attempt, by whichever key.
      for (let i = 0; i < 4; i++) assert.equal((await ask(s, other.key)).object, 'chat.completion');
      assert.ok(
        s.nodes[0]?.proxy.pool.all().every((k) => k.cooldownUntil <= Date.now()),
        'no key cooled',
      );
      const items = await s.lineItems(other.accountId, 4);
      assert.ok(items.every((i) => Number(i.attempts) === 1));
      const refused = await s.lineItems(attacker.accountId, 10);
      assert.ok(
        refused.every((i) => i.costs_nano.every((c: string) => c === '0')),
        'nothing billed for the refusals',
      );
    });

    it('the operator API refuses an upstream inside the network (loopback, private, cloud metadata) unless allowed', async () => {
      const strict = await s.addNode({ YUGONG_ALLOW_PRIVATE_UPSTREAMS: 'false', YUGONG_UPSTREAMS: '[]' });
      const add = (baseUrl: string) =>
        fetch(`${strict.url}/admin/v1/upstreams`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ base_url: baseUrl, key: 'sk-probe' }),
        });
      for (const url of ['http://169.254.169.254/latest', 'http://127.0.0.1:6379', 'http://[::1]:8080/v1', 'http://10.0.0.8/v1', 'http://localhost/v1']) {
        const r = await add(url);
        const json = (await r.json()) as { error: { code: string; param: string } };
        assert.equal(r.status, 400, url);
        assert.deepEqual([json.error.code, json.error.param], ['upstream_not_allowed', 'base_url']);
      }
      assert.ok(!(await s.admin('GET', '/upstreams')).json.data.some((k: { base_url?: string }) => k.base_url?.includes('169.254')), 'nothing was added');
    });

    it('a 401 key is disabled and never tried again, on this node and after the event round-trip', async () => {
      s.mock.script('sk-a', { valid: false });
      const { key } = await s.fundedKey();
      for (let i = 0; i < 5; i++) await ask(s, key);
      assert.equal(hits(s, 'sk-a'), 1);
      const list = await s.admin('GET', '/upstreams');
      const a = (list.json.data as { status: string; reason: string }[]).find((k) => k.reason === 'invalid_api_key');
      assert.equal(a?.status, 'disabled');
      // The disable went through Kafka and the ledger; a node started now loads it disabled.
      const fresh = await s.addNode();
      await waitFor('disabled in the projection', async () => fresh.proxy.pool.all().some((k) => k.status === 'disabled'));
      for (let i = 0; i < 3; i++) await s.client(key, { baseURL: `${fresh.url}/v1` }).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(hits(s, 'sk-a'), 1);
    });

    it('a disabled key is re-enabled by the probe once it works again', async () => {
      s.mock.script('sk-a', { valid: false });
      const { key } = await s.fundedKey();
      for (let i = 0; i < 3; i++) await ask(s, key);
      const node = s.nodes[0];
      const disabled = node?.proxy.pool.all().find((k) => k.status === 'disabled');
      assert.equal(disabled?.reason, 'invalid_api_key');
      // While the key is still refused, probes run and it stays disabled.
      await waitFor('a probe', async () => s.mock.requests.some((r) => r.key === 'sk-a' && r.path === '/v1/models'), 5000);
      assert.equal(node?.proxy.pool.get(disabled?.id ?? '')?.status, 'disabled');
      s.mock.script('sk-a', { valid: true });
      await waitFor('re-enabled by the probe', async () => node?.proxy.pool.get(disabled?.id ?? '')?.status === 'active', 5000);
      // The enable travels as an event; a node started afterwards loads the key active.
      const fresh = await s.addNode();
      await waitFor('enabled in the projection', async () => fresh.proxy.pool.get(disabled?.id ?? '')?.status === 'active');
      const before = hits(s, 'sk-a');
      for (let i = 0; i < 6; i++) await ask(s, key);
      assert.ok(hits(s, 'sk-a') > before, 'traffic reaches the key again');
    });

    it('a key without quota is re-enabled only once a billed request works, not because it lists models', async () => {
      s.mock.script('sk-a', { quota: false });
      const { key } = await s.fundedKey();
      for (let i = 0; i < 3; i++) await ask(s, key);
      const node = s.nodes[0];
      const disabled = node?.proxy.pool.all().find((k) => k.status === 'disabled');
      assert.equal(disabled?.reason, 'insufficient_quota');
      // The key still lists models (as OpenAI answers a key with no quota): that is no proof.
      const probed = () => s.mock.requests.filter((r) => r.key === 'sk-a' && r.path === '/v1/embeddings').length;
      await waitFor('a probe', async () => probed() > 0, 5000);
      await waitFor('a second probe', async () => probed() > 1, 5000);
      assert.equal(node?.proxy.pool.get(disabled?.id ?? '')?.status, 'disabled', 'still disabled while billed requests are refused');
      s.mock.script('sk-a', { quota: true });
      await waitFor('re-enabled once the quota is back', async () => node?.proxy.pool.get(disabled?.id ?? '')?.status === 'active', 5000);
    });

    it('insufficient_quota disables the key', async () => {
      s.mock.fail('sk-a', { kind: 'insufficient_quota', times: Infinity });
      const { key } = await s.fundedKey();
      for (let i = 0; i < 4; i++) await ask(s, key);
      assert.ok(hits(s, 'sk-a') <= 1);
      const list = await s.admin('GET', '/upstreams');
      assert.ok((list.json.data as { reason: string }[]).some((k) => k.reason === 'insufficient_quota'));
      // …and the operator can put it back.
      const id = (list.json.data as { id: string; reason: string }[]).find((k) => k.reason === 'insufficient_quota')?.id;
      const enabled = await s.admin('POST', `/upstreams/${id}/enable`);
      assert.equal(enabled.json.status, 'active');
      await waitFor('re-enabled on the node', async () => s.nodes[0]?.proxy.pool.get(id ?? '')?.status === 'active');
    });

    it('when every key fails the client gets one clear error and one usage event', async () => {
      s.mock.fail('sk-a', { kind: 'server_error', times: Infinity });
      s.mock.fail('sk-b', { kind: 'bad_gateway', times: Infinity });
      const { key, accountId } = await s.fundedKey();
      await assert.rejects(ask(s, key), (e: unknown) => e instanceof OpenAI.APIError && (e.status === 502 || e.status === 503));
      const [item] = await s.lineItems(accountId, 1);
      assert.equal(item?.status, 'upstream_error');
      assert.equal(item?.cost_nano, '0');
      assert.ok(Number(item?.attempts) >= 2);
      assert.equal((await s.account(accountId)).held, '0', 'the hold was released');
    });
  });

  describe('streams', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({ upstreams: [{ key: 'sk-only' }] });
    });
    after(() => s.close());

    it('a cut in the middle reaches the client as an error, and the delivered tokens are billed', async () => {
      s.mock.script('sk-only', { cutStreamAfterChunks: 3 });
      const { key, accountId } = await s.fundedKey();
      const stream = await s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
      let text = '';
      await assert.rejects(
        async () => {
          for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
        },
        (e: unknown) => e instanceof OpenAI.APIError,
      );
      assert.equal(text, 'Hello! This');
      const [item] = await s.lineItems(accountId, 1);
      assert.equal(item?.status, 'upstream_error');
      assert.equal(item?.error_code, 'upstream_stream_cut');
      assert.equal(item?.usage_source, 'estimated');
      assert.equal(Number(item?.completion_tokens), countTokens('gpt-4o', 'Hello! This'));
      s.mock.script('sk-only', { cutStreamAfterChunks: undefined });
    });

    it('a client that hangs up mid-stream is billed for what it received', async () => {
      s.mock.script('sk-only', { tokenDelayMs: 40, reply: 'one two three four five six seven eight nine ten eleven twelve' });
      const { key, accountId } = await s.fundedKey();
      const controller = new AbortController();
      const stream = await s.client(key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: controller.signal });
      let received = 0;
      try {
        for await (const c of stream) {
          if (c.choices[0]?.delta.content) received++;
          if (received === 3) controller.abort();
        }
      } catch {
        // the SDK may end the iteration or throw on abort; either way the client has gone
      }
      assert.equal(received, 3);
      const [item] = await s.lineItems(accountId, 1);
      assert.equal(item?.status, 'client_abort');
      assert.equal(item?.usage_source, 'estimated');
      assert.ok(Number(item?.completion_tokens) >= 3 && Number(item?.completion_tokens) < 12, `billed ${item?.completion_tokens} tokens`);
      s.mock.script('sk-only', { tokenDelayMs: 0, reply: undefined });
    });

    it('a single key retries after its short cooldown on a transient 503', async () => {
      s.mock.fail('sk-only', { kind: 'overloaded', times: 1 });
      const { key, accountId } = await s.fundedKey();
      assert.equal((await ask(s, key)).object, 'chat.completion');
      const [item] = await s.lineItems(accountId, 1);
      assert.equal(Number(item?.attempts), 2);
    });
  });

  describe('two proxy nodes', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({
        nodes: 2,
        upstreams: [
          { key: 'sk-a', organization: 'org-a' },
          { key: 'sk-b', organization: 'org-b' },
        ],
      });
    });
    after(() => s.close());

    it('share upstream health within a second', async () => {
      s.mock.fail('sk-a', { kind: 'rate_limit', retryAfterS: 60, times: 1 });
      const { key } = await s.fundedKey();
      const [n1, n2] = s.nodes;
      // Node 1 meets the 429 (sk-a is first choice while nothing is known about either key).
      for (let i = 0; i < 4 && hits(s, 'sk-a') === 0; i++) await ask(s, key);
      assert.equal(hits(s, 'sk-a'), 1);
      const orgCooled = async () =>
        n2?.proxy.pool.pick('gpt-4o', new Set())?.id === n2?.proxy.pool.all().find((k) => k.organization === 'org-b')?.id &&
        n2?.proxy.pool.pick(
          'gpt-4o',
          new Set(
            n2.proxy.pool
              .all()
              .filter((k) => k.organization === 'org-b')
              .map((k) => k.id),
          ),
        ) === null;
      const t0 = Date.now();
      await waitFor('node 2 hears of the cooldown', orgCooled, 1000);
      assert.ok(Date.now() - t0 <= 1000);
      for (let i = 0; i < 5; i++) await s.client(key, { baseURL: `${n2?.url}/v1` }).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(hits(s, 'sk-a'), 1, 'node 2 never sent to the cooled organization');
      void n1;
    });

    it('revoking a key takes effect on every node within a second', async () => {
      const { key, keyId, accountId } = await s.fundedKey();
      for (const n of s.nodes) await s.client(key, { baseURL: `${n.url}/v1` }).models.list();
      const revoked = await s.admin('DELETE', `/accounts/${accountId}/keys/${keyId}`);
      assert.equal(revoked.status, 200);
      const t0 = Date.now();
      for (const n of s.nodes) {
        await waitFor(
          'revoked everywhere',
          async () => {
            const r = await fetch(`${n.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
            return r.status === 401;
          },
          1000,
        );
      }
      assert.ok(Date.now() - t0 <= 1000);
    });
  });
});
