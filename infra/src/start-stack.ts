import { READONLY_USER } from './services/clickhouse.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InfraError } from './errors.js';
import { portIsFree } from './net.js';
import { tail } from './proc.js';
import { endpointsToEnv, loadProfile, repoRoot, type Endpoints } from './profile.js';
import { startClickHouseCluster } from './clickhouse-cluster.js';
import { startKafkaCluster } from './kafka-cluster.js';
import { startRedisCluster } from './redis-cluster.js';
import { down, up } from './stack.js';
import { Supervisor } from './supervisor.js';

interface AppSpec {
  name: string;
  script: string;
  port: number;
  health: string;
  env: Record<string, string>;
}

interface Secrets {
  adminToken: string;
  secretKey: string;
}

const env = process.env;
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);

/** The dev stack's admin token and encryption key: made once, kept in the git-ignored state folder. */
function devSecrets(dir: string): Secrets {
  const file = join(dir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
  const s: Secrets = { adminToken: env.YUGONG_ADMIN_TOKEN ?? `yg-admin-${randomBytes(24).toString('base64url')}`, secretKey: env.YUGONG_SECRET_KEY ?? randomBytes(32).toString('hex') };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

async function waitHealthy(app: AppSpec, child: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new InfraError('EXITED', `${app.name} exited (code ${child.exitCode}). Last lines of ${logFile}:\n${tail(logFile)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${app.port}${app.health}`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new InfraError('UNHEALTHY', `${app.name} did not become healthy within ${timeoutMs / 1000} s. Last lines of ${logFile}:\n${tail(logFile)}`);
}

async function adminCall(proxyUrl: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${proxyUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** A demo account with $10 and a key that works; the key is reused across restarts. */
async function demoKey(proxyUrl: string, secrets: Secrets, dir: string): Promise<string> {
  const keyFile = join(dir, 'demo-key');
  if (existsSync(keyFile)) {
    const saved = readFileSync(keyFile, 'utf8').trim();
    const res = await fetch(`${proxyUrl}/v1/models`, { headers: { authorization: `Bearer ${saved}` } });
    if (res.ok) return saved;
  }
  const existing = await adminCall(proxyUrl, secrets.adminToken, 'GET', '/accounts/demo');
  if (existing.status === 404) {
    const created = await adminCall(proxyUrl, secrets.adminToken, 'POST', '/accounts', { id: 'demo', name: 'Demo account' });
    if (created.status !== 201) throw new Error(`could not create the demo account: ${JSON.stringify(created.json)}`);
  }
  await adminCall(proxyUrl, secrets.adminToken, 'POST', '/accounts/demo/credits', { amount_usd: '10', note: 'demo credit', idempotency_key: 'demo-initial-credit' });
  const key = await adminCall(proxyUrl, secrets.adminToken, 'POST', '/accounts/demo/keys', { name: 'demo' });
  if (key.status !== 201 || typeof key.json.key !== 'string') throw new Error(`could not create the demo key: ${JSON.stringify(key.json)}`);
  writeFileSync(keyFile, `${key.json.key}\n`, { mode: 0o600 });
  return key.json.key;
}

function snippets(base: string, key: string, demo: boolean, pages: string): string {
  return `
Yugong is running${demo ? ' in demo mode (answers come from the bundled mock OpenAI upstream; set YUGONG_UPSTREAMS for real keys)' : ''}.

  OpenAI base URL   ${base}/v1
  demo API key      ${key}

curl:
  curl ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'

Python (pip install openai):
  from openai import OpenAI
  client = OpenAI(base_url="${base}/v1", api_key="${key}")
  print(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]).choices[0].message.content)

Node (npm install openai):
  import OpenAI from "openai";
  const client = new OpenAI({ baseURL: "${base}/v1", apiKey: "${key}" });
  console.log((await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello!" }] })).choices[0].message.content);

Balance (as OpenAI's billing API reports it):
  curl ${base}/v1/dashboard/billing/subscription -H "Authorization: Bearer ${key}"

Web pages (sign in with the key above):
  balance and usage   ${pages}/
  sub-accounts        ${pages}/console

Press Ctrl-C to stop everything this command started.
`;
}

export interface ServicePorts {
  proxy: number;
  ledger: number;
  analytics: number;
  mock: number;
  /** The second proxy node and ledger process, on clustered engines. */
  proxy2?: number;
  ledger2?: number;
}

export interface LaunchOptions {
  /** The state folder: secrets, demo key, logs, spools. */
  dir: string;
  endpoints: Endpoints;
  ports: ServicePorts;
  /** Two replicas of ClickHouse and the settings of clustered engines. */
  clickhouseCluster?: { urls: string[]; name: string } | null;
  /** Added to every service's environment (after the process's own). */
  env?: Record<string, string>;
  say?(line: string): void;
}

export interface LaunchedServices {
  /** The proxy's base URL (no /v1). */
  base: string;
  pages: string;
  adminToken: string;
  demoKey: string;
  /** What `npm start` prints: a key and copy-paste curl, Python and Node snippets. */
  welcome: string;
  supervisor: Supervisor;
  /** Stops every service it started, by PID. */
  stop(): Promise<void>;
}

/**
 * Yugong's services as `npm start` runs them: each from its entry point as a child process
 * under the supervisor (the mock upstream too, in demo mode), then the demo account and key.
 * `npm start` calls it on the dev profile; the README smoke suite on the test stack.
 */
export async function launchServices(opts: LaunchOptions): Promise<LaunchedServices> {
  const { ports, endpoints } = opts;
  const say = opts.say ?? console.log;
  const logs = join(opts.dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const secrets = devSecrets(opts.dir);
  const demo = !env.YUGONG_UPSTREAMS || env.YUGONG_UPSTREAMS.trim() === '[]';
  for (const [name, p] of Object.entries(ports)) {
    if (name === 'mock' && !demo) continue;
    if (!(await portIsFree(p))) throw new InfraError('PORT_IN_USE', `port ${p} (${name}) is already in use by another process. Stop it or set YUGONG_${name.toUpperCase()}_PORT.`);
  }
  const supervisor = new Supervisor({ say: (line) => console.error(line) });
  const base = `http://127.0.0.1:${ports.proxy}`;
  const clustered = opts.clickhouseCluster ?? null;
  const common = {
    ...endpointsToEnv(endpoints),
    YUGONG_ADMIN_TOKEN: secrets.adminToken,
    YUGONG_SECRET_KEY: secrets.secretKey,
    YUGONG_SPOOL_DIR: join(opts.dir, 'spool'),
    // On the clusters: a replica confirms every hold and ledger batch; topics get 3 replicas.
    ...(clustered ? { YUGONG_REDIS_REPLICAS: '1', YUGONG_KAFKA_REPLICATION_FACTOR: '3' } : {}),
    ...opts.env,
  };
  const upstreams = demo ? JSON.stringify([{ baseUrl: `http://127.0.0.1:${ports.mock}/v1`, key: 'sk-demo-upstream-key', organization: 'org-demo' }]) : (env.YUGONG_UPSTREAMS ?? '[]');
  // One proxy and one ledger, or two of each on the clusters (each ledger group spread over both).
  const nodes = [{ n: 1, proxy: ports.proxy, ledger: ports.ledger }, ...(ports.proxy2 && ports.ledger2 ? [{ n: 2, proxy: ports.proxy2, ledger: ports.ledger2 }] : [])];
  const suffix = (n: number) => (nodes.length > 1 ? `-${n}` : '');
  const apps: AppSpec[] = [
    ...(demo ? [{ name: 'mock-openai', script: 'infra/mock-openai/dist/src/main.js', port: ports.mock, health: '/__mock/requests', env: { YUGONG_MOCK_PORT: String(ports.mock) } }] : []),
    ...nodes.map((x) => ({
      name: `ledger-consumer${suffix(x.n)}`,
      script: 'ledger-consumer/dist/src/main.js',
      port: x.ledger,
      health: '/healthz',
      env: { YUGONG_LEDGER_PORT: String(x.ledger), ...(clustered ? { YUGONG_CLICKHOUSE_URL: clustered.urls.join(','), YUGONG_CLICKHOUSE_CLUSTER: clustered.name } : {}) },
    })),
    ...nodes.map((x) => ({
      name: `proxy${suffix(x.n)}`,
      script: 'proxy/dist/src/main.js',
      port: x.proxy,
      health: '/readyz',
      env: {
        YUGONG_PROXY_PORT: String(x.proxy),
        YUGONG_UPSTREAMS: upstreams,
        // The demo's mock upstream runs on this host.
        ...(demo ? { YUGONG_ALLOW_PRIVATE_UPSTREAMS: 'true' } : {}),
        ...(nodes.length > 1 ? { YUGONG_NODE_ID: `proxy-${x.n}` } : {}),
        YUGONG_SPOOL_DIR: join(opts.dir, `spool${suffix(x.n)}`),
      },
    })),
    {
      name: 'analytics',
      script: 'analytics/dist/src/main.js',
      port: ports.analytics,
      health: '/healthz',
      env: { YUGONG_ANALYTICS_PORT: String(ports.analytics), YUGONG_PROXY_URL: base, YUGONG_LEDGER_URL: `http://127.0.0.1:${ports.ledger}`, YUGONG_CLICKHOUSE_USER: READONLY_USER },
    },
  ];
  try {
    for (const app of apps) {
      const logFile = join(logs, `${app.name}.log`);
      const out = createWriteStream(logFile, { flags: 'a' });
      // A service that exits later is restarted by the supervisor; one that cannot start stops the stack.
      await supervisor.add({
        name: app.name,
        start: () => {
          const child = spawn(process.execPath, [join(repoRoot, app.script)], { cwd: repoRoot, env: { ...env, ...common, ...app.env }, stdio: ['ignore', 'pipe', 'pipe'] });
          child.stdout?.pipe(out, { end: false });
          child.stderr?.pipe(out, { end: false });
          return child;
        },
        ready: (child) => waitHealthy(app, child, logFile),
        logTail: () => tail(logFile),
      });
      say(`[start] ${app.name.padEnd(16)} http://127.0.0.1:${app.port}  log: ${logFile}`);
    }
    const key = await demoKey(base, secrets, opts.dir);
    const pages = `http://127.0.0.1:${ports.analytics}`;
    return { base, pages, adminToken: secrets.adminToken, demoKey: key, welcome: snippets(base, key, demo, pages), supervisor, stop: () => supervisor.stop() };
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
}

/**
 * `npm start`: the whole stack on the dev profile, until Ctrl-C. `npm run stack:cluster`: the
 * same on clustered engines (a Redis Cluster of 3 primaries with a replica each, 3 KRaft
 * brokers with replication factor 3, two ClickHouse replicas on ZooKeeper), with two proxy
 * nodes and two ledger processes.
 */
export async function startWholeStack(opts: { cluster?: boolean } = {}): Promise<number> {
  const profile = loadProfile('dev');
  const ports: ServicePorts = {
    proxy: port('YUGONG_PROXY_PORT', 18080),
    ledger: port('YUGONG_LEDGER_PORT', 18082),
    analytics: port('YUGONG_ANALYTICS_PORT', 18081),
    mock: port('YUGONG_MOCK_PORT', 18090),
    ...(opts.cluster ? { proxy2: port('YUGONG_PROXY2_PORT', 18083), ledger2: port('YUGONG_LEDGER2_PORT', 18084) } : {}),
  };
  const clusters = opts.cluster
    ? {
        redis: await startRedisCluster(profile, { basePort: 17401, log: console.log }),
        kafka: await startKafkaCluster(profile, { basePort: 19201, log: console.log }),
        clickhouse: await startClickHouseCluster(profile, { basePort: 18201, log: console.log }),
      }
    : null;
  // Readers (proxy, analytics) use the first replica; the ledger writes to either.
  const endpoints = clusters ? { redisUrl: clusters.redis.url, kafkaBrokers: clusters.kafka.brokers, clickhouseUrl: clusters.clickhouse.urls[0] ?? '' } : await up(profile);
  if (clusters) {
    console.log(
      `[start] redis cluster    ${clusters.redis.url}\n[start] kafka cluster    ${clusters.kafka.brokers.join(',')}\n[start] clickhouse       ${clusters.clickhouse.urls.join(',')} (cluster ${clusters.clickhouse.name})`,
    );
  }
  let services: LaunchedServices | null = null;
  let stopping: Promise<void> | null = null;
  // One stop, however many signals arrive (Ctrl-C reaches this process directly and again
  // through the bootstrap, which forwards what it is sent).
  const stopAll = () =>
    (stopping ??= (async () => {
      await services?.stop();
      const stopped = await down(profile);
      if (clusters) {
        await clusters.redis.stop();
        await clusters.kafka.stop();
        await clusters.clickhouse.stop();
        stopped.push('redis cluster', 'kafka cluster', 'clickhouse cluster');
      }
      console.log(`[start] stopped: ${[...(services?.supervisor.status().map((c) => c.name) ?? []), ...stopped].join(', ')}`);
    })());
  const onSignal = () => {
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    services = await launchServices({ dir: profile.dir, endpoints, ports, clickhouseCluster: clusters ? { urls: clusters.clickhouse.urls, name: clusters.clickhouse.name } : null });
    console.log(services.welcome);
    console.log(`Admin token (for ${services.base}/admin/v1): ${services.adminToken}`);
  } catch (err) {
    await stopAll();
    throw err;
  }
  await new Promise(() => undefined);
  return 0;
}
