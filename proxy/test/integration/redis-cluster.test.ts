import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadProfile, startRedisCluster, type RedisCluster } from '@yugong/infra';
import { reconcile } from '@yugong/ledger-consumer';
import { formatUsd } from '@yugong/schemas';
import { startStack, waitFor, type Stack } from './harness.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hello' }] });
/** Ports of the six nodes: beside the test stack's single Redis (26379). */
const BASE_PORT = 26401;

const post = async (url: string, key: string) => {
  try {
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
    const json = (await r.json()) as { error?: { code: string | null } };
    return { status: r.status, code: json.error?.code ?? null, requestId: r.headers.get('x-request-id') };
  } catch {
    return { status: 0, code: 'connection', requestId: null };
  }
};

describe('on a Redis Cluster: 3 primaries with a replica each, writes confirmed by a replica', function () {
  this.timeout(300_000);
  let cluster: RedisCluster;
  let s: Stack;
  before(async () => {
    cluster = await startRedisCluster(loadProfile('test'), { basePort: BASE_PORT, fresh: true });
    s = await startStack({ nodes: 2, redisUrl: cluster.url, env: { YUGONG_REDIS_REPLICAS: '1' } });
  });
  after(async () => {
    await s?.close();
    await cluster?.stop();
  });

  const noDrift = (accountId: string) => waitFor(`reconcile of ${accountId} without drift`, async () => {
    const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
    return d && d.drift === 0n && d.creditDrift === 0n ? d : null;
  }, 30_000);

  it('serves, bills each request once and reconciles, with sub-accounts and leases across the cluster\'s slots', async () => {
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
    assert.equal(admitted + answers.filter((a) => a.code === 'insufficient_quota').length, 200);
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
    const victim = await cluster.primaryOf(cluster.slotOf(`{${race.accountId}}`));
    // The steady load's account on the same primary (a third of new accounts are).
    let steady = await s.fundedKey({ usd: '50' });
    for (let i = 0; i < 20 && (await cluster.primaryOf(cluster.slotOf(`{${steady.accountId}}`))) !== victim; i++) steady = await s.fundedKey({ usd: '50' });
    assert.equal(await cluster.primaryOf(cluster.slotOf(`{${steady.accountId}}`)), victim);

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
    await cluster.kill(victim);
    await cluster.settled(60_000);
    const afterFailover = await cluster.primaryOf(cluster.slotOf(`{${race.accountId}}`));
    assert.notEqual(afterFailover, victim, 'the replica took over');
    await cluster.restart(victim);
    await cluster.settled(60_000);
    const raceAnswers = [...(await before), ...(await burst())];
    stop = true;
    const steadyAnswers = (await load).flat();

    const served = steadyAnswers.filter((a) => a.status === 200).length;
    console.log(`      (killed the primary on ${victim}: ${served} of ${steadyAnswers.length} steady requests served, ${raceAnswers.filter((a) => a.status === 200).length} of 200 racing ones admitted; ${[...new Set(raceAnswers.map((a) => `${a.status} ${a.code}`))].join(', ')})`);
    assert.ok(served > 0);
    // Every answer the clients saw as served is billed once, and nothing else.
    await waitFor('every served request billed', async () => ((await s.billed(steady.accountId)).count >= served ? true : null), 60_000);
    assert.deepEqual(await s.billed(steady.accountId), { count: served, distinct: served });
    await s.settled(steady.accountId, served, undefined, 60_000);
    await noDrift(steady.accountId);

    const admitted = raceAnswers.filter((a) => a.status === 200).length;
    assert.ok(admitted <= 10, `admitted ${admitted} with funds for 10`);
    const h = await s.settled(race.accountId, admitted, undefined, 60_000);
    assert.ok(BigInt(h.credited ?? '0') >= BigInt(h.spent ?? '0'), `overdrawn across the failover: ${h.spent} spent of ${h.credited}`);
    await noDrift(race.accountId);
  });
});
