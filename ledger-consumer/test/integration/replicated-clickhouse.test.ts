import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import { loadProfile, startClickHouseCluster, waitFor, type ClickHouseCluster } from '@yugong/infra';
import { LINE_ITEMS_FEED, makeEvent, migrate, migrations, type YugongEvent } from '@yugong/schemas';
import { sampleUsage } from '@yugong/schemas/testing';
import { createReplicaSet } from '../../src/line-items/replicas.js';
import { createLineItemSink } from '../../src/line-items/sink.js';
import { createMetrics } from '../../src/metrics.js';

/** ZooKeeper on 28201; the replicas' HTTP ports 28211–28212 (native 28221–, interserver 28231–). */
const BASE_PORT = 28201;
const CLUSTER = 'yugong';

/**
 * Two ClickHouse 18.16 replicas of one shard on ZooKeeper: the migrations make the replicated
 * tables through either replica, and the sink's writes stay exactly once when a write is made
 * again on the other replica, including the case where the first replica stored the rows but
 * the second has not fetched them.
 */
describe('line items on two replicated ClickHouse servers (ZooKeeper)', function () {
  this.timeout(240_000);
  const database = `yg_repl_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const root = `repl-${randomUUID().slice(0, 8)}`;
  let cluster: ClickHouseCluster;
  let replicas: ClickHouseClient[];
  let n = 0;
  const usage = (count: number): YugongEvent[] =>
    Array.from({ length: count }, () => {
      n++;
      return makeEvent('usage.recorded', { id: `usage:${root}:${n}`, source: 't', accountPath: [root], data: sampleUsage({ requestId: randomUUID(), costs: [String(1000 + n)] }) });
    });
  const totals = async (ch: ClickHouseClient) => {
    const [row] = await (
      await ch.query({
        query: `SELECT toString(count()) AS n, toString(uniqExact(event_id)) AS u, toString(sum(cost_nano)) AS cost,
        (SELECT toString(sum(cost_nano)) FROM usage_daily WHERE account_id = '${root}') AS daily,
        (SELECT toString(sum(requests)) FROM usage_hourly WHERE account_id = '${root}') AS hourly
        FROM line_items WHERE root_account_id = '${root}'`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string; u: string; cost: string; daily: string; hourly: string }>();
    return row;
  };
  const expected = () => {
    const cost = Array.from({ length: n }, (_, i) => 1001 + i).reduce((a, b) => a + b, 0);
    return { n: String(n), u: String(n), cost: String(cost), daily: String(cost), hourly: String(n) };
  };
  const bothHold = (what: string) =>
    waitFor(
      what,
      async () => {
        const [a, b] = await Promise.all(replicas.map(totals));
        return JSON.stringify(a) === JSON.stringify(expected()) && JSON.stringify(b) === JSON.stringify(expected()) ? true : null;
      },
      60_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await Promise.all(replicas.map(totals)))} against ${JSON.stringify(expected())}`);
    });

  before(async () => {
    cluster = await startClickHouseCluster(loadProfile('test'), { basePort: BASE_PORT, name: CLUSTER, fresh: true });
    const admin = createClient({ url: cluster.urls[0] });
    await admin.command({ query: `CREATE DATABASE ${database} ON CLUSTER ${CLUSTER}` });
    await admin.close();
    // The client logs each refused connection; the sink's failover is what is under test.
    replicas = cluster.urls.map((url) => createClient({ url, database, log: { level: ClickHouseLogLevel.OFF } }));
  });
  after(async () => {
    await Promise.all((replicas ?? []).map((r) => r.close()));
    await cluster?.stop();
  });

  it('the migrations make every table on both replicas, replicated, once', async () => {
    const first = await migrate(replicas[0]!, migrations, { cluster: CLUSTER });
    assert.deepEqual(
      first.applied,
      migrations.map((m) => m.id),
    );
    const second = await migrate(replicas[1]!, migrations, { cluster: CLUSTER });
    assert.deepEqual([second.applied, second.alreadyApplied], [[], migrations.map((m) => m.id)], 'the other replica sees them applied');
    const engines = async (ch: ClickHouseClient) =>
      (
        await (await ch.query({ query: 'SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name', format: 'JSONEachRow' })).json<{ name: string; engine: string }>()
      ).map((t) => `${t.name} ${t.engine}`);
    const [a, b] = await Promise.all(replicas.map(engines));
    assert.deepEqual(a, b);
    // Every table replicated but the Null table that feeds the rollups' views (it keeps nothing).
    assert.ok(a!.includes(`${LINE_ITEMS_FEED} Null`));
    for (const t of a!.filter((x) => !x.startsWith(`${LINE_ITEMS_FEED} `))) assert.match(t, / (Replicated\w*MergeTree|MaterializedView)$/, t);
    assert.ok(a!.includes('line_items ReplicatedReplacingMergeTree'));
  });

  it('a batch written through one replica reaches the other, rollups included', async () => {
    const sink = createLineItemSink(createReplicaSet(replicas, pino({ level: 'silent' })), createMetrics(), { feed: true });
    await sink.write(usage(50));
    await bothHold('both replicas to hold the batch');
  });

  it('a batch stored on one replica and written again on the other, which has not fetched it, is stored once', async () => {
    const batch = usage(40);
    await replicas[1]!.command({ query: 'SYSTEM STOP FETCHES line_items' });
    try {
      await createLineItemSink(createReplicaSet([replicas[0]!], pino({ level: 'silent' })), createMetrics(), { feed: true }).write(batch);
      // The first replica answered, then (as far as the sink knows) failed: the same events go to the second.
      assert.equal((await totals(replicas[1]!))?.n, String(n - 40), 'the second replica has not fetched the batch');
      await createLineItemSink(createReplicaSet([replicas[1]!], pino({ level: 'silent' })), createMetrics(), { feed: true }).write(batch);
    } finally {
      await replicas[1]!.command({ query: 'SYSTEM START FETCHES line_items' });
    }
    await bothHold('both replicas to hold each row once');
  });

  /** A replica's client that fails the feed's insert: before it is stored, or after (the answer lost). */
  const dyingAtFeed = (ch: ClickHouseClient, stored: boolean) =>
    new Proxy(ch, {
      get(target, prop, receiver) {
        if (prop !== 'insert') return Reflect.get(target, prop, receiver);
        return async (params: Parameters<ClickHouseClient['insert']>[0]) => {
          if (params.table !== LINE_ITEMS_FEED) return target.insert(params);
          if (stored) await target.insert(params);
          throw new Error('socket hang up');
        };
      },
    });

  for (const stored of [false, true]) {
    it(`a replica that stored line_items and died ${stored ? 'as it stored the rollups' : 'before the rollups'}: the next replica makes the rollups whole, once`, async () => {
      const sink = createLineItemSink(createReplicaSet([dyingAtFeed(replicas[0]!, stored), replicas[1]!], pino({ level: 'silent' })), createMetrics(), { feed: true });
      await sink.write(usage(25));
      await bothHold('rollups equal to the line items on both replicas');
    });
  }

  it('two batches that sum alike (one request each, same key, model, cost and hour) are both counted', async () => {
    const alike = `${root}-alike`;
    const sink = createLineItemSink(createReplicaSet(replicas, pino({ level: 'silent' })), createMetrics(), { feed: true });
    const time = new Date();
    for (let i = 0; i < 3; i++) {
      await sink.write([makeEvent('usage.recorded', { id: `usage:${alike}:${i}`, source: 't', accountPath: [alike], time, data: sampleUsage({ requestId: randomUUID(), costs: ['5000'] }) })]);
    }
    await waitFor(
      'three requests in every rollup',
      async () => {
        const [row] = await (
          await replicas[1]!.query({
            query: `SELECT toString(sum(requests)) AS hourly, (SELECT toString(sum(requests)) FROM usage_daily WHERE account_id = '${alike}') AS daily,
          (SELECT toString(sumMerge(requests_state)) FROM latency_hourly WHERE account_id = '${alike}') AS latency FROM usage_hourly WHERE account_id = '${alike}'`,
            format: 'JSONEachRow',
          })
        ).json<Record<string, string>>();
        return row?.hourly === '3' && row.daily === '3' && row.latency === '3' ? true : null;
      },
      30_000,
    );
  });

  it('with one replica killed, the sink writes through the other; the dead one catches up when back', async () => {
    const sink = createLineItemSink(createReplicaSet(replicas, pino({ level: 'silent' })), createMetrics(), { feed: true });
    await cluster.kill(0);
    await sink.write(usage(30));
    await sink.write(usage(30));
    const survivor = await totals(replicas[1]!);
    assert.equal(survivor?.n, String(n), 'the survivor took every write');
    await cluster.restart(0);
    await bothHold('the restarted replica to catch up');
  });
});
