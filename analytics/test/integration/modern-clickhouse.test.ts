import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ChdbClient, endpointsFromEnv, ensureChdb } from '@yugong/infra';
import { createLineItemSink, createMetrics, createReplicaSet } from '@yugong/ledger-consumer';
import { clickhouseSettings, makeEvent, migrations, migrate, redisKeys, type EventOf, type YugongEvent } from '@yugong/schemas';
import { createAnalyticsApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { dashboardQueries } from './grafana-queries.js';

const TOKEN = 'modern-clickhouse-token-0123456789';
const uid = () => randomUUID().replace(/-/g, '').slice(0, 8);

/** The same events for both engines: a tree over a few days, models, keys, statuses and upstreams. */
function fixture(run: string): { events: YugongEvent[]; paths: Record<string, string[]>; keys: string[] } {
  const R = `r${run}`;
  const paths: Record<string, string[]> = { [R]: [R], [`${R}.c1`]: [R, `${R}.c1`], [`${R}.c1.g`]: [R, `${R}.c1`, `${R}.c1.g`], [`${R}.c2`]: [R, `${R}.c2`] };
  const callers = Object.keys(paths);
  const keys = callers.map((_, i) => `key_${run}_${i}`);
  let s = 7;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
  const events: YugongEvent[] = [];
  for (let i = 0; i < 240; i++) {
    const c = Math.floor(rand() * callers.length);
    const path = paths[callers[c] as string] as string[];
    const list = BigInt(1 + Math.floor(rand() * 90_000));
    const costs = path.map((_, d) => ((list * BigInt(1_000_000 + d * 250_000)) / 1_000_000n).toString());
    const day = pick(['2026-10-01', '2026-10-02', '2026-10-05', '2026-10-31', '2026-11-01']);
    const time = new Date(`${day}T${String(Math.floor(rand() * 24)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}Z`);
    const upstream = pick([`up_${run}_a`, `up_${run}_b`]);
    const status = pick(['ok', 'ok', 'ok', 'upstream_error', 'client_abort', 'rejected'] as const);
    events.push(
      makeEvent('usage.recorded', {
        id: `usage:${run}:${i}`,
        source: 'test',
        accountPath: path,
        time,
        data: {
          requestId: `req_${run}_${i}`,
          apiKeyId: keys[c] ?? '',
          endpoint: pick(['chat.completions', 'embeddings', 'audio.transcriptions'] as const),
          model: pick(['gpt-4o-mini', 'gpt-4o', 'whisper-1']),
          status,
          httpStatus: status === 'ok' ? 200 : status === 'rejected' ? 400 : 502,
          errorCode: status === 'ok' ? null : 'x',
          stream: rand() < 0.5,
          tokens: {
            prompt: Math.floor(rand() * 900),
            cached: Math.floor(rand() * 100),
            completion: Math.floor(rand() * 400),
            reasoning: Math.floor(rand() * 50),
            audioPrompt: 0,
            audioCompletion: 0,
            imagePrompt: 0,
            imageCompletion: 0,
          },
          images: 0,
          imageSize: null,
          imageQuality: null,
          audioMs: Math.floor(rand() * 5000),
          speechCharacters: 0,
          usageSource: 'upstream',
          costs,
          listCostNano: list.toString(),
          priceVersion: 'pv',
          holdId: null,
          attempts: [{ upstreamKeyId: upstream, status: 200, outcome: 'ok', latencyMs: 10, errorCode: null }],
          upstreamKeyId: upstream,
          upstreamOrg: `org-${run}`,
          latencyMs: 20 + Math.floor(rand() * 900),
          ttftMs: rand() < 0.5 ? 5 + Math.floor(rand() * 300) : null,
        },
      }),
    );
  }
  for (const [id, path] of Object.entries(paths)) {
    events.push(
      makeEvent('credit.granted', {
        id: `credit:${id}:${run}`,
        source: 'test',
        accountPath: path,
        time: new Date('2026-10-01T00:00:00Z'),
        data: { accountId: id, amountNano: '9007199254740993', note: 'big', idempotencyKey: id, grantedBy: 'operator' },
      }),
    );
  }
  return { events, paths, keys };
}

/** The same question to both engines' analytics: each route, group_by, interval, filter, format and cursor. */
function questions(root: string, child: string, key: string, models: string[]): string[] {
  const range = 'from=2026-10-01&to=2026-11-02';
  const qs: string[] = [];
  for (const account of [root, child]) {
    for (const group of ['none', 'model', 'api_key', 'sub_account']) {
      for (const interval of ['total', 'hour', 'day', 'month']) {
        if (interval === 'hour' && group !== 'none') continue;
        qs.push(`/usage?account_id=${account}&${interval === 'hour' ? 'from=2026-10-01&to=2026-10-06' : range}&group_by=${group}&interval=${interval}`);
      }
    }
    qs.push(`/usage?account_id=${account}&${range}&group_by=model&format=csv`);
    for (const m of models) qs.push(`/usage?account_id=${account}&${range}&model=${m}&interval=day`);
    qs.push(`/usage?account_id=${account}&${range}&api_key_id=${key}`);
  }
  for (const group of ['none', 'model', 'upstream_key', 'organization']) for (const interval of ['total', 'day']) qs.push(`/upstreams?${range}&group_by=${group}&interval=${interval}`);
  qs.push(`/line_items?account_id=${root}&${range}&format=csv`);
  qs.push(`/line_items?account_id=${root}&${range}&model=gpt-4o&status=ok&format=csv`);
  qs.push(`/line_items?account_id=${root}&${range}&sub_account=${child}&format=csv`);
  return qs;
}

describe('the SQL on a modern ClickHouse (chDB) answers as it does on 18.16', function () {
  this.timeout(900_000);
  const database = `yg_modern_${uid()}`;
  const run = uid();
  const { events, paths, keys } = fixture(run);
  const usage = events.filter((e): e is EventOf<'usage.recorded'> => e.type === 'usage.recorded');
  let modern: ChdbClient;
  let legacy: ClickHouseClient;
  let redis: Redis;
  let versions: { modern: string; legacy: string };
  const servers: Server[] = [];

  before(async function () {
    const setup = ensureChdb();
    if (!setup.ok) {
      // Reason: the modern engine (chDB) could not be installed here; said aloud, never silent, so the suite names why it was not checked.
      console.log(`      SKIPPED: no modern ClickHouse engine here: ${setup.reason}`);
      this.skip();
    }
    modern = new ChdbClient(setup.python, join(tmpdir(), `yg-chdb-${run}`), clickhouseSettings);
    const url = endpointsFromEnv().clickhouseUrl;
    const admin = createClient({ url });
    await admin.command({ query: `CREATE DATABASE ${database}` });
    await admin.close();
    legacy = createClient({ url, database, clickhouse_settings: clickhouseSettings });
    versions = { modern: await modern.ready(), legacy: String((await (await legacy.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>())[0]?.v) };
    console.log(`      engines: ClickHouse ${versions.legacy} and chDB's ClickHouse ${versions.modern}`);
    redis = new Redis(endpointsFromEnv().redisUrl);
    for (const [id, path] of Object.entries(paths)) {
      await redis.hset(redisKeys.accountRoots(), id, path[0] ?? id);
      await redis.hset(redisKeys.account(path[0] ?? id, id), { id, path: JSON.stringify(path) });
    }
  });

  after(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    await modern?.close();
    await legacy?.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await legacy?.close();
    redis?.disconnect();
  });

  it('applies every migration on a fresh database, in order, and a second run applies nothing', async () => {
    assert.ok(Number(versions.modern.split('.')[0]) >= 24, `a modern engine: ${versions.modern}`);
    const ids = migrations.map((m) => m.id).sort((a, b) => a - b);
    const first = await migrate(modern);
    assert.deepEqual(first.applied, ids);
    const second = await migrate(modern);
    assert.deepEqual([second.applied, second.alreadyApplied], [[], ids]);
    await migrate(legacy);
    const tables = async (c: ChdbClient | ClickHouseClient) =>
      (await (await c.query({ query: 'SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name', format: 'JSONEachRow' })).json<{ name: string; engine: string }>()).map(
        (t) => `${t.name} ${t.engine}`,
      );
    assert.deepEqual(await tables(modern), await tables(legacy));
  });

  it('the sink writes each event once on both, its exactly-once lookup finding what is stored', async () => {
    for (const c of [modern, legacy]) {
      const sink = createLineItemSink(createReplicaSet([c as unknown as ClickHouseClient], pino({ level: 'silent' })), createMetrics());
      await sink.write(events);
      await sink.write([...events.slice(0, 60), ...events.slice(-2)]);
      const [li] = await (await c.query({ query: 'SELECT count() AS n, uniqExact(event_id) AS u FROM line_items', format: 'JSONEachRow' })).json<{ n: string; u: string }>();
      assert.deepEqual(li, { n: String(usage.length), u: String(usage.length) });
      const [cr] = await (await c.query({ query: 'SELECT count() AS n, sum(amount_nano) AS s FROM credits', format: 'JSONEachRow' })).json<{ n: string; s: string }>();
      assert.deepEqual(cr, { n: '4', s: String(4n * 9_007_199_254_740_993n) }, 'a 64-bit sum arrives exact');
    }
  });

  it('every analytics route, group_by, interval, filter, format and cursor answers the same', async () => {
    const base = async (ch: ChdbClient | ClickHouseClient) => {
      const config = loadConfig({ YUGONG_CLICKHOUSE_URL: 'http://127.0.0.1:1', YUGONG_REDIS_URL: 'redis://127.0.0.1:1', YUGONG_ADMIN_TOKEN: TOKEN, YUGONG_LOG_LEVEL: 'silent' });
      const server = await new Promise<Server>((resolve) => {
        const s = createAnalyticsApp({ config, clickhouse: ch as unknown as ClickHouseClient, redis, log: pino({ level: 'silent' }) }).listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/analytics/v1`;
    };
    const [onModern, onLegacy] = [await base(modern), await base(legacy)];
    const ask = async (b: string, q: string) => {
      const r = await fetch(`${b}${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: r.status, text: await r.text() };
    };
    const root = `r${run}`;
    const qs = questions(root, `${root}.c1`, keys[1] ?? '', ['gpt-4o-mini', 'whisper-1']);
    for (const q of qs) {
      const [a, b] = [await ask(onModern, q), await ask(onLegacy, q)];
      assert.equal(a.status, 200, `${q}: ${a.text.slice(0, 300)}`);
      assert.equal(b.status, 200, `${q}: ${b.text.slice(0, 300)}`);
      assert.deepEqual(q.includes('format=csv') ? a.text : JSON.parse(a.text), q.includes('format=csv') ? b.text : JSON.parse(b.text), q);
    }
    // Line items page by page to the end, following each engine's own cursors.
    for (const filter of ['', '&model=gpt-4o', `&sub_account=${root}.c1`, '&status=client_abort']) {
      const pages = async (b: string) => {
        const out: unknown[] = [];
        let cursor = '';
        for (;;) {
          const r = JSON.parse((await ask(b, `/line_items?account_id=${root}&from=2026-10-01&to=2026-11-02&limit=37${filter}${cursor}`)).text) as {
            data: { event_id: string }[];
            next_cursor: string | null;
          };
          out.push(r.data);
          if (!r.next_cursor) return out;
          cursor = `&cursor=${encodeURIComponent(r.next_cursor)}`;
        }
      };
      const [a, b] = [await pages(onModern), await pages(onLegacy)];
      assert.ok(a.length > 1 || filter !== '', 'more than one page');
      assert.deepEqual(a, b, `line items${filter}`);
    }
    // The operator overview (its windows end now, so only the SQL is compared here, not the fixture).
    const overviews = await Promise.all(
      [onModern, onLegacy].map(async (b) => {
        const r = await ask(b, '/overview');
        assert.equal(r.status, 200, r.text);
        const { at: _at, ...rest } = JSON.parse(r.text) as Record<string, unknown>;
        return rest;
      }),
    );
    assert.deepEqual(overviews[0], overviews[1]);
    const one = await ask(onModern, `/line_items/usage:${run}:3?account_id=${root}`);
    assert.equal(one.status, 200);
    assert.deepEqual(JSON.parse(one.text), JSON.parse((await ask(onLegacy, `/line_items/usage:${run}:3?account_id=${root}`)).text));
    assert.ok(qs.length >= 40);
  });

  it('every Grafana dashboard query returns the same rows', async () => {
    const runOn = (c: ChdbClient | ClickHouseClient) => async (sql: string) => (await c.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    const queries = await dashboardQueries(runOn(legacy));
    assert.deepEqual(
      (await dashboardQueries(runOn(modern))).map((q) => q.sql),
      queries.map((q) => q.sql),
      'the variables resolve alike',
    );
    for (const q of queries) {
      const [a, b] = await Promise.all([runOn(modern)(q.sql).catch((e: Error) => assert.fail(`${q.name} on the modern engine: ${e.message}\n${q.sql}`)), runOn(legacy)(q.sql)]);
      assert.ok(b.length > 0, `${q.name} returns the fixture`);
      // Grafana orders by time itself; rows tied on a panel's ORDER BY may come in either order.
      const sorted = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();
      assert.deepEqual(sorted(a), sorted(b), q.name);
    }
  });
});
