/**
 * Ledger benchmark on the real Kafka, Redis and ClickHouse of the test stack:
 *  1. apply rate: 200,000 usage events (1,000 accounts in 250 trees, a quarter with a
 *     sub-account path) waiting in Kafka, applied by each consumer group, first apply to last;
 *  2. end-to-end lag at a steady 2,000 events/s for 20 s, sent as a proxy sends them (a batch
 *     every 10 ms, stamped when the "response" goes out): the time from that stamp until the
 *     balance (Redis) and the line item (ClickHouse) are written.
 * The apply rates are measured again on a Redis Cluster, 3 Kafka brokers and 2 ClickHouse replicas in the same run.
 * Targets: ≥ 50,000 events/s applied; lag p99 ≤ 500 ms. Prints a table, writes docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import {
  acquireTestStack,
  loadProfile,
  machineLine,
  markdownTable,
  startClickHouseCluster,
  startKafkaCluster,
  startRedisCluster,
  waitFor,
  writeBenchmarkSection,
  type ClickHouseCluster,
  type Endpoints,
  type KafkaCluster,
  type RedisCluster,
} from '@yugong/infra';
import { connectRedis, makeEvent, partitionKeyFor, topics, type EventData } from '@yugong/schemas';
import { BALANCES_GROUP, LINE_ITEMS_GROUP, startLedger, type LedgerGroup } from '../src/ledger.js';
import { createMetrics } from '../src/metrics.js';

const EVENTS = 200_000;
const RATE = 2_000;
const LAG_SECONDS = 20;
const run = randomUUID().replace(/-/g, '').slice(0, 8);
const accountPath = (n: number) => (n % 4 === 0 ? [`lb-${run}-${n % 250}`, `lb-${run}-${n % 250}-sub${n % 1000}`] : [`lb-${run}-${n % 250}`]);

function usage(n: number, time: Date) {
  const path = accountPath(n);
  const list = BigInt(100 + (n % 5000));
  const data: EventData<'usage.recorded'> = {
    requestId: `req_${run}_${n}`,
    apiKeyId: 'key_bench',
    endpoint: 'chat.completions',
    model: 'gpt-4o-mini',
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    stream: false,
    tokens: { prompt: 100, cached: 0, completion: 50, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 },
    images: 0,
    imageSize: null,
    imageQuality: null,
    audioMs: 0,
    speechCharacters: 0,
    usageSource: 'upstream',
    costs: path.map((_, d) => (d === 0 ? list : (list * 3n) / 2n).toString()),
    listCostNano: list.toString(),
    priceVersion: 'bench',
    holdId: null,
    attempts: [{ upstreamKeyId: 'up_bench', status: 200, outcome: 'ok', latencyMs: 300, errorCode: null }],
    upstreamKeyId: 'up_bench',
    upstreamOrg: 'org',
    latencyMs: 320,
    ttftMs: null,
  };
  const e = makeEvent('usage.recorded', { id: `usage:${run}:${n}`, source: 'bench', accountPath: path, time, data });
  return { key: partitionKeyFor(e), value: JSON.stringify(e) };
}

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

interface Measured {
  balancesRate: number;
  lineItemsRate: number;
  lag?: { achieved: number; lb: number[]; ll: number[] };
}

/**
 * Apply rates (and, with `lag`, the steady-rate lag) on one set of servers. `replicas`: Redis
 * replicas that confirm each batch; `rf`: Kafka replication factor of the topics.
 */
