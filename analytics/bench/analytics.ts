/**
 * Analytics benchmark: 20 million line items across 10,000 accounts (2,000 trees of a root
 * and up to four sub-accounts, one heavy account with a tenth of the traffic) in one month,
 * generated inside ClickHouse through the real materialized views; then the analytics API,
 * in process over HTTP, measured one request at a time:
 *   overview and breakdown p95 ≤ 100 ms, line-item page p95 ≤ 50 ms, CSV ≥ 100,000 rows/s.
 * `--rows N` for a smaller run; the data is kept and reused when it is already there.
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { acquireTestStack, machineLine, markdownTable, READONLY_USER, writeBenchmarkSection } from '@yugong/infra';
import { migrate, redisKeys } from '@yugong/schemas';
import { createAnalyticsApp } from '../src/app.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '20000000' }, samples: { type: 'string', default: '200' } } });
const ROWS = Number(values.rows);
const SAMPLES = Number(values.samples);
const ACCOUNTS = 10_000;
const ROOTS = 2_000;
const CHUNK = 1_000_000;
const DATABASE = 'yg_bench_analytics';
const TOKEN = 'bench-admin-token-0123456789abcdef';
const id = (n: number) => `bench-${n}`;
const pathOf = (n: number) => (n < ROOTS ? [id(n)] : [id(n % ROOTS), id(n)]);

/** Row n: a tenth to bench-0 (the heavy account), the rest spread by hash; costs per path account. */
function generate(offset: number, count: number): string {
  return `INSERT INTO line_items (event_id, request_id, time, root_account_id, account_id, account_path, costs_nano, cost_nano, list_cost_nano, price_version,
      api_key_id, endpoint, model, status, http_status, stream, prompt_tokens, cached_tokens, completion_tokens, usage_source, attempts, attempts_json,
      upstream_key_id, upstream_org, latency_ms, ttft_ms)
    SELECT concat('bench-ev-', toString(n)), concat('req_', toString(n)),
      toDateTime('2026-10-01 00:00:00', 'UTC') + (intHash32(n * 7) % (31 * 86400)),
      concat('bench-', toString(if(caller < ${ROOTS}, caller, caller % ${ROOTS}))), concat('bench-', toString(caller)),
      if(caller < ${ROOTS}, [concat('bench-', toString(caller))], [concat('bench-', toString(caller % ${ROOTS})), concat('bench-', toString(caller))]),
      if(caller < ${ROOTS}, [list], [list, intDiv(list * 3, 2)]), if(caller < ${ROOTS}, list, intDiv(list * 3, 2)), list, 'bench',
      concat('key_bench', toString(caller), '_', toString(n % 3)), 'chat.completions',
      arrayElement(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'o3-mini', 'text-embedding-3-small', 'gpt-4.1-mini'], 1 + n % 6),
      if(n % 50 = 0, 'upstream_error', 'ok'), 200, n % 2, prompt, prompt % 100, intHash32(n * 3) % 800, 'upstream', 1 + (n % 40 = 0), '[]',
      concat('up_', toString(n % 20)), concat('org-', toString(n % 5)), 50 + intHash32(n * 5) % 2000, if(n % 2 = 1, toInt32(20 + intHash32(n * 11) % 500), -1)
    FROM (
      SELECT number + ${offset} AS n, if(n % 10 = 0, 0, 1 + intHash32(n) % ${ACCOUNTS - 1}) AS caller,
        toInt64(intHash32(n * 13) % 50000) AS list, toUInt32(intHash32(n * 17) % 3000) AS prompt
      FROM numbers(${count})
    )`;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const stack = await acquireTestStack();
  const url = stack.endpoints.clickhouseUrl;
  const server = createClient({ url, request_timeout: 600_000 });
  await server.command({ query: `CREATE DATABASE IF NOT EXISTS ${DATABASE}` });
  const ch = createClient({ url, database: DATABASE, request_timeout: 600_000 });
  const reader = createClient({ url, database: DATABASE, username: READONLY_USER, password: '' });
  const redis = new Redis(stack.endpoints.redisUrl);
  try {
    await migrate(ch);
    const count = async () => Number((await (await ch.query({ query: 'SELECT count() AS n FROM line_items', format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n);
    let generation = 'reused';
    if ((await count()) !== ROWS) {
      for (const t of ['line_items', 'usage_hourly', 'usage_daily', 'latency_hourly', 'latency_daily', 'upstream_hourly']) await ch.command({ query: `TRUNCATE TABLE ${t}` });
      const t0 = performance.now();
      for (let offset = 0; offset < ROWS; offset += CHUNK) {
        await ch.command({ query: generate(offset, Math.min(CHUNK, ROWS - offset)) });
        process.stdout.write(`\rgenerated ${Math.min(ROWS, offset + CHUNK).toLocaleString('en')} line items`);
      }
      const s = (performance.now() - t0) / 1000;
      generation = `${s.toFixed(0)} s (${Math.round(ROWS / s).toLocaleString('en')} rows/s through the views)`;
      console.log(`\n${generation}`);
    }
    const p = redis.pipeline();
    for (let n = 0; n < ACCOUNTS; n++) {
      const path = pathOf(n);
      p.hset(redisKeys.accountRoots(), id(n), path[0] ?? id(n));
      p.hset(redisKeys.account(path[0] ?? id(n), id(n)), { id: id(n), path: JSON.stringify(path) });
    }
    await p.exec();

    const app = createAnalyticsApp({
      config: {
        clickhouseUrl: url,
        clickhouseDatabase: DATABASE,
        clickhouseUser: READONLY_USER,
        clickhousePassword: '',
        redisUrl: stack.endpoints.redisUrl,
        port: 0,
        host: '127.0.0.1',
        adminToken: TOKEN,
        proxyUrl: 'http://127.0.0.1:18080',
        logLevel: 'silent',
        trustedProxies: [],
        ledgerUrl: null,
      },
      clickhouse: reader,
      redis,
      log: pino({ level: 'silent' }),
    }).listen(0, '127.0.0.1');
    await new Promise((r) => app.once('listening', r));
    const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}/analytics/v1`;
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res;
    };
    const month = 'from=2026-10-01&to=2026-10-31';
    let seed = 7;
    const randomAccount = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return id(seed % ACCOUNTS);
    };
    async function timed(label: string, path: () => string): Promise<{ label: string; p50: number; p95: number; max: number }> {
      for (let i = 0; i < 5; i++) await (await get(path())).arrayBuffer();
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const t0 = performance.now();
        await (await get(path())).arrayBuffer();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return { label, p50: quantile(times, 0.5), p95: quantile(times, 0.95), max: times.at(-1) ?? NaN };
    }
    const results = [
      await timed('overview: month total, random account', () => `/usage?account_id=${randomAccount()}&${month}`),
      await timed(`overview: month total, heavy account (${(ROWS / 10).toLocaleString('en')} items)`, () => `/usage?account_id=bench-0&${month}`),
      await timed('breakdown: daily by model, random account', () => `/usage?account_id=${randomAccount()}&${month}&interval=day&group_by=model`),
      await timed('breakdown: by sub-account, random root', () => `/usage?account_id=${id(Number(randomAccount().slice(6)) % ROOTS)}&${month}&group_by=sub_account`),
      await timed('breakdown: daily by key, heavy account', () => `/usage?account_id=bench-0&${month}&interval=day&group_by=api_key`),
      await timed('operator: by upstream key, month', () => `/upstreams?${month}&group_by=upstream_key`),
    ];
    const pages = [
      await timed('line items: first page of 100, random account', () => `/line_items?account_id=${randomAccount()}&${month}&limit=100`),
      await timed('line items: first page of 100, heavy account', () => `/line_items?account_id=bench-0&${month}&limit=100`),
    ];
    const first = (await (await get(`/line_items?account_id=bench-0&${month}&limit=100`)).json()) as { next_cursor: string };
    pages.push(await timed('line items: a later page (cursor), heavy account', () => `/line_items?account_id=bench-0&${month}&limit=100&cursor=${first.next_cursor}`));

    const t0 = performance.now();
    const text = await (await get(`/line_items?account_id=bench-0&${month}&format=csv`)).text();
    const csvSeconds = (performance.now() - t0) / 1000;
    const csvRows = text.split('\n').length - 2;
    const csvRate = csvRows / csvSeconds;
    app.close();

    const ok = (v: boolean) => (v ? 'met' : '**not met**');
    const rows = [
      ...results.map((r) => [r.label, r.p50.toFixed(1), r.p95.toFixed(1), r.max.toFixed(1), '≤ 100', ok(r.p95 <= 100)]),
      ...pages.map((r) => [r.label, r.p50.toFixed(1), r.p95.toFixed(1), r.max.toFixed(1), '≤ 50', ok(r.p95 <= 50)]),
    ];
    const body =
      `${machineLine()}. ClickHouse ${(await (await ch.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>())[0]?.v} (Debian's server, local, default settings), ` +
      `${ROWS.toLocaleString('en')} line items of one month across ${ACCOUNTS.toLocaleString('en')} accounts (${ROOTS.toLocaleString('en')} trees; bench-0 has a tenth of them), ` +
      `generated through the materialized views: ${generation}. Each figure is ${SAMPLES} requests, one at a time, to the analytics API over HTTP with the operator token, as the read-only ClickHouse user (times in ms).\n\n` +
      markdownTable(['query', 'p50', 'p95', 'max', 'target p95', 'result'], rows) +
      `\n\nCSV export of bench-0's month: ${csvRows.toLocaleString('en')} rows in ${csvSeconds.toFixed(1)} s = **${Math.round(csvRate).toLocaleString('en')} rows/s** (target ≥ 100,000: ${ok(csvRate >= 100_000)}).\n`;
    console.log(`\n${body}`);
    if (ROWS === 20_000_000) console.log(`written to ${writeBenchmarkSection('Analytics (npm run bench:analytics)', body)}`);
  } finally {
    redis.disconnect();
    await Promise.all([ch.close(), reader.close(), server.close()]);
    await stack.release();
  }
}

await main();
