#!/usr/bin/env node
/**
 * `npm run bench:cluster`: the proxy's requests/s on the single-node engines (the test stack's
 * Redis, Kafka and ClickHouse) and on the clustered ones (a Redis Cluster of 3 primaries with a
 * replica each and every hold or lease confirmed by a replica, 3 KRaft brokers with topics of 3
 * replicas, two ClickHouse replicas), in one run, in turns. Each proxy is pinned to core 0; the
 * mock, the load generator and the engines share core 1. Prints a table, writes docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  acquireTestStack,
  endpointsToEnv,
  loadProfile,
  machineLine,
  markdownTable,
  startClickHouseCluster,
  startKafkaCluster,
  startRedisCluster,
  writeBenchmarkSection,
  type ClickHouseCluster,
  type KafkaCluster,
  type RedisCluster,
} from '@yugong/infra';
import { children, fundedBenchKey, moveStackToCore, pinToCore, runBench, start, throughput, until } from './processes.js';

pinToCore(1);

const ROUNDS = Number(process.env.YUGONG_BENCH_ROUNDS ?? 6);
const SECONDS = 5;
const PORTS = { mock: 27090, single: 27080, clustered: 27081, ledger: 27082 };
const ADMIN = `bench-admin-${randomBytes(12).toString('hex')}`;
const SECRET = randomBytes(32).toString('hex');
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise the following text in one line. '.repeat(20) }] });

interface Setup {
  name: 'single' | 'clustered';
  port: number;
  /** Where the proxy and the ledger find the engines. */
  env: Record<string, string>;
  /** What only the ledger is told (every ClickHouse replica and the cluster). */
  ledgerEnv: Record<string, string>;
}

