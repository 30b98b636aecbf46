import assert from 'node:assert/strict';
import { randomUUID, createHash } from 'node:crypto';
import { sampleUsage } from '@yugong/schemas/testing';
import { makeEvent, packEvents, redisKeys, topics } from '@yugong/schemas';
import { reconcile } from '../../src/reconcile.js';
import { startHarness, type Harness } from './harness.js';

describe('ledger on real Kafka, Redis and ClickHouse', function () {
  this.timeout(90_000);
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('projects accounts, keys and credits and settles usage exactly once', async () => {
    const root = `acme-${randomUUID().slice(0, 8)}`;
    const child = `${root}-kid`;
    const hash = createHash('sha256').update('sk-yg-test').digest('hex');
    const settings = { multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
    const u1 = makeEvent('usage.recorded', { id: `usage:${randomUUID()}`, source: 't', accountPath: [root, child], data: sampleUsage({ costs: ['1000', '1500'] }) });
    const u2 = makeEvent('usage.recorded', { id: `usage:${randomUUID()}`, source: 't', accountPath: [root, child], data: sampleUsage({ costs: ['9007199254740993', '13510798882111490'] }) });
    await h.send([
      makeEvent('account.created', { id: `acct:${root}`, source: 't', accountPath: [root], data: { accountId: root, parentId: null, name: 'Acme', ...settings } }),
      makeEvent('account.created', { id: `acct:${child}`, source: 't', accountPath: [root, child], data: { accountId: child, parentId: root, name: 'Kid', ...settings, multiplierPpm: 1_500_000 } }),
      makeEvent('credit.granted', {
        id: `credit:${root}:1`,
        source: 't',
        accountPath: [root],
        data: { accountId: root, amountNano: '50000000000', note: 'top-up', idempotencyKey: '1', grantedBy: 'op' },
      }),
      makeEvent('apikey.created', {
        id: `key:k1-${root}`,
        source: 't',
        accountPath: [root, child],
        data: { keyId: `k1-${root}`, accountId: child, hash, prefix: 'sk-yg-te', name: 'ci', models: ['gpt-4o'], limits: { rpm: 60, tpm: null }, ipAllowlist: null, origins: null, expiresAt: null },
      }),
      u1,
      u1,
      u2, // u1 delivered twice
    ]);
    // The same credit delivered again (a producer retry) is applied once.
    await h.send([
      makeEvent('credit.granted', {
        id: `credit:${root}:1`,
        source: 't',
        accountPath: [root],
        data: { accountId: root, amountNano: '50000000000', note: 'top-up', idempotencyKey: '1', grantedBy: 'op' },
      }),
    ]);

    const acct = (id: string) => h.redis.hgetall(redisKeys.account(root, id));
    await h.waitFor('usage settled', async () => (await acct(child)).requests === '2' && (await acct(root)).requests === '2');
    await h.waitFor('credit applied', async () => (await acct(root)).credited === '50000000000');
    assert.equal((await acct(root)).spent, (1000n + 9007199254740993n).toString());
    assert.equal((await acct(child)).spent, (1500n + 13510798882111490n).toString());
    assert.equal((await acct(child)).multiplierPpm, '1500000');
    assert.deepEqual(await h.redis.smembers(redisKeys.children(root, root)), [child]);
    const key = await h.redis.hgetall(redisKeys.apiKey(hash));
    assert.equal(key.accountId, child);
    assert.deepEqual(JSON.parse(key.path ?? '[]'), [root, child]);
    assert.equal(key.status, 'active');

    const rows = await h.waitFor('line items', async () => {
      const rs = await h.clickhouse.query({ query: `SELECT count() AS n, uniqExact(event_id) AS u, sum(cost_nano) AS cost FROM line_items WHERE root_account_id = '${root}'`, format: 'JSONEachRow' });
      const [r] = await rs.json<{ n: string; u: string; cost: string }>();
      return r && r.n === '2' ? r : undefined;
    });
    assert.equal(rows.u, '2');
    assert.equal(rows.cost, (1500n + 13510798882111490n).toString());
  });

  it('sends invalid events to the dead-letter topic and keeps going, each bad line of a packed message alone', async () => {
    const root = `bad-${randomUUID().slice(0, 8)}`;
    await h.producer.send({
      topic: topics.usage,
      acks: -1,
      messages: [
        { key: root, value: '{"not":"an event"}' },
        { key: root, value: 'garbage' },
      ],
    });
    const good = makeEvent('usage.recorded', { id: `usage:${randomUUID()}`, source: 't', accountPath: [root], data: sampleUsage({ costs: ['7'] }) });
    await h.send([good]);
    // A packed message, as the proxy sends them: the good events around a bad line are applied.
    const [first, second] = [11, 13].map((cost) => makeEvent('usage.recorded', { id: `usage:${randomUUID()}`, source: 't', accountPath: [root], data: sampleUsage({ costs: [String(cost)] }) }));
    await h.producer.send({ topic: topics.usage, acks: -1, messages: [{ key: root, value: `${packEvents([first!])}\n{"broken":true}\n${packEvents([second!])}` }] });
    await h.waitFor('the valid events after and among the invalid ones', async () => (await h.redis.hget(redisKeys.account(root, root), 'spent')) === String(7 + 11 + 13));
    // Each of the two groups reads the usage topic, so each invalid event is dead-lettered twice.
    const consumer = h.kafka.consumer({ groupId: `dlq-reader-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.deadLetter, fromBeginning: true });
    const letters: { reason: string; value: string }[] = [];
    void consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key?.toString() === root) letters.push({ reason: message.headers?.reason?.toString() ?? '', value: message.value?.toString() ?? '' });
      },
    });
    try {
      await h.waitFor('6 dead letters for this root', async () => letters.length >= 6);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(letters.length, 6);
      assert.ok(letters.some((l) => /not JSON/.test(l.reason)));
      assert.ok(letters.some((l) => /id|type/.test(l.reason)));
      assert.deepEqual(letters.map((l) => l.value).sort(), ['garbage', 'garbage', '{"broken":true}', '{"broken":true}', '{"not":"an event"}', '{"not":"an event"}']);
    } finally {
      await consumer.disconnect();
    }
  });

  it('reconcile finds no drift after the above, and finds a tampered balance', async () => {
    const root = `rec-${randomUUID().slice(0, 8)}`;
    const kid = `${root}-kid`;
    const settings = { multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
    await h.send([
      makeEvent('account.created', { id: `acct:${root}`, source: 't', accountPath: [root], data: { accountId: root, parentId: null, name: 'R', ...settings } }),
      makeEvent('account.created', { id: `acct:${kid}`, source: 't', accountPath: [root, kid], data: { accountId: kid, parentId: root, name: 'K', ...settings, multiplierPpm: 2_000_000 } }),
      ...Array.from({ length: 5 }, (_, i) =>
        makeEvent('usage.recorded', { id: `usage:${root}:${i}`, source: 't', accountPath: [root, kid], data: sampleUsage({ costs: [String(1000 + i), String(2000 + 2 * i)] }) }),
      ),
      ...[[root], [root, kid], [root]].map((path, i) =>
        makeEvent('credit.granted', {
          id: `credit:${root}:${i}`,
          source: 't',
          accountPath: path,
          data: { accountId: path.at(-1) ?? root, amountNano: String(1_000_000 * (i + 1)), note: '', idempotencyKey: `k${i}`, grantedBy: 'operator' },
        }),
      ),
    ]);
    // Delivered twice: the credits table keeps one row each.
    await h.send([
      makeEvent('credit.granted', {
        id: `credit:${root}:0`,
        source: 't',
        accountPath: [root],
        data: { accountId: root, amountNano: '1000000', note: '', idempotencyKey: 'k0', grantedBy: 'operator' },
      }),
    ]);
    await h.waitFor('settled', async () => (await h.redis.hget(redisKeys.account(root, kid), 'requests')) === '5');
    await h.waitFor('line items', async () => {
      const rs = await h.clickhouse.query({ query: `SELECT count() AS n FROM line_items WHERE root_account_id = '${root}'`, format: 'JSONEachRow' });
      return (await rs.json<{ n: string }>())[0]?.n === '5';
    });
    await h.waitFor('credits', async () => {
      const rs = await h.clickhouse.query({ query: `SELECT count() AS n FROM credits WHERE root_account_id = '${root}'`, format: 'JSONEachRow' });
      return (await rs.json<{ n: string }>())[0]?.n === '3';
    });
    await h.waitFor('credits applied', async () => (await h.redis.hget(redisKeys.account(root, root), 'credited')) === '4000000');
    const clean = await reconcile(h.redis, h.clickhouse, [root, kid]);
    assert.deepEqual(
      clean.map((r) => [r.accountId, r.redisSpentNano, r.lineItemsNano, r.drift, r.creditedNano, r.creditsTableNano, r.creditDrift]),
      [
        [root, 5010n, 5010n, 0n, 4_000_000n, 4_000_000n, 0n],
        [kid, 10020n, 10020n, 0n, 2_000_000n, 2_000_000n, 0n],
      ],
    );
    await h.redis.hincrby(redisKeys.account(root, kid), 'spent', 7);
    await h.redis.hincrby(redisKeys.account(root, root), 'credited', -5);
    const tampered = await reconcile(h.redis, h.clickhouse, [root, kid]);
    assert.deepEqual(
      tampered.map((r) => [r.drift, r.creditDrift]),
      [
        [0n, -5n],
        [7n, 0n],
      ],
    );
  });
});
