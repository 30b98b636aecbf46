import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, waitFor, type Stack } from './harness.js';

/**
 * The hold of one request below, at gpt-4o-mini list prices ($0.15 / $0.60 per 1M):
 * prompt estimate ceil(len("user" + "x") / 3) = 2 tokens, completion budget max_tokens = 100.
 */
const HOLD = 2n * 150n + 100n * 600n;
const UPSTREAM_LATENCY_MS = 3000;
const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });

describe('ledger: no overdraft under concurrency', function () {
  this.timeout(180_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2 });
    // Slow answers keep every admitted request in flight while the burst arrives: the worst case.
    // A cold node on a slow machine takes about two seconds to decide 200 requests (a shorter
    // latency let early answers settle and free their holds mid-burst); the test checks that.
    s.mock.script('sk-upstream-a', { latencyMs: UPSTREAM_LATENCY_MS });
  });
  after(() => s.close());

  for (let round = 1; round <= 5; round++) {
    it(`round ${round}: an account that can afford 10 requests admits at most 10 of 200 concurrent ones`, async () => {
      const accountId = `race-${randomUUID().slice(0, 8)}`;
      assert.equal((await s.admin('POST', '/accounts', { id: accountId })).status, 201);
      const credit = (HOLD * 10n).toString().padStart(10, '0');
      const usd = `${credit.slice(0, -9) || '0'}.${credit.slice(-9)}`;
      assert.equal((await s.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: usd, idempotency_key: accountId })).status, 201);
      const key = (await s.admin('POST', `/accounts/${accountId}/keys`, {})).json.key as string;

      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          fetch(`${s.nodes[i % 2]?.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY }).then(async (r) => {
            const body = (await r.json()) as { error?: { code: string } };
            return { status: r.status === 200 ? 'ok' : body.error?.code ?? String(r.status), at: Date.now() };
          }),
        ),
      );
      const statuses = answers.map((a) => a.status);
      const admitted = statuses.filter((x) => x === 'ok').length;
      const refused = statuses.filter((x) => x === 'insufficient_quota').length;
      // A refusal is answered as soon as it is decided: every decision must have come while all
      // admitted requests were still in flight, or settled ones would have freed their holds.
      const lastRefusal = Math.max(...answers.filter((a) => a.status !== 'ok').map((a) => a.at));
      const firstSuccess = Math.min(...answers.filter((a) => a.status === 'ok').map((a) => a.at));
      assert.ok(lastRefusal < firstSuccess, `the burst took longer than the upstream latency (${UPSTREAM_LATENCY_MS} ms): the race was not tested`);
      assert.ok(admitted >= 1 && admitted <= 10, `admitted ${admitted}`);
      assert.equal(admitted + refused, 200, `unexpected answers: ${statuses.filter((x) => x !== 'ok' && x !== 'insufficient_quota').join(',')}`);
      const h = await s.settled(accountId, admitted);
      const balance = BigInt(h.credited ?? '0') - BigInt(h.spent ?? '0');
      assert.ok(balance >= 0n, `balance went below its floor: ${balance}`);
      await waitFor('holds released', async () => (await s.account(accountId)).held === '0');
    });
  }
});
