import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reconcile } from '@yugong/ledger-consumer';
import { redisKeys } from '@yugong/schemas';
import { startStack, waitFor, type Node, type Stack } from './harness.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
const LEASE_MS = 2000;
const HOLD_TTL_MS = 10_000;

async function post(url: string, key: string): Promise<{ status: number; code: string | null; requestId: string | null }> {
  const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
  const json = (await r.json()) as { error?: { code: string } };
  return { status: r.status, code: json.error?.code ?? null, requestId: r.headers.get('x-request-id') };
}

/** Sends through every node every 50 ms until each answers as `wanted` says; returns the ms it took on the slowest node. */
async function untilEveryNode(nodes: Node[], key: string, wanted: (a: Awaited<ReturnType<typeof post>>) => boolean): Promise<number> {
  const t0 = Date.now();
  const times = await Promise.all(
    nodes.map(async (n) => {
      while (Date.now() - t0 < 10_000) {
        if (wanted(await post(n.url, key))) return Date.now() - t0;
        await new Promise((r) => setTimeout(r, 50));
      }
      return Infinity;
    }),
  );
  return Math.max(...times);
}

describe('admission leases: memory-only decisions that keep every limit', function () {
  this.timeout(180_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2, env: { YUGONG_ADMISSION_LEASE_MS: String(LEASE_MS), YUGONG_HOLD_TTL_MS: String(HOLD_TTL_MS) } });
  });
  after(() => s.close());
  const nodes = () => s.nodes;
  const field = async (accountId: string, name: string) => (await s.account(accountId))[name] ?? '0';

  it("a key's RPM holds across two nodes to within one slice", async () => {
    // A minute window that ends mid-test would start the count again.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 25_000) await new Promise((r) => setTimeout(r, left + 100));
    const RPM = 40;
    const { key, keyId, accountId } = await s.fundedKey({ usd: '100', key: { rpm: RPM } });
    const minute = Math.floor(Date.now() / 60_000);
    assert.equal((await post(nodes()[0]!.url, key)).status, 200);
    // A quarter of what the window has left: this node's first lease took 10 requests at once.
    assert.equal(await s.redis.get(redisKeys.rpm(accountId, `k:${keyId}`, minute)), String(RPM / 4));
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(...(await Promise.all(nodes().flatMap((n) => [post(n.url, key), post(n.url, key)]))));
    const admitted = 1 + answers.filter((a) => a.status === 200).length;
    const limited = answers.filter((a) => a.status === 429 && a.code === 'rate_limit_exceeded').length;
    assert.equal(admitted - 1 + limited, answers.length, 'every answer is a success or the rate limit');
    console.log(`      (${admitted} of ${answers.length + 1} admitted at an RPM of ${RPM}, through two nodes)`);
    assert.ok(admitted <= RPM, `admitted ${admitted} over an RPM of ${RPM}`);
    assert.ok(admitted >= RPM - RPM / 4, `admitted ${admitted}: more than one slice (${RPM / 4}) of the limit went unused`);
  });

  it("a top-up, a multiplier change, a disable and a key revocation reach both nodes' decisions within a second", async () => {
    // Funds for a few requests: the nodes decide these in Redis, one by one.
    const poor = await s.fundedKey({ usd: '0.0003' });
    // Spend it all: a refusal counts only once every admitted request has settled (a settled
    // request frees the part of its hold it did not cost).
    let admitted = 0;
    for (let i = 0; i < 200; i++) {
      if ((await post(nodes()[i % 2]!.url, poor.key)).status === 200) {
        admitted++;
        continue;
      }
      await s.settled(poor.accountId, admitted);
      const again = await Promise.all(nodes().map((n) => post(n.url, poor.key)));
      if (again.every((a) => a.code === 'insufficient_quota')) break;
      admitted += again.filter((a) => a.status === 200).length;
    }
    assert.ok(admitted > 0 && admitted < 200, `admitted ${admitted}`);
    assert.equal((await s.admin('POST', `/accounts/${poor.accountId}/credits`, { amount_usd: '50', idempotency_key: `top-${poor.accountId}` })).status, 201);
    const topUp = await untilEveryNode(nodes(), poor.key, (a) => a.status === 200);
    assert.ok(topUp < 1000, `a top-up reached both nodes after ${topUp} ms`);

    // Funds to spare: both nodes now admit under leases.
    const rich = await s.fundedKey({ usd: '100' });
    for (const n of nodes()) assert.equal((await post(n.url, rich.key)).status, 200);
    assert.ok(BigInt(await field(rich.accountId, 'leased')) > 0n, 'both nodes hold a lease');
    assert.equal((await s.admin('POST', `/accounts/${rich.accountId}/multiplier`, { multiplier: 2 })).status, 200);
    await new Promise((r) => setTimeout(r, 1000));
    const billed = (await Promise.all(nodes().map((n) => post(n.url, rich.key)))).map((a) => a.requestId ?? '');
    const items = await s.lineItems(rich.accountId, 2 + billed.length);
    for (const id of billed) {
      const item = items.find((r) => r.request_id === id);
      assert.ok(item, `line item of ${id}`);
      assert.equal(BigInt(item.costs_nano[0]), 2n * BigInt(item.list_cost_nano), 'billed at the new multiplier');
    }

    assert.equal((await s.admin('POST', `/accounts/${rich.accountId}/disable`, { reason: 'test' })).status, 200);
    const disabled = await untilEveryNode(nodes(), rich.key, (a) => a.status >= 400);
    assert.ok(disabled < 1000, `a disable reached both nodes after ${disabled} ms`);

    const other = await s.fundedKey({ usd: '100' });
    for (const n of nodes()) assert.equal((await post(n.url, other.key)).status, 200);
    assert.equal((await s.admin('DELETE', `/accounts/${other.accountId}/keys/${other.keyId}`)).status, 200);
    const revoked = await untilEveryNode(nodes(), other.key, (a) => a.status === 401);
    assert.ok(revoked < 1000, `a key revocation reached both nodes after ${revoked} ms`);
  });

  it('a node killed with SIGKILL leaks no funds: its slice comes back when the lease expires, and nothing drifts', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '100' });
    const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, [main], {
      env: {
        ...process.env,
        ...nodes()[0]!.env,
        YUGONG_PROXY_PORT: '0',
        YUGONG_NODE_ID: `killed-${process.pid}`,
        YUGONG_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'yg-killed-')),
        YUGONG_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    let leasedAt = 0;
    try {
      const url = await waitFor('the proxy process to listen', async () => /"url":"(http:\/\/[^"]+)\/v1"/.exec(out)?.[1] ?? null, 30_000);
      for (let i = 0; i < 5; i++) assert.equal((await post(url, key)).status, 200);
      leasedAt = Date.now();
      // Long enough for the usage events to reach Kafka, well within the lease's window.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    }
    const h = await s.settled(accountId, 5);
    const slice = BigInt(h.leased ?? '0');
    assert.ok(slice > 0n, 'the killed node never gave its slice back');
    const leases = await s.redis.hkeys(redisKeys.leaseAmounts(accountId, accountId));
    assert.ok(leases.length > 0 && leases.every((id) => id.startsWith(`lease:killed-${process.pid}:`)));

    // After the lease's window and hold expiry, the next admission anywhere finds it released.
    await new Promise((r) => setTimeout(r, Math.max(0, leasedAt + LEASE_MS + HOLD_TTL_MS + 500 - Date.now())));
    assert.equal((await post(nodes()[0]!.url, key)).status, 200);
    const left = await s.redis.hkeys(redisKeys.leaseAmounts(accountId, accountId));
    assert.deepEqual(
      left.filter((id) => leases.includes(id)),
      [],
      "the killed node's leases were released",
    );
    const after = await s.settled(accountId, 6);
    const own = await s.redis.hvals(redisKeys.leaseAmounts(accountId, accountId));
    assert.equal(
      BigInt(after.leased ?? '0'),
      own.reduce((a, b) => a + BigInt(b), 0n),
      'leased is exactly what live leases reserve',
    );
    const drift = await waitFor(
      'reconcile without drift',
      async () => {
        const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
        return d && d.drift === 0n && d.creditDrift === 0n ? d : null;
      },
      20_000,
    );
    assert.equal(drift.redisSpentNano, BigInt(after.spent ?? '0'));
  });
});
