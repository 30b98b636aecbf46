import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { ADMIN_TOKEN, freePort, startStack, waitFor, type Node, type Stack } from './harness.js';

const CONTROL_MAIN = fileURLToPath(new URL('../../src/control/main.js', import.meta.url));

/** The control plane as its own process, and proxy nodes that serve the data plane only. */
describe('control plane apart from the data plane', function () {
  this.timeout(120_000);
  let s: Stack;
  let dataOnly: Node;
  let control: ChildProcess;
  let controlUrl: string;

  before(async () => {
    s = await startStack();
    dataOnly = await s.addNode({ YUGONG_CONTROL_API: 'off' });
    const port = await freePort();
    controlUrl = `http://127.0.0.1:${port}`;
    control = spawn(process.execPath, [CONTROL_MAIN], {
      env: {
        ...process.env,
        ...dataOnly.env,
        YUGONG_CONTROL_PORT: String(port),
        YUGONG_NODE_ID: 'control-test',
        YUGONG_SPOOL_DIR: `${dataOnly.env.YUGONG_SPOOL_DIR}-control`,
        YUGONG_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(
      'the control plane to serve',
      async () =>
        (await fetch(`${controlUrl}/healthz`).then(
          (r) => r.status,
          () => 0,
        )) === 200
          ? true
          : null,
      60_000,
    );
  });
  after(async () => {
    if (control && control.exitCode === null) {
      control.kill('SIGTERM');
      await once(control, 'exit');
    }
    await s?.close();
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${controlUrl}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  it('a data-plane node answers the write APIs with an OpenAI-shaped 404 and serves /v1', async () => {
    for (const path of ['/admin/v1/accounts', '/account/v1/me']) {
      const res = await fetch(`${dataOnly.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.status, 404, path);
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.deepEqual([body.error.code, body.error.type], ['unknown_url', 'invalid_request_error']);
    }
    assert.equal((await fetch(`${dataOnly.url}/healthz`)).status, 200);
  });

  it('what the control process writes, the data-plane node serves and bills; a revoke reaches it', async () => {
    const accountId = `acct-ctl-${Date.now()}`;
    assert.equal((await admin('POST', '/accounts', { id: accountId, name: 'Control' })).status, 201);
    assert.equal((await admin('POST', `/accounts/${accountId}/credits`, { amount_usd: '5', idempotency_key: `c-${accountId}` })).status, 201);
    const created = await admin('POST', `/accounts/${accountId}/keys`, { name: 'k' });
    assert.equal(created.status, 201);
    const key = created.json.key as string;

    const client = new OpenAI({ apiKey: key, baseURL: `${dataOnly.url}/v1`, maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    assert.ok(answer.usage && answer.usage.total_tokens > 0);
    const settled = await s.settled(accountId, 1);
    assert.ok(BigInt(settled.spent ?? '0') > 0n, 'the request is billed');

    // Self-service on the control process, with the account's own key.
    const me = await fetch(`${controlUrl}/account/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { id: string }).id, accountId);

    assert.equal((await admin('DELETE', `/accounts/${accountId}/keys/${created.json.id}`)).status, 200);
    await waitFor(
      'the revoke to reach the data-plane node',
      async () => {
        const r = await fetch(`${dataOnly.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
        return r.status === 401 ? true : null;
      },
      30_000,
    );
  });

  it('the control process lists the pool the nodes seeded, with their health', async () => {
    // The seed travels as an event through the ledger, which announces it.
    const keys = await waitFor(
      'the seeded upstream key',
      async () => {
        const list = await admin('GET', '/upstreams');
        assert.equal(list.status, 200);
        const data = list.json.data as { id: string; status: string; key_prefix: string }[];
        return data.length > 0 ? data : null;
      },
      30_000,
    );
    assert.deepEqual(
      keys.map((k) => [k.status, k.key_prefix]),
      [['active', 'sk-ups']],
    );
  });
});
