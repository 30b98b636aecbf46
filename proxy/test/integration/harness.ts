import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import OpenAI from 'openai';
import { destination, pino, type Logger } from 'pino';
import { endpointsFromEnv, waitFor } from '@yugong/infra';
import { BALANCES_GROUP, createMetrics as ledgerMetrics, loadConfig as loadLedgerConfig, startLedgerService, type LedgerMetrics, type StartOffsets } from '@yugong/ledger-consumer';
import { createMockOpenAI, type MockOpenAI } from '@yugong/mock-openai';
import { connectRedis, redisKeys, sqlString, topics, type RedisClient } from '@yugong/schemas';
import type { Proxy as ProxyNode } from '../../src/app.js';
import { loadConfig, type ProxyConfig } from '../../src/config.js';
import { startProxyNode } from '../../src/wiring.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface UpstreamSpec {
  key: string;
  organization?: string;
  models?: string[];
}

export interface Node {
  proxy: ProxyNode;
  url: string;
  config: ProxyConfig;
  /** The environment the node's configuration was read from (to start the same node as a process). */
  env: Record<string, string>;
  /** Drains the node and closes its connections. */
  close(): Promise<void>;
}

export interface Stack {
  mock: MockOpenAI;
  nodes: Node[];
  url: string;
  redis: RedisClient;
  clickhouse: ClickHouseClient;
  /** The stack's own ClickHouse database. */
  database: string;
  kafka: Kafka;
  /** Where the stack's servers are, as every service's configuration names them (its own ClickHouse database included). */
  infraEnv: Record<'YUGONG_KAFKA_BROKERS' | 'YUGONG_REDIS_URL' | 'YUGONG_CLICKHOUSE_URL' | 'YUGONG_CLICKHOUSE_DATABASE', string>;
  /** The ledger's processes, when the stack runs it as processes (`ledgerProcesses`). */
  ledgers: LedgerProcess[];
  /** The in-process ledger's metrics (what its /metrics serves). */
  ledgerMetrics: LedgerMetrics;
  /** The in-process ledger's health and metrics address (null when the ledger runs as processes). */
  ledgerUrl: string | null;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** A root account with a balance and a key; returns the key and the account id. */
  fundedKey(opts?: { usd?: string; key?: Record<string, unknown>; account?: Record<string, unknown> }): Promise<{ accountId: string; key: string; keyId: string }>;
  client(key: string, opts?: Partial<ConstructorParameters<typeof OpenAI>[0]>): OpenAI;
  account(accountId: string): Promise<Record<string, string>>;
  /** Waits until the account has settled `requests` requests; returns its hash. */
  settled(accountId: string, requests: number, root?: string, timeoutMs?: number): Promise<Record<string, string>>;
  lineItems(accountId: string, expected: number, timeoutMs?: number): Promise<Record<string, any>[]>;
  /** Line items of an account's tree: how many, and how many distinct requests (exactly once: equal). */
  billed(accountId: string): Promise<{ count: number; distinct: number }>;
  addNode(env?: Record<string, string>): Promise<Node>;
  close(): Promise<void>;
}

/** A ledger-consumer process of the stack: both consumer groups, spread over all of them. */
export interface LedgerProcess {
  child: ChildProcess | null;
  /** Starts it (again), with extra variables (e.g. YUGONG_FAULT_KILL_AT); resolves once it serves /healthz. */
  start(env?: Record<string, string>): Promise<void>;
  /** Ends it with SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Resolves when it has ended, however. */
  exited(): Promise<void>;
}

/** YUGONG_TEST_TRACE=1 prints the in-process services' logs and kafkajs' own (how the Kafka outage's recovery was timed). */
const TRACE = process.env.YUGONG_TEST_TRACE === '1';
/** A node's errors go to a file beside its spool (kept after the run, for a failure's reason); everything with YUGONG_TEST_TRACE=1. */
const nodeLog = (file: string) => (TRACE ? pino({ level: 'info' }) : pino({ level: 'warn' }, destination({ dest: file, sync: false, mkdir: true })));
const LEDGER_MAIN = fileURLToPath(new URL('./main.js', import.meta.resolve('@yugong/ledger-consumer')));