/** A proxy on one set of engines with a funded key; the ledger runs only while the key is made. */
async function startProxy(s: Setup): Promise<{ key: string; pid: number | null }> {
  const ledger = start('ledger', 'ledger-consumer/dist/src/main.js', 1, { ...s.env, ...s.ledgerEnv, YUGONG_LEDGER_PORT: String(PORTS.ledger), YUGONG_GROUP_SUFFIX: `-bench-${s.name}-${Date.now()}` });
  await until(`http://127.0.0.1:${PORTS.ledger}/healthz`, 120_000);
  const proxy = start('proxy', 'proxy/dist/src/main.js', 0, {
    ...s.env,
    YUGONG_PROXY_PORT: String(s.port),
    YUGONG_NODE_ID: `bench-${s.name}`,
    YUGONG_ADMIN_TOKEN: ADMIN,
    YUGONG_SECRET_KEY: SECRET,
    YUGONG_UPSTREAMS: JSON.stringify([{ baseUrl: `http://127.0.0.1:${PORTS.mock}/v1`, key: 'sk-bench', poolId: `bench-${s.name}` }]),
    YUGONG_ALLOW_PRIVATE_UPSTREAMS: 'true',
    YUGONG_POOL_IDS: `bench-${s.name}`,
    YUGONG_SPOOL_DIR: join(loadProfile('test').dir, `bench-spool-${s.name}`),
  });
  await until(`http://127.0.0.1:${s.port}/readyz`, 60_000);
  const key = await fundedBenchKey(`http://127.0.0.1:${s.port}`, ADMIN, `bench-${s.name}-${Date.now()}`);
  // Admission (Redis) and events (Kafka) stay on the path; applying them is the ledger benchmark's.
  const stopped = new Promise((r) => ledger.once('exit', r));
  ledger.kill('SIGTERM');
  await stopped;
  return { key, pid: proxy.pid ?? null };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const stack = await acquireTestStack();
  const profile = loadProfile('test');
  // The clustered engines are started from this process, on core 1, and stay there.
  moveStackToCore(1);
  let clusters: { redis: RedisCluster; kafka: KafkaCluster; clickhouse: ClickHouseCluster } | null = null;
  try {
    process.stdout.write('starting the clustered engines… ');
    clusters = {
      redis: await startRedisCluster(profile, { basePort: 26401, fresh: true }),
      kafka: await startKafkaCluster(profile, { basePort: 29201, fresh: true }),
      clickhouse: await startClickHouseCluster(profile, { basePort: 28201, fresh: true }),
    };
    console.log('done');
    start('mock', 'infra/mock-openai/dist/src/main.js', 1, {}, ['--port', String(PORTS.mock), '--no-record']);
    await until(`http://127.0.0.1:${PORTS.mock}/__mock/requests`);
    await fetch(`http://127.0.0.1:${PORTS.mock}/__mock/keys/sk-bench`, { method: 'PUT', body: JSON.stringify({ rpm: 1e12, tpm: 1e15 }) });
    const setups: Setup[] = [
      { name: 'single', port: PORTS.single, env: { ...endpointsToEnv(stack.endpoints), YUGONG_LOG_LEVEL: 'warn' }, ledgerEnv: {} },
      {
        name: 'clustered',
        port: PORTS.clustered,
        env: {
          ...endpointsToEnv({ redisUrl: clusters.redis.url, kafkaBrokers: clusters.kafka.brokers, clickhouseUrl: clusters.clickhouse.urls[0] ?? '' }),
          YUGONG_REDIS_REPLICAS: '1',
          YUGONG_KAFKA_REPLICATION_FACTOR: '3',
          YUGONG_LOG_LEVEL: 'warn',
        },
        ledgerEnv: { YUGONG_CLICKHOUSE_URL: clusters.clickhouse.urls.join(','), YUGONG_CLICKHOUSE_CLUSTER: clusters.clickhouse.name },
      },
    ];
    const targets = [];
    for (const s of setups) targets.push({ ...s, ...(await startProxy(s)) });

    const results: Record<Setup['name'], Awaited<ReturnType<typeof throughput>>[]> = { single: [], clustered: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`round ${round}/${ROUNDS}… `);
      for (const t of targets) {
        const r = await throughput(
          { url: `http://127.0.0.1:${t.port}/v1/chat/completions`, headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' }, body: BODY, pid: t.pid },
          SECONDS,
        );
        results[t.name].push(r);
      }
    }
    console.log('done');
    const of = (name: Setup['name'], f: (r: Awaited<ReturnType<typeof throughput>>) => number) => median(results[name].map(f));
    const ratios = results.single.map((s, i) => (results.clustered[i]?.rps ?? 0) / s.rps);
    const n = (x: number) => Math.round(x).toLocaleString('en');
    const rows = [
      [
        'requests/s (median of the rounds)',
        n(of('single', (r) => r.rps)),
        n(of('clustered', (r) => r.rps)),
        `${Math.round(median(ratios) * 100)} % (${Math.round(Math.min(...ratios) * 100)}–${Math.round(Math.max(...ratios) * 100)} %)`,
      ],
      ['p99 latency (ms)', of('single', (r) => r.p99).toFixed(0), of('clustered', (r) => r.p99).toFixed(0), ''],
      ['proxy CPU per request (µs)', n(of('single', (r) => r.cpuUs)), n(of('clustered', (r) => r.cpuUs)), ''],
      ['failed requests (all rounds)', String(results.single.reduce((a, r) => a + r.errors, 0)), String(results.clustered.reduce((a, r) => a + r.errors, 0)), ''],
    ];
    const table = markdownTable(['measure', 'single-node engines', 'clustered engines', 'clustered ÷ single, per round'], rows);
    const body = `${machineLine()}. One proxy process per set of engines, pinned to core 0 with taskset; the mock upstream, the load generator (autocannon, 64 connections) and every engine on core 1 (the clustered engines are 6 Redis, 3 Kafka, 2 ClickHouse and a ZooKeeper process there). Chat completion of ${BODY.length} bytes to gpt-4o-mini, one usage event a request to Kafka (acks=all: on the cluster two of three brokers acknowledge), admission under leases (on the cluster each lease or hold is confirmed by a Redis replica, \`YUGONG_REDIS_REPLICAS=1\`). The two are measured in turns, ${ROUNDS} rounds of ${SECONDS} s each, in one run; the ledger is stopped (its apply rate on both is in the ledger section, also measured single and clustered in one run).\n\n${table}\n\nReading it: under leases a well-funded key reaches Redis about once per slice (every 2 s or so), so the cluster's replica wait (WAIT 1) and its extra hop are rarely on a request's path, and Kafka's acks=all from two brokers costs the proxy nothing it waits for (events go out in batches behind the response). The per-round spread is this machine's drift (see the data-plane section), larger than any difference between the two.`;
    console.log(`\n${body}`);
    console.log(`written to ${writeBenchmarkSection('Proxy on the clustered stack (npm run bench:cluster)', body)}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    await clusters?.redis.stop();
    await clusters?.kafka.stop();
    await clusters?.clickhouse.stop();
    await stack.release();
  }
}

runBench(main);
