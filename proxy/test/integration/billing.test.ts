import assert from 'node:assert/strict';
import { startStack, waitFor, type Stack } from './harness.js';

const today = () => new Date().toISOString().slice(0, 10);
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

describe('OpenAI-compatible balance endpoints', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  const get = async (key: string, path: string) => {
    const r = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    return { status: r.status, json: (await r.json()) as Record<string, any> };
  };

  it('report the same figures as the ledger, with and without /v1', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '12.5' });
    for (let i = 0; i < 3; i++) await s.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] });
    const h = await s.settled(accountId, 3);
    await s.lineItems(accountId, 3);
    const spentCents = Number(h.spent) / 1e7;

    const sub = await get(key, '/v1/dashboard/billing/subscription');
    assert.equal(sub.status, 200);
    assert.equal(sub.json.hard_limit_usd, 12.5);
    assert.equal(sub.json.object, 'billing_subscription');
    assert.deepEqual((await get(key, '/dashboard/billing/subscription')).json.hard_limit_usd, 12.5);

    // Rollups become visible a moment after their line items: wait for the figure, then compare.
    const usage = await waitFor('usage to match the ledger', async () => {
      const u = await get(key, `/v1/dashboard/billing/usage?start_date=${today()}&end_date=${tomorrow()}`);
      return u.status === 200 && u.json.total_usage === spentCents ? u : null;
    });
    assert.equal(usage.json.total_usage, spentCents);
    const items = usage.json.daily_costs.flatMap((d: { line_items: { name: string; cost: number }[] }) => d.line_items);
    assert.deepEqual(
      items.map((i: { name: string }) => i.name),
      ['gpt-4o-mini'],
    );
    // A range that excludes today reports nothing.
    const before = await get(key, '/v1/dashboard/billing/usage?start_date=2020-01-01&end_date=2020-02-01');
    assert.equal(before.json.total_usage, 0);

    const grants = await get(key, '/dashboard/billing/credit_grants');
    assert.equal(grants.json.total_granted, 12.5);
    assert.equal(Math.round(grants.json.total_used * 1e9), Number(h.spent));
  });

  it('answer bad dates with a 400', async () => {
    const { key } = await s.fundedKey();
    for (const q of ['start_date=2026-02-30&end_date=2026-03-01', 'start_date=2026-03-02&end_date=2026-03-01', 'start_date=2020-01-01&end_date=2026-01-01', "start_date='1&end_date=2"]) {
      const r = await get(key, `/v1/dashboard/billing/usage?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.type, 'invalid_request_error');
    }
  });
});