/** Its output goes to `logFile` (kafkajs reports every rebalance and lost broker there). */
function ledgerProcess(env: Record<string, string>, logFile: string): LedgerProcess {
  let exit: Promise<void> = Promise.resolve();
  const p: LedgerProcess = {
    child: null,
    async start(extra = {}) {
      const port = String(await freePort());
      const log = openSync(logFile, 'a');
      const child = spawn(process.execPath, [LEDGER_MAIN], { env: { ...process.env, ...env, ...extra, YUGONG_LEDGER_PORT: port }, stdio: ['ignore', log, log] });
      closeSync(log);
      p.child = child;
      exit = new Promise((resolve) =>
        child.once('exit', () => {
          if (p.child === child) p.child = null;
          resolve();
        }),
      );
      await waitFor(
        `a ledger process to serve (its log: ${logFile})`,
        async () =>
          (await fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.status,
            () => 0,
          )) === 200
            ? true
            : null,
        60_000,
      );
    },
    async kill() {
      p.child?.kill('SIGKILL');
      await exit;
    },
    exited: () => exit,
  };
  return p;
}

export const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });

/**
 * A stack's ledger needs only the events of its own tests. Its new consumer groups would
 * otherwise replay every event the suite has produced so far, into its fresh ClickHouse
 * database and its Redis, while the tests wait on their own writes: so they start at the
 * topics' ends as they are now, before any of this stack's events exist.
 */
async function currentEnds(kafka: Kafka): Promise<StartOffsets> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const out: StartOffsets = {};
    for (const topic of [topics.accounts, topics.usage, topics.control].filter((t) => existing.has(t))) {
      out[topic] = (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, offset: o.high }));
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Where the stack's balances group stands, for the message of a write the ledger did not apply
 * in time: its state and members, and each partition it has not committed to the end
 * (committed offset / end), so a stalled consumer and an event never produced can be told apart.
 */
async function balancesStanding(kafka: Kafka, groupSuffix: string): Promise<string> {
  const admin = kafka.admin();
  const groupId = BALANCES_GROUP + groupSuffix;
  try {
    await admin.connect();
    const eventTopics = [topics.accounts, topics.usage];
    const [committed, described, ...ends] = await Promise.all([
      admin.fetchOffsets({ groupId, topics: eventTopics }),
      admin.describeGroups([groupId]),
      ...eventTopics.map((t) => admin.fetchTopicOffsets(t)),
    ]);
    const behind = eventTopics.flatMap((topic, i) => {
      const at = new Map(committed.find((c) => c.topic === topic)?.partitions.map((p) => [p.partition, p.offset]));
      // -1 is nothing committed: a stack that starts at the topics' ends has not seen an event there, or has not applied its first.
      return (ends[i] ?? []).filter((e) => at.get(e.partition) !== e.high).map((e) => `${topic}[${e.partition}] ${at.get(e.partition)}/${e.high}`);
    });
    const group = described.groups[0];
    return `balances group ${group?.state}, ${group?.members.length} members; not at the end: ${behind.join(', ') || 'none'}`;
  } catch (err) {
    return `balances group not described: ${(err as Error).message}`;
  } finally {
    await admin.disconnect();
  }
}

/**
 * `redisUrl`, `kafkaBrokers` and `clickhouse` (the replicas of a replicated shard and their
 * cluster) put the stack on other servers; `env` is every node's and, for
 * YUGONG_REDIS_REPLICAS and YUGONG_KAFKA_REPLICATION_FACTOR, the ledger's. With
 * `ledgerProcesses` the ledger runs as that many processes from the topics' beginning (a
 * fresh cluster's), not in this one. The stack reads ClickHouse through the last replica.
 */
