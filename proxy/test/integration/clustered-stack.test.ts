import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProfile, startClickHouseCluster, startKafkaCluster, startRedisCluster, type ClickHouseCluster, type KafkaCluster, type RedisCluster } from '@yugong/infra';
import { reconcile } from '@yugong/ledger-consumer';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { formatUsd, sqlString, topics } from '@yugong/schemas';
import { freePort, startStack, waitFor, type Stack } from './harness.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
/**
 * Six Redis nodes on 26401–26406, three brokers on 29201–29203 (controllers 29301–29303),
 * ZooKeeper on 28201 and two ClickHouse replicas on 28211–28212 (HTTP), beside the test stack's servers.
 */
const REDIS_BASE_PORT = 26401;
const KAFKA_BASE_PORT = 29201;
const CLICKHOUSE_BASE_PORT = 28201;
const DOWN_MS = 20_000;
const CLICKHOUSE_DOWN_MS = 60_000;
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const post = async (url: string, key: string) => {
  try {
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
    const json = (await r.json()) as { error?: { code: string | null } };
    return { status: r.status, code: json.error?.code ?? null, requestId: r.headers.get('x-request-id') };
  } catch {
    return { status: 0, code: 'connection', requestId: null };
  }
};

/**
 * The clustered stack: a Redis Cluster of 3 primaries with a replica each (every hold, lease
 * and ledger batch confirmed by a replica), 3 KRaft brokers (topics with 3 replicas,
 * min.insync.replicas 2), two ClickHouse replicas on ZooKeeper, two proxy nodes and two
 * ledger processes; each fault under load, each ending with every served request billed
 * once and no drift.
 */
