import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { formatUsd } from '@yugong/schemas';
import { startStack, waitFor, type Stack } from './harness.js';

const UPSTREAM_LATENCY_MS = 3000;

/**
 * Prompts whose tokens outnumber a third of their characters many times over, and prompt text
 * outside the messages: each round's account is funded for exactly ten of its requests at
 * what upstream bills for one.
 */
const PROMPTS: { name: string; body: Record<string, unknown> }[] = [
  { name: 'ASCII', body: { messages: [{ role: 'user', content: 'x' }] } },
  { name: 'a rare script (3,000 cuneiform signs)', body: { messages: [{ role: 'user', content: '𒀀'.repeat(3000) }] } },
  { name: 'CJK and Hangul', body: { messages: [{ role: 'user', content: '中文文本的令牌更多한국어'.repeat(250) }] } },
  { name: 'emoji sequences', body: { messages: [{ role: 'user', content: '👩‍👩‍👧‍👦🧑🏿‍🚀'.repeat(300) }] } },
  {
    name: 'a tool schema in Devanagari',
    body: {
      messages: [{ role: 'user', content: 'x' }],
      tools: [{ type: 'function', function: { name: 'lookup', description: 'हिन्दी पाठ अधिक टोकन'.repeat(150), parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
    },
  },
];

describe('ledger: no overdraft under concurrency, whatever the prompt', function () {
  this.timeout(300_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2 });
    // Slow answers keep every admitted request in flight while the burst arrives: the worst case.
    // A cold node on a slow machine takes about two seconds to decide 200 requests (a shorter
    // latency let early answers settle and free their holds mid-burst); the test checks that.
    s.mock.script('sk-upstream-a', { latencyMs: UPSTREAM_LATENCY_MS });
  });
  after(() => s.close());

  const post = (url: string | undefined, key: string, body: string) =>
    fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });

  for (const prompt of PROMPTS) {
    it(`${prompt.name}: an account funded for 10 requests stays above its floor with 200 concurrent ones through two nodes`, async () => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, ...prompt.body });
      // What upstream bills for one such request, measured on an account of its own.
      const probe = await s.fundedKey();
      assert.equal((await post(s.nodes[0]?.url, probe.key, body)).status, 200);
      const cost = BigInt((await s.settled(probe.accountId, 1)).spent ?? '0');
      assert.ok(cost > 0n);

      const accountId = `race-${randomUUID().slice(0, 8)}`;
      assert.equal((await s.admin('POST', '/accounts', { id: accountId })).status, 201);
      assert.equal((await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: formatUsd(cost * 10n), idempotency_key: accountId })).status, 201);
      const key = (await s.admin('POST', `/accounts/${accountId}/keys`, {})).json.key as string;

      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          post(s.nodes[i % 2]?.url, key, body).then(async (r) => {
            const b = (await r.json()) as { error?: { code: string } };
            return { status: r.status === 200 ? 'ok' : (b.error?.code ?? String(r.status)), retryAfter: r.headers.get('retry-after'), at: Date.now() };
          }),
        ),
      );
      const statuses = answers.map((a) => a.status);
      const admitted = statuses.filter((x) => x === 'ok').length;
      // While the admitted requests run, their holds take the rest of the funds: the others are
      // told to wait (a retryable 429 with retry-after), not that the funds are gone.
      const waiting = answers.filter((a) => a.status === 'rate_limit_exceeded' && a.retryAfter === '1').length;
      // A refusal is answered as soon as it is decided: every decision must have come while all
      // admitted requests were still in flight, or settled ones would have freed their holds.
      const lastRefusal = Math.max(...answers.filter((a) => a.status !== 'ok').map((a) => a.at));
      const firstSuccess = Math.min(...answers.filter((a) => a.status === 'ok').map((a) => a.at));
      assert.ok(lastRefusal < firstSuccess, `the burst took longer than the upstream latency (${UPSTREAM_LATENCY_MS} ms): the race was not tested`);
      assert.ok(admitted >= 1 && admitted <= 10, `admitted ${admitted}`);
      assert.equal(admitted + waiting, 200, `unexpected answers: ${statuses.filter((x) => x !== 'ok' && x !== 'rate_limit_exceeded').join(',')}`);
      const h = await s.settled(accountId, admitted);
      const balance = BigInt(h.credited ?? '0') - BigInt(h.spent ?? '0');
      assert.ok(balance >= 0n, `balance went below its floor: ${balance}`);
      await waitFor('holds released', async () => (await s.account(accountId)).held === '0');
    });
  }

  it('with funds that nodes lease in slices: 400 concurrent through two nodes spend no more than the funds, and every slice comes back', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] });
    const probe = await s.fundedKey();
    assert.equal((await post(s.nodes[0]?.url, probe.key, body)).status, 200);
    const cost = BigInt((await s.settled(probe.accountId, 1)).spent ?? '0');
    const accountId = `lease-race-${randomUUID().slice(0, 8)}`;
    assert.equal((await s.admin('POST', '/accounts', { id: accountId })).status, 201);
    assert.equal((await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: formatUsd(cost * 100n), idempotency_key: accountId })).status, 201);
    const key = (await s.admin('POST', `/accounts/${accountId}/keys`, {})).json.key as string;

    let leasedSeen = 0n;
    let burst = true;
    const watching = (async () => {
      while (burst) {
        const leased = BigInt((await s.account(accountId)).leased ?? '0');
        if (leased > leasedSeen) leasedSeen = leased;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        post(s.nodes[i % 2]?.url, key, body).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    burst = false;
    await watching;
    const admitted = answers.filter((x) => x === 200).length;
    assert.equal(admitted + answers.filter((x) => x === 429).length, 400, `unexpected answers: ${answers.filter((x) => x !== 200 && x !== 429).join(',')}`);
    assert.ok(leasedSeen > 0n, 'the nodes admitted under leases');
    assert.ok(admitted >= 10 && admitted <= 100, `admitted ${admitted}`);
    const h = await s.settled(accountId, admitted);
    assert.ok(BigInt(h.credited ?? '0') - BigInt(h.spent ?? '0') >= 0n, `balance went below its floor: ${h.spent} spent of ${h.credited}`);
    // Each node gives back what it did not use once its last request has finished.
    await waitFor('leases given back', async () => ((await s.account(accountId)).leased === '0' ? true : null), 15_000);
    assert.equal((await s.account(accountId)).held, '0');
  });
});