async function measure(e: Endpoints, opts: { lag: boolean; replicas: number; rf: number; label: string; clickhouse?: ClickHouseCluster }): Promise<Measured> {
  const database = `yg_bench_ledger_${run}_${opts.label}`;
  const urls = opts.clickhouse?.urls ?? [e.clickhouseUrl];
  const server = createClient({ url: urls[0] });
  await server.command({ query: `CREATE DATABASE ${database}${opts.clickhouse ? ` ON CLUSTER ${opts.clickhouse.name}` : ''}` });
  const replicas = urls.map((url) => createClient({ url, database }));
  const redis = connectRedis(e.redisUrl);
  const kafka = new Kafka({ clientId: 'ledger-bench', brokers: e.kafkaBrokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const metrics = createMetrics();
  const applied = async (group: string) => {
    const m = (await metrics.applied.get()).values.find((v) => v.labels.group === group);
    return m?.value ?? 0;
  };
  const groupSuffix = `-bench-${run}-${opts.label}`;
  const log = pino({ level: 'warn' });
  const config = {
    dedupeTtlSeconds: 3600,
    clickhouseMaxWaitMs: 100,
    groupSuffix,
    sessionTimeoutMs: 6000,
    redisReplicas: opts.replicas,
    kafkaReplicationFactor: opts.rf,
    clickhouseCluster: opts.clickhouse?.name,
  };
  try {
    // Catch up with the topics' history first (new groups read it from the beginning), so
    // only the benchmark's events are measured: wait until both groups have committed the end.
    const admin = kafka.admin();
    await admin.connect();
    const caughtUp = async () => {
      for (const [group, subscribed] of [
        [BALANCES_GROUP, [topics.accounts, topics.usage, topics.control]],
        [LINE_ITEMS_GROUP, [topics.usage, topics.accounts]],
      ] as const) {
        for (const topic of subscribed) {
          const end = await admin.fetchTopicOffsets(topic);
          const [committed] = await admin.fetchOffsets({ groupId: group + groupSuffix, topics: [topic] });
          for (const p of end) {
            const c = committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? '-1';
            // A partition that never held an event has no committed offset (-1) and is caught up.
            if (Number(p.high) > Math.max(0, Number(c))) return null;
          }
        }
      }
      return true;
    };
    let ledger = await startLedger({ config, kafka, redis, clickhouse: replicas, log, metrics });
    await waitFor('the ledger to catch up with the history', caughtUp, 600_000, 500);
    await ledger.stop();

    // 1. Apply rate: the events wait in Kafka; the ledger starts and works through them.
    for (let n = 0; n < EVENTS; n += 5000) {
      const messages = Array.from({ length: Math.min(5000, EVENTS - n) }, (_, i) => usage(n + i, new Date()));
      await producer.send({ topic: topics.usage, acks: -1, compression: CompressionTypes.None, messages });
    }
    const span = async (group: string, from: number) => {
      let first = 0;
      await waitFor(
        `${group} to apply ${EVENTS}`,
        async () => {
          const v = await applied(group);
          if (!first && v > from) first = performance.now();
          return v >= from + EVENTS || null;
        },
        600_000,
        5,
      );
      return EVENTS / ((performance.now() - first) / 1000);
    };
    // Each group alone in the process, as they run when deployed apart.
    const alone = async (group: LedgerGroup, id: string) => {
      const from = await applied(id);
      const l = await startLedger({ config: { ...config, groups: [group] }, kafka, redis, clickhouse: replicas, log, metrics });
      const rate = await span(id, from);
      await l.stop();
      return rate;
    };
    const balancesRate = await alone('balances', BALANCES_GROUP + groupSuffix);
    const lineItemsRate = await alone('line-items', LINE_ITEMS_GROUP + groupSuffix);
    console.log(`${opts.label}: apply: balances ${Math.round(balancesRate)}/s, line items ${Math.round(lineItemsRate)}/s`);
    if (!opts.lag) return { balancesRate, lineItemsRate };
    ledger = await startLedger({ config, kafka, redis, clickhouse: replicas, log, metrics });
    // Both groups joined and idle before the steady load starts.
    await producer.send({ topic: topics.usage, acks: -1, messages: [usage(EVENTS * 10, new Date())] });
    await waitFor('both groups to be ready', caughtUp, 120_000, 100);

    // 2. Lag at a steady rate: every event's age when its group has applied it.
    const ages: Record<string, number[]> = {};
    const observe = metrics.eventAge.observe.bind(metrics.eventAge);
    const steadyFrom = Date.now();
    metrics.eventAge.observe = ((labels: { group: string }, seconds: number) => {
      // Only this phase's events: a restart may first redeliver a few older ones.
      if (Date.now() - seconds * 1000 >= steadyFrom - 5) {
        ages[labels.group] ??= [];
        ages[labels.group]?.push(seconds * 1000);
      }
      observe(labels, seconds);
    }) as typeof metrics.eventAge.observe;
    // Like the proxy's event sink: whatever came due while a send was in flight goes in the next one.
    const t0 = performance.now();
    let sent = 0;
    while (performance.now() - t0 < LAG_SECONDS * 1000) {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE) - sent;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const now = new Date();
      await producer.send({ topic: topics.usage, acks: -1, messages: Array.from({ length: due }, (_, i) => usage(EVENTS + sent + i, now)) });
      sent += due;
    }
    const achieved = sent / ((performance.now() - t0) / 1000);
    await waitFor(
      'the steady events to be applied',
      async () => ((ages[BALANCES_GROUP + groupSuffix]?.length ?? 0) >= sent && (ages[LINE_ITEMS_GROUP + groupSuffix]?.length ?? 0) >= sent) || null,
      120_000,
    );
    await ledger.stop();

    const lag = (group: string) => (ages[group] ?? []).slice(0, sent).sort((a, b) => a - b);
    await admin.disconnect();
    return { balancesRate, lineItemsRate, lag: { achieved, lb: lag(BALANCES_GROUP + groupSuffix), ll: lag(LINE_ITEMS_GROUP + groupSuffix) } };
  } finally {
    await producer.disconnect();
    // A replicated shard is the run's own, made fresh and stopped after it.
    if (!opts.clickhouse) await server.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await Promise.all([server.close(), ...replicas.map((r) => r.close())]);
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const stack = await acquireTestStack();
  const profile = loadProfile('test');
  let clusters: { redis: RedisCluster; kafka: KafkaCluster; clickhouse: ClickHouseCluster } | null = null;
  try {
    const single = await measure(stack.endpoints, { lag: true, replicas: 0, rf: 1, label: 'single' });
    // The same apply phase on clustered engines, in the same run.
    clusters = {
      redis: await startRedisCluster(profile, { basePort: 26401, fresh: true }),
      kafka: await startKafkaCluster(profile, { basePort: 29201, fresh: true }),
      clickhouse: await startClickHouseCluster(profile, { basePort: 28201, fresh: true }),
    };
    const clustered = await measure(
      { ...stack.endpoints, redisUrl: clusters.redis.url, kafkaBrokers: clusters.kafka.brokers },
      { lag: false, replicas: 1, rf: 3, label: 'cluster', clickhouse: clusters.clickhouse },
    );
    const { achieved, lb, ll } = single.lag ?? { achieved: 0, lb: [], ll: [] };
    const ok = (v: boolean) => (v ? 'met' : '**not met**');
    const n = (x: number) => Math.round(x).toLocaleString('en');
    const rows = [
      ['apply rate, balances (Redis), events/s', n(single.balancesRate), `${n(clustered.balancesRate)} (each chunk confirmed by a replica)`, '≥ 50,000', ok(single.balancesRate >= 50_000)],
      // The issue's 50,000/s is the apply rate (Redis); line items are measured for capacity.
      ['insert rate, line items (ClickHouse), events/s', n(single.lineItemsRate), n(clustered.lineItemsRate), '', ''],
      [`lag p50 at ${n(achieved)} events/s, balance updated (ms)`, q(lb, 0.5).toFixed(0), '', '', ''],
      ['lag p99, balance updated (ms)', q(lb, 0.99).toFixed(0), '', '≤ 500', ok(q(lb, 0.99) <= 500)],
      ['lag p50, line item written (ms)', q(ll, 0.5).toFixed(0), '', '', ''],
      ['lag p99, line item written (ms)', q(ll, 0.99).toFixed(0), '', '', ''],
    ];
    const body =
      `${machineLine()}. Single: Kafka 3.9.1 (one KRaft broker), Redis 7 and ClickHouse 18.16 of the test stack on this machine, the ledger in one Node process. Clustered, in the same run: a Redis Cluster of 3 primaries with a replica each (the ledger waits for a replica after each chunk, YUGONG_REDIS_REPLICAS=1), 3 KRaft brokers (topics with replication factor 3) and two ClickHouse 18.16 replicas of one shard on ZooKeeper (replicated tables, the sink writing to one); all on the same 2 cores. Apply rate: ${EVENTS.toLocaleString('en')} usage events waiting in Kafka (1,000 accounts in 250 trees; a quarter charge a two-account path), each consumer group alone in the process (as when deployed apart), from its first apply to its last. Lag (single): ${LAG_SECONDS} s at ${RATE.toLocaleString('en')} events/s sent as the proxy's sink sends them (what came due while a send was in flight goes in the next send), each event stamped when it came due, measured to the moment each group has applied the event.\n\n${markdownTable(['measure', 'single', 'clustered', 'target', 'result'], rows)}\n\n` +
      'The target (≥ 50,000 events/s) is the apply rate into Redis, which is what balances and admission depend on; the ClickHouse insert rate is measured for capacity (on 18.16 each block goes through five materialized views). How the apply rate got here (2026-11-23): 30,890 events/s at first; applying six partitions at once (partitionsConsumedConcurrently) gave 41,143; a profile of the balances phase then showed the Node process busy 95 % of the time (garbage collection 31 %, decoding and validating events 31 %, zod alone 18 %, ioredis 10 %). A hand-written check of usage events (zod still decides whatever it doubts; property tests hold the check to never accept what zod refuses) took decoding from 7.2 to 3.8 µs an event: 49,125. Settling all usage events of one tree in a chunk with one Lua call (one command and one script run instead of one per event, the keys still under one hash tag): 74,000–81,000 events/s. Since 2026-12-02 the calls of one chunk go out as separate commands on a Redis Cluster (which refuses a pipeline across slots); on one server they stay one pipeline.\n';
    console.log(`\n${body}`);
    console.log(`written to ${writeBenchmarkSection('Ledger (npm run bench:ledger)', body)}`);
  } finally {
    await clusters?.redis.stop();
    await clusters?.kafka.stop();
    await clusters?.clickhouse.stop();
    await stack.release();
  }
}

await main();
