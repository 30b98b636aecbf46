import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { sampleUsage } from '@yugong/schemas/testing';
import { endpointsFromEnv, endpointsToEnv, waitFor } from '@yugong/infra';
import { ensureTopics, makeEvent, partitionKeyFor, redisKeys, topicFor, type YugongEvent } from '@yugong/schemas';
import type { FaultPoint } from '../../src/consumer-loop.js';
import { reconcile } from '../../src/reconcile.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/**
 * The ledger as its own process, killed with SIGKILL by its own hook at each point of the
 * apply/commit sequence, again and again while events keep arriving; then a clean run. No
 * event may be applied twice or lost, in Redis or in ClickHouse.
 */
describe('ledger killed (SIGKILL) at every point of the apply/commit sequence', function () {
  this.timeout(300_000);
  const uid = randomUUID().replace(/-/g, '').slice(0, 10);
  const database = `yg_crash_${uid}`;
  const root = `crash-${uid}`;
  const kid = `${root}-kid`;
  let env: NodeJS.ProcessEnv;
  let redis: Redis;
  let ch: ClickHouseClient;
  let producer: Producer;
  let kafka: Kafka;
  const children = new Set<ChildProcess>();

  const start = (killAt?: string) => {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        ...env,
        YUGONG_CLICKHOUSE_DATABASE: database,
        YUGONG_GROUP_SUFFIX: `-crash-${uid}`,
        YUGONG_LEDGER_PORT: '0',
        YUGONG_LOG_LEVEL: 'error',
        YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS: '50',
        YUGONG_KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKAJS_NO_PARTITIONER_WARNING: '1',
        ...(killAt ? { YUGONG_FAULT_KILL_AT: killAt } : {}),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve(signal ?? code);
      }),
    );
    return { child, exited };
  };
  const send = async (events: YugongEvent[]) => {
    for (const e of events) await producer.send({ topic: topicFor(e.type), acks: -1, messages: [{ key: partitionKeyFor(e), value: JSON.stringify(e) }] });
  };

  before(async () => {
    const endpoints = endpointsFromEnv();
    env = endpointsToEnv(endpoints);
    const server = createClient({ url: endpoints.clickhouseUrl });
    await server.command({ query: `CREATE DATABASE ${database}` });
    await server.close();
    ch = createClient({ url: endpoints.clickhouseUrl, database });
    redis = new Redis(endpoints.redisUrl);
    kafka = new Kafka({ clientId: 'crash-test', brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    // The test sends before any ledger has started (which would create the topics), so on a
    // fresh broker it creates them itself.
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin);
    await admin.disconnect();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await producer.disconnect();
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch.close();
    redis.disconnect();
  });

  it('applies every event exactly once; balances equal credits minus line items; reconcile finds no drift', async () => {
    const settings = { name: 'c', multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
    await send([
      makeEvent('account.created', { id: `account:${root}:created`, source: 't', accountPath: [root], data: { accountId: root, parentId: null, ...settings } }),
      makeEvent('account.created', { id: `account:${kid}:created`, source: 't', accountPath: [root, kid], data: { accountId: kid, parentId: root, ...settings, multiplierPpm: 1_500_000 } }),
    ]);
    // A first run catches up with the topics' history; it is killed from outside mid-way.
    const first = start();
    await waitFor('the tree to be projected', async () => (await redis.exists(redisKeys.account(root, kid))) === 1, 120_000);
    first.child.kill('SIGKILL');
    await first.exited;

    const usageEvents: YugongEvent[] = [];
    let credited = 0n;
    let n = 0;
    const points: FaultPoint[] = ['handled', 'resolved', 'committed'];
    for (let round = 0; round < 3; round++) {
      for (const point of points) {
        const batch: YugongEvent[] = [];
        for (let i = 0; i < 25; i++, n++) {
          const list = BigInt(1000 + n);
          const e =
            n % 3 === 0
              ? makeEvent('usage.recorded', { id: `usage:${root}:${n}`, source: 't', accountPath: [root], data: sampleUsage({ requestId: randomUUID(), costs: [list.toString()] }) })
              : makeEvent('usage.recorded', {
                  id: `usage:${root}:${n}`,
                  source: 't',
                  accountPath: [root, kid],
                  data: sampleUsage({ requestId: randomUUID(), costs: [list.toString(), ((list * 3n) / 2n).toString()] }),
                });
          batch.push(e);
        }
        const amount = BigInt(1_000_000 + round);
        credited += amount;
        batch.push(
          makeEvent('credit.granted', {
            id: `credit:${root}:${round}:${point}`,
            source: 't',
            accountPath: [root],
            data: { accountId: root, amountNano: amount.toString(), note: '', idempotencyKey: `${round}${point}`, grantedBy: 't' },
          }),
        );
        usageEvents.push(...batch.filter((e) => e.type === 'usage.recorded'));
        await send(batch);
        // Sent again: a producer retry after a lost acknowledgement.
        await send(batch.slice(0, 5));
        const run = start(`${point}:${1 + (round % 2)}`);
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([run.exited, new Promise((r) => (timer = setTimeout(() => r('still alive after 60 s'), 60_000)))]);
        clearTimeout(timer);
        assert.equal(outcome, 'SIGKILL', `killed itself at ${point}`);
      }
    }

    const clean = start();
    const total = usageEvents.length;
    await waitFor('every usage event in Redis', async () => Number(await redis.hget(redisKeys.account(root, root), 'requests')) >= total || null, 120_000);
    await waitFor(
      'every line item in ClickHouse',
      async () => {
        const [r] = await (await ch.query({ query: `SELECT count() AS n FROM line_items WHERE root_account_id = '${root}'`, format: 'JSONEachRow' })).json<{ n: string }>();
        return Number(r?.n) >= total || null;
      },
      120_000,
    );
    await waitFor(
      'every top-up in ClickHouse',
      async () => {
        const [r] = await (await ch.query({ query: `SELECT count() AS n FROM credits WHERE root_account_id = '${root}'`, format: 'JSONEachRow' })).json<{ n: string }>();
        return Number(r?.n) >= 9 || null;
      },
      120_000,
    );
    // Let anything that would be a second apply arrive before judging.
    await new Promise((r) => setTimeout(r, 1500));
    clean.child.kill('SIGTERM');
    await clean.exited;

    const sum = (i: number) => usageEvents.reduce((s, e) => s + (e.type === 'usage.recorded' ? BigInt(e.data.costs[i] ?? '0') : 0n), 0n);
    const rootHash = await redis.hgetall(redisKeys.account(root, root));
    const kidHash = await redis.hgetall(redisKeys.account(root, kid));
    assert.equal(Number(rootHash.requests), total, 'each usage event applied once to the root');
    assert.equal(Number(kidHash.requests), usageEvents.filter((e) => e.accountPath.length === 2).length);
    assert.equal(rootHash.spent, sum(0).toString());
    assert.equal(kidHash.spent, sum(1).toString());
    assert.equal(rootHash.credited, credited.toString(), 'each credit applied once');
    assert.equal(BigInt(rootHash.credited ?? '0') - BigInt(rootHash.spent ?? '0'), credited - sum(0), 'balance = credits − line items');

    const [li] = await (
      await ch.query({
        query: `SELECT count() AS n, uniqExact(event_id) AS u, toString(sum(costs_nano[1])) AS cost FROM line_items WHERE root_account_id = '${root}'`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string; u: string; cost: string }>();
    assert.deepEqual([Number(li?.n), Number(li?.u), li?.cost], [total, total, sum(0).toString()], 'count() = uniqExact(event_id), costs equal');
    const [rollup] = await (
      await ch.query({ query: `SELECT toString(sum(requests)) AS n, toString(sum(cost_nano)) AS cost FROM usage_daily WHERE account_id = '${root}'`, format: 'JSONEachRow' })
    ).json<{ n: string; cost: string }>();
    assert.deepEqual([Number(rollup?.n), rollup?.cost], [total, sum(0).toString()], 'rollups equal the raw sums');
    const drifts = await reconcile(redis, ch, [root, kid]);
    assert.equal(drifts.length, 2);
    assert.deepEqual(
      drifts.map((d) => d.drift),
      [0n, 0n],
      'reconcile: no drift',
    );
    assert.deepEqual(
      drifts.map((d) => d.creditDrift),
      [0n, 0n],
      'reconcile: credits in ClickHouse once each',
    );
    const [credits] = await (await ch.query({ query: `SELECT count() AS n, uniqExact(event_id) AS u FROM credits WHERE root_account_id = '${root}'`, format: 'JSONEachRow' })).json<{
      n: string;
      u: string;
    }>();
    assert.deepEqual([credits?.n, credits?.u], ['9', '9'], 'each top-up written once despite the kills');
  });

  it('two ledger processes share the groups; one killed mid-batch (SIGKILL), the other takes over its partitions and applies nothing twice', async () => {
    // Trees on several partitions, so that each process has some of them.
    const roots = Array.from({ length: 8 }, (_, i) => `${root}-pair-${i}`);
    const settings = { name: 'p', multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
    await send(roots.map((r) => makeEvent('account.created', { id: `account:${r}:created`, source: 't', accountPath: [r], data: { accountId: r, parentId: null, ...settings } })));
    const survivor = start();
    // Killed right after applying a chunk, before its offsets are committed.
    const victim = start('handled:10');
    await waitFor('the trees to be projected', async () => ((await Promise.all(roots.map((r) => redis.exists(redisKeys.account(r, r))))).every((x) => x === 1) ? true : null), 120_000);
    const sent = new Map(roots.map((r) => [r, 0n]));
    let n = 0;
    let outcome: unknown = null;
    void victim.exited.then((o) => (outcome = o));
    // Steady usage until the victim has died and some more after, so the survivor takes over mid-stream.
    for (let round = 0; round < 40 && (outcome === null || round < 30); round++) {
      const batch = roots.map((r) => {
        const cost = BigInt(500 + n++);
        sent.set(r, (sent.get(r) ?? 0n) + cost);
        return makeEvent('usage.recorded', { id: `usage:${r}:${n}`, source: 't', accountPath: [r], data: sampleUsage({ requestId: randomUUID(), costs: [cost.toString()] }) });
      });
      await send(batch);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal(await Promise.race([victim.exited, new Promise((r) => setTimeout(() => r('still alive'), 30_000))]), 'SIGKILL', 'the victim killed itself mid-batch');
    const perRoot = n / roots.length;
    await waitFor(
      'every event applied by the survivor',
      async () => {
        const counts = await Promise.all(roots.map((r) => redis.hget(redisKeys.account(r, r), 'requests')));
        return counts.every((c) => Number(c) >= perRoot) ? true : null;
      },
      120_000,
    );
    // The line-items group takes over the dead member's partitions on its own clock: wait for it
    // too before the survivor is stopped (nothing would write what it had not yet written).
    const set = roots.map((r) => `'${r}'`).join(',');
    await waitFor(
      'every line item',
      async () => {
        const [r] = await (await ch.query({ query: `SELECT count() AS n FROM line_items WHERE root_account_id IN (${set})`, format: 'JSONEachRow' })).json<{ n: string }>();
        return Number(r?.n) >= n || null;
      },
      120_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(survivor.child.exitCode, null, 'the survivor kept running');
    survivor.child.kill('SIGTERM');
    await survivor.exited;
    for (const r of roots) {
      const h = await redis.hgetall(redisKeys.account(r, r));
      assert.deepEqual([Number(h.requests), h.spent], [perRoot, sent.get(r)?.toString()], `${r}: each event applied once`);
    }
    const [li] = await (await ch.query({ query: `SELECT count() AS n, uniqExact(event_id) AS u FROM line_items WHERE root_account_id IN (${set})`, format: 'JSONEachRow' })).json<{
      n: string;
      u: string;
    }>();
    assert.deepEqual([Number(li?.n), Number(li?.u)], [n, n], 'count() = uniqExact(event_id)');
    assert.deepEqual(
      (await reconcile(redis, ch, roots)).map((d) => d.drift),
      roots.map(() => 0n),
      'reconcile: no drift',
    );
  });
});