describe('on the clustered stack: a Redis Cluster, 3 Kafka brokers and 2 ClickHouse replicas', function () {
  this.timeout(420_000);
  let redisCluster: RedisCluster;
  let kafkaCluster: KafkaCluster;
  let clickhouseCluster: ClickHouseCluster;
  let s: Stack;
  const processes: { port: number; child: ChildProcess | null }[] = [];
  before(async () => {
    const profile = loadProfile('test');
    redisCluster = await startRedisCluster(profile, { basePort: REDIS_BASE_PORT, fresh: true });
    kafkaCluster = await startKafkaCluster(profile, { basePort: KAFKA_BASE_PORT, fresh: true });
    clickhouseCluster = await startClickHouseCluster(profile, { basePort: CLICKHOUSE_BASE_PORT, fresh: true });
    s = await startStack({
      nodes: 2,
      redisUrl: redisCluster.url,
      kafkaBrokers: kafkaCluster.brokers,
      clickhouse: { urls: clickhouseCluster.urls, cluster: clickhouseCluster.name },
      ledgerProcesses: 2,
      env: { YUGONG_REDIS_REPLICAS: '1', YUGONG_KAFKA_REPLICATION_FACTOR: '3' },
    });
    // A new cluster creates its offsets topic (3 replicas) when the ledger's groups first join.
    await waitFor('the ledger to apply a first event', async () => ((await s.admin('POST', '/accounts', { id: `warm-${Date.now()}` })).status === 201 ? true : null), 120_000);
    for (let i = 0; i < 2; i++) processes.push({ port: await freePort(), child: null });
  });
  after(async () => {
    for (const p of processes) p.child?.kill('SIGKILL');
    try {
      await s?.close();
    } finally {
      await redisCluster?.stop();
      await kafkaCluster?.stop();
      await clickhouseCluster?.stop();
    }
  });

  const noDrift = (accountId: string) =>
    waitFor(
      `reconcile of ${accountId} without drift`,
      async () => {
        const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
        return d && d.drift === 0n && d.creditDrift === 0n ? d : null;
      },
      30_000,
    );

  it("serves, bills each request once and reconciles, with sub-accounts and leases across the cluster's slots", async () => {
    const parents = await Promise.all([1, 2, 3].map(() => s.fundedKey({ usd: '20' })));
    for (const p of parents) {
      const sub = await s.admin('POST', '/accounts', { id: `${p.accountId}-sub`, parent_id: p.accountId, credit_limit_usd: '5' });
      assert.equal(sub.status, 201, JSON.stringify(sub.json));
    }
    const answers = await Promise.all(parents.flatMap((p) => Array.from({ length: 10 }, (_, i) => post(s.nodes[i % 2]!.url, p.key))));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    for (const p of parents) {
      await s.settled(p.accountId, 10);
      await waitFor(`line items of ${p.accountId}`, async () => ((await s.billed(p.accountId)).count >= 10 ? true : null), 30_000);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await s.billed(p.accountId), { count: 10, distinct: 10 });
      await noDrift(p.accountId);
    }
  });

  it('no overdraft: funds for 10 requests, 200 concurrent through two nodes', async () => {
    const probe = await s.fundedKey();
    assert.equal((await post(s.url, probe.key)).status, 200);
    const cost = BigInt((await s.settled(probe.accountId, 1)).spent ?? '0');
    const race = await s.fundedKey({ usd: formatUsd(cost * 10n) });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(s.nodes[i % 2]!.url, race.key)));
    const admitted = answers.filter((a) => a.status === 200).length;
    // Refused: told to wait while admitted ones hold the rest, or no once they settled and it is gone.
    assert.equal(admitted + answers.filter((a) => a.code === 'insufficient_quota' || a.code === 'rate_limit_exceeded').length, 200);
    assert.ok(admitted >= 1 && admitted <= 10, `admitted ${admitted}`);
    const h = await s.settled(race.accountId, admitted);
    assert.ok(BigInt(h.credited ?? '0') >= BigInt(h.spent ?? '0'), `overdrawn: ${h.spent} spent of ${h.credited}`);
  });

  it('a primary killed under load fails over to its replica: nothing lost, nothing applied twice, no overdraft', async () => {
    const race = await s.fundedKey({ usd: '0' });
    // The race account's tree lives on the primary that is killed, funded for about 10 requests.
    const probe = await s.fundedKey();
    assert.equal((await post(s.url, probe.key)).status, 200);
    const cost = BigInt((await s.settled(probe.accountId, 1)).spent ?? '0');
    assert.equal((await s.admin('POST', `/accounts/${race.accountId}/credits`, { amount_usd: formatUsd(cost * 10n), idempotency_key: randomUUID() })).status, 201);
    const victim = await redisCluster.primaryOf(redisCluster.slotOf(`{${race.accountId}}`));
    // The steady load's account on the same primary (a third of new accounts are).
    let steady = await s.fundedKey({ usd: '50' });
    for (let i = 0; i < 20 && (await redisCluster.primaryOf(redisCluster.slotOf(`{${steady.accountId}}`))) !== victim; i++) steady = await s.fundedKey({ usd: '50' });
    assert.equal(await redisCluster.primaryOf(redisCluster.slotOf(`{${steady.accountId}}`)), victim);

    // Two clients, one per node, 4 requests at a time until the race is over (at most 1,000 each).
    let sent = 0;
    let stop = false;
    const client = async (node: number) => {
      const out: Awaited<ReturnType<typeof post>>[] = [];
      while (!stop && out.length < 1000) {
        out.push(...(await Promise.all(Array.from({ length: 4 }, () => post(s.nodes[node]!.url, steady.key)))));
        sent += 4;
      }
      return out;
    };
    const load = Promise.all([client(0), client(1)]);
    await waitFor('load under way', async () => (sent >= 80 ? true : null), 60_000);
    // The race runs across the failover: half its burst as the primary dies, half once its
    // replica has taken over and the old primary is back as the new one's replica (until then
    // no replica can confirm a write to that shard, so none is admitted: fail closed).
    const burst = () => Promise.all(Array.from({ length: 100 }, (_, i) => post(s.nodes[i % 2]!.url, race.key)));
    const before = burst();
    await new Promise((r) => setTimeout(r, 100));
    await redisCluster.kill(victim);
    await redisCluster.settled(60_000);
    const afterFailover = await redisCluster.primaryOf(redisCluster.slotOf(`{${race.accountId}}`));
    assert.notEqual(afterFailover, victim, 'the replica took over');
    await redisCluster.restart(victim);
    await redisCluster.settled(60_000);
    const raceAnswers = [...(await before), ...(await burst())];
    stop = true;
    const steadyAnswers = (await load).flat();

    const served = steadyAnswers.filter((a) => a.status === 200).length;
    console.log(
      `      (killed the primary on ${victim}: ${served} of ${steadyAnswers.length} steady requests served, ${raceAnswers.filter((a) => a.status === 200).length} of 200 racing ones admitted; ${[...new Set(raceAnswers.map((a) => `${a.status} ${a.code}`))].join(', ')})`,
    );
    assert.ok(served > 0);
    // Every answer the clients saw as served is billed once, and nothing else.
    await waitFor('every served request billed', async () => ((await s.billed(steady.accountId)).count >= served ? true : null), 60_000);
    assert.deepEqual(await s.billed(steady.accountId), { count: served, distinct: served });
    await s.settled(steady.accountId, served, undefined, 60_000);
    await noDrift(steady.accountId);

    const admitted = raceAnswers.filter((a) => a.status === 200).length;
    // Some are admitted once the replica is back: the race ran on both sides of the failover.
    assert.ok(admitted >= 1 && admitted <= 10, `admitted ${admitted} with funds for 10`);
    const h = await s.settled(race.accountId, admitted, undefined, 60_000);
    assert.ok(BigInt(h.credited ?? '0') >= BigInt(h.spent ?? '0'), `overdrawn across the failover: ${h.spent} spent of ${h.credited}`);
    await noDrift(race.accountId);
  });

  /** Two clients, one per node, a request at a time 20 ms apart (at most 2,000 each), until stopped; the statuses they saw. */
  /** Two clients, one through each node, taking the keys in turn. */
  const steadyLoad = (...keys: string[]) => {
    let stopped = false;
    const statuses: number[] = [];
    const servedByKey = new Map(keys.map((k) => [k, 0]));
    const client = async (node: number) => {
      for (let i = 0; i < 2000 && !stopped; i++) {
        const key = keys[(i * 2 + node) % keys.length] ?? '';
        const r = await fetch(`${s.nodes[node]!.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
        await r.arrayBuffer();
        statuses.push(r.status);
        if (r.status === 200) servedByKey.set(key, (servedByKey.get(key) ?? 0) + 1);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    const running = Promise.all([client(0), client(1)]);
    return {
      sent: () => statuses.length,
      served: (key: string) => servedByKey.get(key) ?? 0,
      async stop() {
        stopped = true;
        await running;
        return statuses;
      },
    };
  };

  /** Every request the clients saw served is one line item and one settlement, and reconcile finds no drift. */
  const billedOnce = async (accountId: string, served: number) => {
    await s.settled(accountId, served, undefined, 120_000);
    await waitFor('every request in ClickHouse', async () => ((await s.billed(accountId)).count >= served ? true : null), 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await s.billed(accountId), { count: served, distinct: served }, 'count() = uniqExact(request_id) = requests served');
    assert.equal(Number((await s.account(accountId)).requests), served, 'each usage event applied once to the balance');
    const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
    assert.deepEqual([d?.drift, d?.creditDrift], [0n, 0n], 'reconcile: no drift');
  };

  it('the broker leading the usage topic killed (SIGKILL) under load and back 20 s later: no client error, every request billed once', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '50' });
    // The broker that leads most of the usage topic's partitions.
    const leaders = await Promise.all([0, 1, 2, 3, 4, 5].map((p) => kafkaCluster.leaderOf(topics.usage, p).catch(() => -1)));
    const victim = [1, 2, 3].sort((a, b) => leaders.filter((l) => l === b).length - leaders.filter((l) => l === a).length)[0] ?? 1;

    const load = steadyLoad(key);
    await new Promise((r) => setTimeout(r, 3000));
    await kafkaCluster.kill(victim);
    await new Promise((r) => setTimeout(r, DOWN_MS));
    await kafkaCluster.restart(victim);
    await new Promise((r) => setTimeout(r, 3000));
    const statuses = await load.stop();

    const served = statuses.filter((x) => x === 200).length;
    console.log(`      (broker ${victim} down for ${DOWN_MS / 1000} s: ${served} of ${statuses.length} requests served)`);
    assert.deepEqual([...new Set(statuses)], [200], 'no client saw an error while two brokers remained');
    await billedOnce(accountId, served);
  });

  it('a ClickHouse replica killed (SIGKILL) under load for 60 s: line items keep arriving through the other; the dead one catches up; rollups equal raw sums', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '50' });
    const [first, second] = clickhouseCluster.urls.map((url) => createClient({ url, database: s.database, log: { level: ClickHouseLogLevel.OFF } }));
    const totals = async (ch: ClickHouseClient) => {
      const [row] = await (
        await ch.query({
          query: `SELECT toString(count()) AS n, toString(sum(costs_nano[1])) AS cost,
          (SELECT toString(sum(requests)) FROM usage_hourly WHERE account_id = ${sqlString(accountId)}) AS hourly_requests,
          (SELECT toString(sum(cost_nano)) FROM usage_daily WHERE account_id = ${sqlString(accountId)}) AS daily_cost
          FROM line_items WHERE root_account_id = ${sqlString(accountId)}`,
          format: 'JSONEachRow',
        })
      ).json<{ n: string; cost: string; hourly_requests: string; daily_cost: string }>();
      return row;
    };
    try {
      const load = steadyLoad(key);
      await waitFor('line items arriving', async () => (Number((await totals(second!))?.n) > 0 ? true : null), 30_000);
      // The ledger writes to the first replica while it answers: that one dies.
      await clickhouseCluster.kill(0);
      const atKill = Number((await totals(second!))?.n);
      await new Promise((r) => setTimeout(r, CLICKHOUSE_DOWN_MS / 2));
      const midway = Number((await totals(second!))?.n);
      await new Promise((r) => setTimeout(r, CLICKHOUSE_DOWN_MS / 2));
      const beforeRestart = Number((await totals(second!))?.n);
      await clickhouseCluster.restart(0);
      await new Promise((r) => setTimeout(r, 2000));
      const statuses = await load.stop();

      const served = statuses.filter((x) => x === 200).length;
      console.log(
        `      (replica 1 down for ${CLICKHOUSE_DOWN_MS / 1000} s: ${served} of ${statuses.length} requests served; line items on replica 2: ${atKill} at the kill, ${midway} 30 s later, ${beforeRestart} at the restart)`,
      );
      assert.deepEqual([...new Set(statuses)], [200], 'no client saw an error');
      assert.ok(midway > atKill && beforeRestart > midway, 'line items kept arriving through the other replica');
      await billedOnce(accountId, served);
      const caughtUp = await waitFor(
        'the restarted replica to catch up',
        async () => {
          const [a, b] = await Promise.all([totals(first!), totals(second!)]);
          return JSON.stringify(a) === JSON.stringify(b) ? a : null;
        },
        120_000,
      );
      assert.deepEqual(caughtUp, { n: String(served), cost: caughtUp?.cost, hourly_requests: String(served), daily_cost: caughtUp?.cost }, 'totals equal on both; rollups equal raw sums');
    } finally {
      await Promise.all([first?.close(), second?.close()]);
    }
  });

  it('a ledger process killed mid-batch (SIGKILL after applying, before committing): the other takes its partitions, nothing applied twice', async () => {
    // An account's events share one partition: twelve accounts give both processes work
    // (all twelve in one process's half of the partitions: 1 chance in 2,048).
    const accounts = await Promise.all(Array.from({ length: 12 }, () => s.fundedKey({ usd: '50' })));
    const [, victim] = s.ledgers;
    // Started again with the crash tests' hook: it dies at its 40th applied chunk under the load.
    await victim!.kill();
    await victim!.start({ YUGONG_FAULT_KILL_AT: 'handled:40' });
    const load = steadyLoad(...accounts.map((a) => a.key));
    const died = await Promise.race([victim!.exited().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 60_000))]);
    const atDeath = load.sent();
    // The survivor takes the dead member's partitions once its session (6 s) times out.
    await new Promise((r) => setTimeout(r, 10_000));
    const statuses = await load.stop();
    await victim!.start();

    const served = statuses.filter((x) => x === 200).length;
    console.log(`      (ledger process killed itself after ${atDeath} requests; ${served} of ${statuses.length} served over ${accounts.length} accounts)`);
    assert.ok(died, 'the ledger process was killed mid-batch');
    assert.deepEqual([...new Set(statuses)], [200]);
    for (const a of accounts) await billedOnce(a.accountId, load.served(a.key));
  });

  const start = async (i: number) => {
    const n = processes[i]!;
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        ...s.nodes[0]!.env,
        YUGONG_PROXY_PORT: String(n.port),
        YUGONG_NODE_ID: `rolling-${i}-${process.pid}-${Date.now()}`,
        YUGONG_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'yg-rolling-')),
        YUGONG_SHUTDOWN_GRACE_MS: '10000',
        YUGONG_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    n.child = child;
    await waitFor(
      `node ${i} ready`,
      async () =>
        (await fetch(`http://127.0.0.1:${n.port}/readyz`).then(
          (r) => r.status,
          () => 0,
        )) === 200
          ? true
          : null,
      30_000,
    );
  };
  const stop = async (i: number) => {
    const child = processes[i]!.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    processes[i]!.child = null;
  };

  it('no request fails that had not started streaming, and every answered request is billed once', async () => {
    await start(0);
    await start(1);
    const { key, accountId } = await s.fundedKey({ usd: '50' });
    let next = 0;
    const outcomes = { ok: 0, streamed: 0, failed: [] as string[], retried: 0 };
    const once = async (stream: boolean): Promise<void> => {
      // Round robin for the first attempt; each retry goes to the other node (with two clients
      // sharing the counter, taking the next turn could send every retry to the node that is down).
      const first = next++;
      for (let attempt = 0; attempt < 4; attempt++) {
        const port = processes[(first + attempt) % 2]!.port;
        let r: Response;
        try {
          r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, stream, messages: [{ role: 'user', content: 'hello' }] }),
          });
        } catch {
          outcomes.retried++;
          continue;
        }
        const text = await r.text().catch((err: Error) => `cut: ${err.message}`);
        if (r.status === 503 && text.includes('shutting_down')) {
          outcomes.retried++;
          continue;
        }
        if (r.status !== 200) return void outcomes.failed.push(`${r.status} ${text.slice(0, 200)}`);
        if (stream && !text.trimEnd().endsWith('data: [DONE]')) return void outcomes.failed.push(`stream cut: ${text.slice(-200)}`);
        if (stream) outcomes.streamed++;
        else outcomes.ok++;
        return;
      }
      outcomes.failed.push('no node took it in 4 attempts');
    };
    let running = true;
    const client = async (stream: boolean) => {
      for (let i = 0; running && i < 3000; i++) await once(stream);
    };
    const load = Promise.all([client(false), client(true)]);
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of [0, 1]) {
      await stop(i);
      await new Promise((r) => setTimeout(r, 1000));
      await start(i);
      await new Promise((r) => setTimeout(r, 2000));
    }
    running = false;
    await load;

    const answered = outcomes.ok + outcomes.streamed;
    console.log(`      (${outcomes.ok} answers and ${outcomes.streamed} streams through two restarts, ${outcomes.retried} sent again to the other node)`);
    assert.deepEqual(outcomes.failed, [], 'failed requests');
    assert.ok(outcomes.retried > 0, 'the restarts happened under load');
    await s.settled(accountId, answered, undefined, 60_000);
    await waitFor('every answer in ClickHouse', async () => ((await s.billed(accountId)).count >= answered ? true : null), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await s.billed(accountId), { count: answered, distinct: answered }, 'count() = uniqExact(request_id) = answers');
    assert.equal(Number((await s.account(accountId)).requests), answered);
    const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
    assert.deepEqual([d?.drift, d?.creditDrift], [0n, 0n]);
  });
});
