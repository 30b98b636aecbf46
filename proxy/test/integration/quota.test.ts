import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { formatUsd } from '@yugong/schemas';
import { startStack, waitFor, type Stack } from './harness.js';

const uid = () => randomUUID().replace(/-/g, '').slice(0, 8);

/**
 * What a key near the end of its funds, or with a small TPM, is told: admitted while its bound
 * fits the funds its finished requests left; "wait" (a retryable 429) while only requests in
 * flight hold the rest; "no" (insufficient_quota) only when the funds are really gone; and a
 * request that no TPM window can ever admit is told so, once, not to retry.
 */
describe('near the end of the funds and the limits: admitted, wait, or no, as the funds really are', function () {
  this.timeout(180_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  // About 3,000 bytes of prompt: held at one token a byte, counted by upstream as far fewer.
  const prompt = 'hello world, '.repeat(230);
  const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: prompt }] });
  const post = async (key: string) => {
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    const json = (await r.json()) as { error?: { code: string | null; type: string } };
    return { status: r.status, code: json.error?.code ?? null, type: json.error?.type ?? null, retryAfter: r.headers.get('retry-after'), shouldRetry: r.headers.get('x-should-retry') };
  };

  /** A sub-account whose quota is `holds` times one request's hold, with a key; and that hold, read from Redis while a request waits upstream (on a quota too small for a lease: about 8 holds). */
  async function quotaAccount(holds: number) {
    const parent = await s.fundedKey({ usd: '10' });
    const probe = `${parent.accountId}-p${uid()}`;
    const made = await s.admin('POST', '/accounts', { id: probe, parent_id: parent.accountId, credit_limit_usd: '0.004' });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const probeKey = (await s.admin('POST', `/accounts/${probe}/keys`, { name: 'probe' })).json.key as string;
    s.mock.script('sk-upstream-a', { latencyMs: 800 });
    const inFlight = post(probeKey);
    const hold = await waitFor('the probe request held', async () => {
      const held = BigInt((await s.account(probe)).held ?? '0');
      return held > 0n ? held : null;
    });
    await inFlight;
    s.mock.script('sk-upstream-a', { latencyMs: 0 });
    const id = `${parent.accountId}-q${uid()}`;
    const quota = hold * BigInt(holds);
    assert.equal((await s.admin('POST', '/accounts', { id, parent_id: parent.accountId, credit_limit_usd: formatUsd(quota) })).status, 201);
    const key = (await s.admin('POST', `/accounts/${id}/keys`, { name: 'quota' })).json.key as string;
    return { id, root: parent.accountId, key, hold, quota };
  }

  it('a sequential client spends its quota down to its last request, with no refusal before it', async () => {
    const a = await quotaAccount(10);
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof post>> | null = null;
    for (let i = 0; i < 200; i++) {
      // One at a time, each answer read before the next.
      last = await post(a.key);
      statuses.push(last.status);
      if (last.status !== 200) break;
    }
    const served = statuses.filter((x) => x === 200).length;
    assert.deepEqual(statuses, [...Array(served).fill(200), 429], statuses.join(' '));
    assert.equal(last?.code, 'insufficient_quota');
    assert.equal(last?.shouldRetry, 'false');
    // Exactly as the funds allow: the last admitted one fitted after every cost before it, the refused one did not.
    const settled = await s.settled(a.id, served, a.root);
    const spent = BigInt(settled.spent ?? '0');
    const perRequest = spent / BigInt(served);
    assert.ok(perRequest * 3n < a.hold, `each request cost well under its hold (${perRequest} of ${a.hold})`);
    assert.ok(a.quota - spent < a.hold, `refused only once the ${a.quota - spent} left could not hold ${a.hold}`);
    assert.ok(a.quota - spent + perRequest + 1n >= a.hold, 'the last admitted request fitted');
    assert.ok(served > 20, `${served} requests served on a quota of 10 holds`);
    // The ledger took each cost from its hold: nothing stays held or settling.
    const after = await waitFor('holds settled', async () => {
      const h = await s.account(a.id);
      return h.held === '0' ? h : null;
    });
    assert.equal(after.settling ?? '0', '0');
  });

  it('while only requests in flight hold the rest of the funds, the next one is told to wait (retryable 429), not that the quota is gone', async () => {
    const a = await quotaAccount(2);
    s.mock.script('sk-upstream-a', { latencyMs: 1500 });
    try {
      const first = [post(a.key), post(a.key)];
      await new Promise((r) => setTimeout(r, 400));
      const third = await post(a.key);
      assert.equal(third.status, 429);
      assert.equal(third.code, 'rate_limit_exceeded');
      assert.equal(third.retryAfter, '1');
      assert.notEqual(third.shouldRetry, 'false', 'the SDKs retry it');
      assert.deepEqual(
        (await Promise.all(first)).map((r) => r.status),
        [200, 200],
      );
    } finally {
      s.mock.script('sk-upstream-a', { latencyMs: 0 });
    }
    // The two finished for less than they held: the next one fits.
    assert.equal((await post(a.key)).status, 200);
  });

  it("a request larger than the key's TPM is answered once, not to retry, with how to make it fit", async () => {
    const { key } = await s.fundedKey({ key: { tpm: 200 } });
    const noBudget = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }),
    });
    const json = (await noBudget.json()) as { error: { message: string; type: string; code: string } };
    assert.equal(noBudget.status, 429);
    assert.equal(noBudget.headers.get('x-should-retry'), 'false');
    assert.equal(noBudget.headers.get('retry-after'), null);
    assert.equal(json.error.type, 'tokens');
    assert.match(json.error.message, /Request too large on tokens per min \(TPM\): Limit 200, Requested \d+\..*max_tokens/);
    // The official SDK, allowed 3 retries, sends it once.
    let sent = 0;
    const client = s.client(key, {
      maxRetries: 3,
      fetch: (...args: Parameters<typeof fetch>) => {
        sent++;
        return fetch(...args);
      },
    });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }), (e: { status?: number }) => e.status === 429);
    assert.equal(sent, 1, 'the SDK did not retry');
    // Told how, it fits.
    const fits = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
    assert.ok(fits.choices.length > 0);
  });
});
