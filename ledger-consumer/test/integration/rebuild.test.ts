import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sampleUsage } from '@yugong/schemas/testing';
import { endpointsFromEnv } from '@yugong/infra';
import { makeEvent, redisKeys, type YugongEvent } from '@yugong/schemas';
import { BALANCES_GROUP } from '../../src/ledger.js';
import { rebuild, swap } from '../../src/rebuild.js';
import { startHarness, type Harness } from './harness.js';

describe('rebuild: balances recomputed from the event log into a fresh keyspace, then swapped', function () {
  this.timeout(180_000);
  let h: Harness;
  let target: Redis;
  before(async () => {
    h = await startHarness();
    target = new Redis(endpointsFromEnv().redisUrl, { db: 9 });
  });
  after(async () => {
    target.disconnect();
    await h.close();
  });

  it('finds a corrupted balance, refuses while the ledger runs, and swaps in the exact figures', async () => {
    const root = `rb-${randomUUID().slice(0, 8)}`;
    const kid = `${root}-kid`;
    const settings = { name: 'r', multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
    const events: YugongEvent[] = [
      makeEvent('account.created', { id: `account:${root}:created`, source: 't', accountPath: [root], data: { accountId: root, parentId: null, ...settings } }),
      makeEvent('account.created', { id: `account:${kid}:created`, source: 't', accountPath: [root, kid], data: { accountId: kid, parentId: root, ...settings } }),
      makeEvent('credit.granted', { id: `credit:${root}:1`, source: 't', accountPath: [root], data: { accountId: root, amountNano: '5000000', note: '', idempotencyKey: '1', grantedBy: 't' } }),
    ];
    for (let i = 0; i < 20; i++)
      events.push(
        makeEvent('usage.recorded', { id: `usage:${root}:${i}`, source: 't', accountPath: [root, kid], data: sampleUsage({ requestId: randomUUID(), costs: [String(100 + i), String(150 + i)] }) }),
      );
    await h.send(events);
    const want = { rootSpent: (100 * 20 + 190).toString(), kidSpent: (150 * 20 + 190).toString() };
    await h.waitFor('the events applied', async () => (await h.redis.hget(redisKeys.account(root, kid), 'requests')) === '20', 60_000);
    assert.equal(await h.redis.hget(redisKeys.account(root, kid), 'spent'), want.kidSpent);

    // A balance goes wrong in the live keyspace (a bad manual fix, a lost write).
    await h.redis.hincrby(redisKeys.account(root, kid), 'spent', 7);
    const group = BALANCES_GROUP + h.groupSuffix;
    const refused = await rebuild({ kafka: h.kafka, live: h.redis, target, group, dedupeTtlSeconds: 3600 });
    assert.equal(refused.ok, false, 'refused while the ledger consumes');

    await h.ledger.stop();
    const r = await rebuild({ kafka: h.kafka, live: h.redis, target, group, dedupeTtlSeconds: 3600 });
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.ok(r.events >= events.length);
    const mine = r.drifts.filter((d) => d.accountId === root || d.accountId === kid);
    assert.deepEqual(mine, [{ accountId: kid, field: 'spent', live: (BigInt(want.kidSpent) + 7n).toString(), rebuilt: want.kidSpent }]);
    assert.deepEqual(await target.hmget(redisKeys.account(root, root), 'credited', 'spent', 'requests'), ['5000000', want.rootSpent, '20']);

    await swap(h.redis, target);
    try {
      assert.equal(await h.redis.hget(redisKeys.account(root, kid), 'spent'), want.kidSpent, 'the live keyspace holds the rebuilt figures');
      assert.equal(await h.redis.hget(redisKeys.accountRoots(), kid), root, 'with its indexes');
    } finally {
      // Other suites share this Redis: put its keyspace back.
      await swap(h.redis, target);
    }
  });
});