export async function startStack(
  opts: {
    upstreams?: UpstreamSpec[];
    nodes?: number;
    env?: Record<string, string>;
    log?: Logger;
    redisUrl?: string;
    kafkaBrokers?: string[];
    clickhouse?: { urls: string[]; cluster: string };
    ledgerProcesses?: number;
  } = {},
): Promise<Stack> {
  const endpoints = { ...endpointsFromEnv(), ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}), ...(opts.kafkaBrokers ? { kafkaBrokers: opts.kafkaBrokers } : {}) };
  const chUrls = opts.clickhouse?.urls ?? [endpoints.clickhouseUrl];
  const mock = await createMockOpenAI();
  const kafka = new Kafka({ clientId: 'proxy-test', brokers: endpoints.kafkaBrokers, logLevel: TRACE ? logLevel.INFO : logLevel.NOTHING });
  const redis = connectRedis(endpoints.redisUrl);
  const database = `yg_proxy_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const chAdmin = createClient({ url: chUrls[0] });
  await chAdmin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}${opts.clickhouse ? ` ON CLUSTER ${opts.clickhouse.cluster}` : ''}` });
  await chAdmin.close();
  const replicas = chUrls.map((url) => createClient({ url, database, log: { level: ClickHouseLogLevel.OFF } }));
  const clickhouse = replicas[replicas.length - 1] as ClickHouseClient;
  const replicaSettings = { redisReplicas: Number(opts.env?.YUGONG_REDIS_REPLICAS ?? 0), kafkaReplicationFactor: Number(opts.env?.YUGONG_KAFKA_REPLICATION_FACTOR ?? 1) };
  const groupSuffix = `-${randomUUID()}`;
  const spoolRoot = mkdtempSync(join(tmpdir(), 'yugong-spool-'));
  const ledgerEnv = {
    YUGONG_KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
    YUGONG_REDIS_URL: endpoints.redisUrl,
    YUGONG_CLICKHOUSE_URL: chUrls.join(','),
    YUGONG_CLICKHOUSE_DATABASE: database,
    ...(opts.clickhouse ? { YUGONG_CLICKHOUSE_CLUSTER: opts.clickhouse.cluster } : {}),
    YUGONG_GROUP_SUFFIX: groupSuffix,
    YUGONG_REDIS_REPLICAS: String(replicaSettings.redisReplicas),
    YUGONG_KAFKA_REPLICATION_FACTOR: String(replicaSettings.kafkaReplicationFactor),
    YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS: '50',
    YUGONG_KAFKA_SESSION_TIMEOUT_MS: '6000',
    YUGONG_LOG_LEVEL: 'warn',
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
  };
  const ledgers = Array.from({ length: opts.ledgerProcesses ?? 0 }, (_, i) => ledgerProcess(ledgerEnv, join(spoolRoot, `ledger-${i + 1}.log`)));
  for (const l of ledgers) await l.start();
  // In this process, through the wiring its entry point uses; only the start offsets are the test's.
  const ledger = ledgers.length
    ? null
    : await startLedgerService(
        { ...loadLedgerConfig({ ...ledgerEnv, YUGONG_LEDGER_PORT: '0' }), startAt: await currentEnds(kafka) },
        TRACE ? pino({ level: 'info' }) : pino({ level: 'error' }, destination({ dest: join(spoolRoot, 'ledger.log'), sync: false, mkdir: true })),
      );
  const metrics = ledger?.metrics ?? ledgerMetrics();
  const poolId = `p${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const upstreams = (opts.upstreams ?? [{ key: 'sk-upstream-a', organization: 'org-a' }]).map((u) => ({
    baseUrl: mock.baseURL,
    key: u.key,
    organization: u.organization ?? null,
    models: u.models ?? null,
    weight: 1,
    poolId,
  }));
  const secret = randomBytes(32).toString('hex');
  const nodes: Node[] = [];

  async function addNode(extraEnv: Record<string, string> = {}): Promise<Node> {
    const env: Record<string, string> = {
      YUGONG_KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      YUGONG_REDIS_URL: endpoints.redisUrl,
      YUGONG_ADMIN_TOKEN: ADMIN_TOKEN,
      YUGONG_SECRET_KEY: secret,
      YUGONG_UPSTREAMS: JSON.stringify(upstreams),
      YUGONG_POOL_IDS: poolId,
      YUGONG_PROXY_PORT: '0',
      YUGONG_PROXY_HOST: '127.0.0.1',
      YUGONG_CLICKHOUSE_URL: chUrls[chUrls.length - 1] ?? '',
      YUGONG_CLICKHOUSE_DATABASE: database,
      YUGONG_NODE_ID: `node-${nodes.length + 1}-${poolId}`,
      YUGONG_SPOOL_DIR: join(spoolRoot, `node-${nodes.length + 1}`),
      YUGONG_LOG_LEVEL: 'silent',
      YUGONG_SHUTDOWN_GRACE_MS: '2000',
      YUGONG_PROBE_INTERVAL_MS: '1000',
      // The mock upstream is on this host.
      YUGONG_ALLOW_PRIVATE_UPSTREAMS: 'true',
      ...opts.env,
      ...extraEnv,
    };
    const config = loadConfig(env);
    // The wiring production runs (proxy/dist/src/main.js): only the configuration is the test's.
    const started = await startProxyNode(config, opts.log ?? nodeLog(join(spoolRoot, `node-${nodes.length + 1}.log`)));
    const node = { proxy: started.role, url: started.url, config, env, close: started.close };
    nodes.push(node);
    return node;
  }
  for (let i = 0; i < (opts.nodes ?? 1); i++) await addNode();
  const url = nodes[0]?.url ?? '';

  const stack: Stack = {
    mock,
    nodes,
    url,
    redis,
    clickhouse,
    database,
    kafka,
    infraEnv: {
      YUGONG_KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      YUGONG_REDIS_URL: endpoints.redisUrl,
      YUGONG_CLICKHOUSE_URL: chUrls[chUrls.length - 1] ?? '',
      YUGONG_CLICKHOUSE_DATABASE: database,
    },
    ledgers,
    ledgerMetrics: metrics,
    ledgerUrl: ledger?.url ?? null,
    addNode,
    async admin(method, path, body) {
      const res = await fetch(`${url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: await res.json() };
    },
    async fundedKey(o = {}) {
      // Each write waits for the ledger to apply it; a refusal says where the ledger stood.
      const created = async (what: string, r: { status: number; json: any }) => {
        // Where the write stood: not yet in Kafka (a node's journal not acknowledged) or not yet applied.
        if (r.status !== 201) {
          const journals = nodes.map((n, i) => `node ${i + 1} unacknowledged ${n.proxy.sink.spoolBytes()} bytes`).join(', ');
          // Applied late (a slow ledger) or not at all (lost on the way): the account's record now, and 5 s later.
          const there = async () => (await redis.exists(redisKeys.account(accountId, accountId))) === 1;
          const now = await there();
          await new Promise((r) => setTimeout(r, 5000));
          throw new Error(
            `${what}: ${JSON.stringify(r.json)}; ${journals}; ${await balancesStanding(kafka, groupSuffix)}; the account's record: ${now ? 'there' : 'absent'}, 5 s later ${(await there()) ? 'there' : 'absent'}`,
          );
        }
        return r.json;
      };
      const accountId = `acct-${randomUUID().slice(0, 8)}`;
      await created('account', await stack.admin('POST', '/accounts', { id: accountId, name: 'Test', ...o.account }));
      if ((o.usd ?? '10') !== '0') await created('credit', await stack.admin('POST', `/accounts/${accountId}/credits`, { amount_usd: o.usd ?? '10', idempotency_key: randomUUID() }));
      const key = await created('key', await stack.admin('POST', `/accounts/${accountId}/keys`, { name: 'test', ...o.key }));
      return { accountId, key: key.key as string, keyId: key.id as string };
    },
    client(key, o = {}) {
      return new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0, ...o });
    },
    async account(accountId) {
      const root = (await redis.hget(redisKeys.accountRoots(), accountId)) ?? accountId;
      return redis.hgetall(redisKeys.account(root, accountId));
    },
    settled(accountId, requests, root, timeoutMs) {
      return waitFor(
        `${requests} settled requests on ${accountId}`,
        async () => {
          const h = await redis.hgetall(redisKeys.account(root ?? accountId, accountId));
          return Number(h.requests ?? 0) >= requests ? h : null;
        },
        timeoutMs,
      );
    },
    async billed(accountId) {
      const rs = await clickhouse.query({
        query: `SELECT toString(count()) AS n, toString(uniqExact(request_id)) AS u FROM line_items WHERE has(account_path, ${sqlString(accountId)})`,
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ n: string; u: string }>();
      return { count: Number(row?.n ?? 0), distinct: Number(row?.u ?? 0) };
    },
    lineItems(accountId, expected, timeoutMs) {
      return waitFor(
        `${expected} line items of ${accountId}`,
        async () => {
          const rs = await clickhouse.query({ query: `SELECT * FROM line_items WHERE has(account_path, '${accountId}') ORDER BY time, event_id`, format: 'JSONEachRow' });
          const rows = await rs.json<Record<string, any>>();
          return rows.length >= expected ? rows : null;
        },
        timeoutMs,
      );
    },
    async close() {
      for (const n of nodes) await n.close();
      await ledger?.stop();
      for (const l of ledgers) await l.kill();
      await mock.close();
      // A replicated shard is the suite's own, made fresh and stopped after it.
      if (!opts.clickhouse) await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await Promise.all(replicas.map((r) => r.close()));
      redis.disconnect();
    },
  };
  return stack;
}

export { waitFor };
