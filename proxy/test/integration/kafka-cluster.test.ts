import assert from 'node:assert/strict';
import { loadProfile, startKafkaCluster, type KafkaCluster } from '@yugong/infra';
import { reconcile } from '@yugong/ledger-consumer';
import { topics } from '@yugong/schemas';
import { startStack, waitFor, type Stack } from './harness.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
/** Brokers on 29201–29203, their controllers on 29301–29303: beside the test stack's broker (29092). */
const BASE_PORT = 29201;
const DOWN_MS = 20_000;

describe('on a Kafka cluster: 3 KRaft brokers, replication factor 3, min.insync.replicas 2', function () {
  this.timeout(420_000);
  let cluster: KafkaCluster;
  let s: Stack;
  before(async () => {
    cluster = await startKafkaCluster(loadProfile('test'), { basePort: BASE_PORT, fresh: true });
    s = await startStack({ nodes: 2, kafkaBrokers: cluster.brokers, env: { YUGONG_KAFKA_REPLICATION_FACTOR: '3' } });
    // A new cluster creates its offsets topic (3 replicas) when the ledger's groups first join.
    await waitFor('the ledger to apply a first event', async () => ((await s.admin('POST', '/accounts', { id: `warm-${Date.now()}` })).status === 201 ? true : null), 120_000);
  });
  after(async () => {
    await s?.close();
    await cluster?.stop();
  });

  it('the broker leading the usage topic killed (SIGKILL) under load and back 20 s later: no client error, every request billed once', async () => {
    const { key, accountId } = await s.fundedKey({ usd: '50' });
    // The broker that leads most of the usage topic's partitions.
    const leaders = await Promise.all([0, 1, 2, 3, 4, 5].map((p) => cluster.leaderOf(topics.usage, p).catch(() => -1)));
    const victim = [1, 2, 3].sort((a, b) => leaders.filter((l) => l === b).length - leaders.filter((l) => l === a).length)[0] ?? 1;

    let stop = false;
    const statuses: number[] = [];
    const client = async (node: number) => {
      // Bounded: at most 2,000 requests a client, and it stops once the broker is back.
      for (let i = 0; i < 2000 && !stop; i++) {
        const r = await fetch(`${s.nodes[node]!.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
        await r.arrayBuffer();
        statuses.push(r.status);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    const load = Promise.all([client(0), client(1)]);
    await new Promise((r) => setTimeout(r, 3000));
    await cluster.kill(victim);
    await new Promise((r) => setTimeout(r, DOWN_MS));
    await cluster.restart(victim);
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await load;

    const served = statuses.filter((x) => x === 200).length;
    console.log(`      (broker ${victim} down for ${DOWN_MS / 1000} s: ${served} of ${statuses.length} requests served)`);
    assert.deepEqual([...new Set(statuses)], [200], 'no client saw an error while two brokers remained');
    await s.settled(accountId, served, undefined, 120_000);
    await waitFor('every request in ClickHouse', async () => ((await s.billed(accountId)).count >= served ? true : null), 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await s.billed(accountId), { count: served, distinct: served }, 'count() = uniqExact(request_id) = requests served');
    assert.equal(Number((await s.account(accountId)).requests), served, 'each usage event applied once to the balance');
    const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
    assert.deepEqual([d?.drift, d?.creditDrift], [0n, 0n], 'reconcile: no drift');
  });
});
