import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import { loadProfile, startClickHouseCluster, waitFor, type ClickHouseCluster } from '@yugong/infra';
import { makeEvent, migrate, migrations, type YugongEvent } from '@yugong/schemas';
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
  const usage = (count: number): YugongEvent[] => Array.from({ length: count }, () => {
    n++;
    return makeEvent('usage.recorded', { id: `usage:${root}:${n}`, source: 't', accountPath: [root], data: sampleUsage({ requestId: randomUUID(), costs: [String(1000 + n)] }) });
  });
  const totals = async (ch: ClickHouseClient) => {
    const [row] = await (await ch.query({
      query: `SELECT toString(count()) AS n, toString(uniqExact(event_id)) AS u, toString(sum(cost_nano)) AS cost,
        (SELECT toString(sum(cost_nano)) FROM usage_daily WHERE account_id = '${root}') AS daily,
        (SELECT toString(sum(requests)) FROM usage_hourly WHERE account_id = '${root}') AS hourly
        FROM line_items WHERE root_account_id = '${root}'`,
      format: 'JSONEachRow',
    })).json<{ n: string; u: string; cost: string; daily: string; hourly: string }>();
    return row;
  };
  const expected = () => {
    const cost = Array.from({ length: n }, (_, i) => 1001 + i).reduce((a, b) => a + b, 0);
    return { n: String(n), u: String(n), cost: String(cost), daily: String(cost), hourly: String(n) };
  };
  const bothHold = (what: string) => waitFor(what, async () => {
    const [a, b] = await Promise.all(replicas.map(totals));
    return JSON.stringify(a) === JSON.stringify(expected()) && JSON.stringify(b) === JSON.stringify(expected()) ? true : null;
  }, 60_000).catch(async (err: Error) => {
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
    assert.deepEqual(first.applied, migrations.map((m) => m.id));
    const second = await migrate(replicas[1]!, migrations, { cluster: CLUSTER });
    assert.deepEqual([second.applied, second.alreadyApplied], [[], migrations.map((m) => m.id)], 'the other replica sees them applied');
    const engines = async (ch: ClickHouseClient) => (await (await ch.query({ query: 'SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name', format: 'JSONEachRow' })).json<{ name: string; engine: string }>()).map((t) => `${t.name} ${t.engine}`);
    const [a, b] = await Promise.all(replicas.map(engines));
    assert.deepEqual(a, b);
    for (const t of a!) assert.match(t, / (Replicated\w*MergeTree|MaterializedView)$/, t);
    assert.ok(a!.includes('line_items ReplicatedReplacingMergeTree'));
  });

  it('a batch written through one replica reaches the other, rollups included', async () => {
    const sink = createLineItemSink(createReplicaSet(replicas, pino({ level: 'silent' })), createMetrics());
    await sink.write(usage(50));
    await bothHold('both replicas to hold the batch');
  });

  it('a batch stored on one replica and written again on the other, which has not fetched it, is stored once', async () => {
    const batch = usage(40);
    await replicas[1]!.command({ query: 'SYSTEM STOP FETCHES line_items' });
    try {
      await createLineItemSink(createReplicaSet([replicas[0]!], pino({ level: 'silent' })), createMetrics()).write(batch);
      // The first replica answered, then (as far as the sink knows) failed: the same events go to the second.
      assert.equal((await totals(replicas[1]!))?.n, String(n - 40), 'the second replica has not fetched the batch');
      await createLineItemSink(createReplicaSet([replicas[1]!], pino({ level: 'silent' })), createMetrics()).write(batch);
    } finally {
      await replicas[1]!.command({ query: 'SYSTEM START FETCHES line_items' });
    }
    await bothHold('both replicas to hold each row once');
  });

  it('with one replica killed, the sink writes through the other; the dead one catches up when back', async () => {
    const sink = createLineItemSink(createReplicaSet(replicas, pino({ level: 'silent' })), createMetrics());
    await cluster.kill(0);
    await sink.write(usage(30));
    await sink.write(usage(30));
    const survivor = await totals(replicas[1]!);
    assert.equal(survivor?.n, String(n), 'the survivor took every write');
    await cluster.restart(0);
    await bothHold('the restarted replica to catch up');
  });
});
