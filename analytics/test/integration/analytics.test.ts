import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { pino } from 'pino';
import { loadConfig as loadLedgerConfig, startLedgerService, type LedgerService } from '@yugong/ledger-consumer';
import { endpointsFromEnv, READONLY_USER, waitFor } from '@yugong/infra';
import { clickhouseSettings, makeEvent, partitionKeyFor, redisKeys, topicFor, type EventOf, type YugongEvent } from '@yugong/schemas';
import { loadConfig } from '../../src/config.js';
import { startAnalyticsService, type AnalyticsService } from '../../src/service.js';
import { parseCsv } from './csv-parse.js';

const TOKEN = 'analytics-test-token-0123456789';
const uid = () => randomUUID().replace(/-/g, '').slice(0, 10);

/** A deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('analytics API on events that went through Kafka, the ledger and ClickHouse', function () {
  this.timeout(120_000);
  const database = `yg_an_${uid()}`;
  let env: ReturnType<typeof endpointsFromEnv>;
  let kafka: Kafka;
  let ch: ClickHouseClient;
  let reader: ClickHouseClient;
  let redis: Redis;
  let producer: Producer;
  let ledger: LedgerService;
  let analytics: AnalyticsService;
  let analyticsEnv: Record<string, string>;
  let url: string;

  const R = `r-${uid()}`;
  const C1 = `c1-${uid()}`;
  const G = `g-${uid()}`;
  const C2 = `c2-${uid()}`;
  const paths: Record<string, string[]> = { [R]: [R], [C1]: [R, C1], [G]: [R, C1, G], [C2]: [R, C2] };
  const keys: Record<string, { id: string; secret: string }> = {};
  const models = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'];
  const statuses = ['ok', 'ok', 'ok', 'upstream_error', 'client_abort'] as const;
  const days = ['2026-10-01', '2026-10-02', '2026-10-31', '2026-11-01'];
  const usage: EventOf<'usage.recorded'>[] = [];
  // The topic keeps earlier runs' events, which the ledger replays into this database too.
  const run = uid();
  const upstreams = ['a', 'b', 'c'].map((k) => `up_${run}_${k}`);

  async function send(events: YugongEvent[]): Promise<void> {
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const e of events) byTopic.set(topicFor(e.type), [...(byTopic.get(topicFor(e.type)) ?? []), { key: partitionKeyFor(e), value: JSON.stringify(e) }]);
    await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
  }

  before(async () => {
    env = endpointsFromEnv();
    kafka = new Kafka({ clientId: 'analytics-test', brokers: env.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = createClient({ url: env.clickhouseUrl });
    await admin.command({ query: `CREATE DATABASE ${database}` });
    await admin.close();
    ch = createClient({ url: env.clickhouseUrl, database });
    // Its refusals are expected here; the client would log each one as an error.
    reader = createClient({ url: env.clickhouseUrl, database, username: READONLY_USER, password: '', clickhouse_settings: clickhouseSettings, log: { level: ClickHouseLogLevel.OFF } });
    redis = new Redis(env.redisUrl);
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    // Both services through their entry points' wiring; only their configuration is the test's.
    const infra = { YUGONG_KAFKA_BROKERS: env.kafkaBrokers.join(','), YUGONG_REDIS_URL: env.redisUrl, YUGONG_CLICKHOUSE_URL: env.clickhouseUrl, YUGONG_CLICKHOUSE_DATABASE: database };
    ledger = await startLedgerService(loadLedgerConfig({ ...infra, YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS: '50', YUGONG_GROUP_SUFFIX: `-${uid()}`, YUGONG_LEDGER_PORT: '0' }), pino({ level: 'silent' }));
    analyticsEnv = { ...infra, YUGONG_CLICKHOUSE_USER: READONLY_USER, YUGONG_ANALYTICS_PORT: '0', YUGONG_ADMIN_TOKEN: TOKEN, YUGONG_LOG_LEVEL: 'silent' };

    // The tree and its keys, as the proxy's admin API would emit them.
    const setup: YugongEvent[] = [];
    for (const [id, path] of Object.entries(paths)) {
      setup.push(
        makeEvent('account.created', {
          id: `account:${id}:created`,
          source: 'test',
          accountPath: path,
          data: {
            accountId: id,
            parentId: path.at(-2) ?? null,
            name: id,
            multiplierPpm: 1_000_000,
            creditLimitNano: null,
            limits: { rpm: 100, tpm: 50_000 },
            models: null,
            ipAllowlist: null,
            expiresAt: null,
          },
        }),
      );
      const secret = `sk-yg-${randomUUID().replace(/-/g, '')}`;
      keys[id] = { id: `key_${uid()}`, secret };
      setup.push(
        makeEvent('apikey.created', {
          id: `apikey:${keys[id].id}:created`,
          source: 'test',
          accountPath: path,
          data: {
            keyId: keys[id].id,
            accountId: id,
            hash: createHash('sha256').update(secret).digest('hex'),
            prefix: secret.slice(0, 10),
            name: id,
            models: null,
            limits: { rpm: 60, tpm: 10_000 },
            ipAllowlist: null,
            origins: null,
            expiresAt: null,
          },
        }),
      );
    }
    await send(setup);

    // 400 requests spread over days, hours, models, keys, statuses and the whole tree.
    const rand = rng(42);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
    for (let i = 0; i < 400; i++) {
      const caller = pick([R, C1, C1, G, C2]);
      const path = paths[caller] as string[];
      const list = BigInt(1 + Math.floor(rand() * 50_000));
      const costs = path.map((_, d) => ((list * BigInt(1_000_000 + d * 250_000)) / 1_000_000n).toString());
      const time = new Date(`${pick(days)}T${String(Math.floor(rand() * 24)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}:00Z`);
      const attempts = 1 + (rand() < 0.2 ? 1 : 0);
      const upstream = pick(upstreams);
      usage.push(
        makeEvent('usage.recorded', {
          id: `usage:${uid()}`,
          source: 'test',
          accountPath: path,
          time,
          data: {
            requestId: `req_${uid()}`,
            apiKeyId: keys[caller]?.id ?? '',
            endpoint: 'chat.completions',
            model: pick(models),
            status: pick(statuses),
            httpStatus: 200,
            errorCode: null,
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
            audioMs: 0,
            speechCharacters: 0,
            usageSource: 'upstream',
            costs,
            listCostNano: list.toString(),
            priceVersion: 'pv-test',
            holdId: null,
            attempts: Array.from({ length: attempts }, (_, a) => ({
              upstreamKeyId: upstream,
              status: a < attempts - 1 ? 429 : 200,
              outcome: a < attempts - 1 ? ('retryable' as const) : ('ok' as const),
              latencyMs: 10,
              errorCode: null,
            })),
            upstreamKeyId: upstream,
            upstreamOrg: upstream === upstreams[2] ? `org-${run}-2` : `org-${run}-1`,
            latencyMs: 20 + Math.floor(rand() * 900),
            ttftMs: rand() < 0.5 ? 5 + Math.floor(rand() * 300) : null,
          },
        }) as EventOf<'usage.recorded'>,
      );
    }
    await send(usage);
    // Delivered twice: the ledger must keep one line item each.
    await send(usage.slice(0, 50));
    // A view's rows land a moment after their line items: wait for the last rollup too.
    for (const table of ['line_items', 'usage_daily', 'usage_hourly', 'latency_daily', 'latency_hourly', 'upstream_hourly']) {
      const where = table === 'line_items' ? `root_account_id = '${R}'` : table === 'upstream_hourly' ? `upstream_key_id LIKE 'up_${run}_%'` : `account_id = '${R}'`;
      const count = table === 'line_items' ? 'count()' : table.startsWith('latency') ? 'sumMerge(requests_state)' : 'sum(requests)';
      await waitFor(
        `${table} in ClickHouse`,
        async () => {
          const [r] = await (await ch.query({ query: `SELECT ${count} AS n FROM ${table} WHERE ${where}`, format: 'JSONEachRow' })).json<{ n: string }>();
          return Number(r?.n) >= usage.length ? true : null;
        },
        60_000,
      );
    }

    analytics = await startAnalyticsService(loadConfig(analyticsEnv), pino({ level: 'silent' }));
    url = `${analytics.url}/analytics/v1`;
  });

  after(async () => {
    await analytics?.close();
    await ledger?.stop();
    await producer?.disconnect();
    if (!process.env.KEEP_DB) await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await Promise.all([ch.close(), reader.close()]);
    redis.disconnect();
  });

  const get = async (path: string, token = TOKEN) => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return { status: res.status, text, json: (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null) as Record<string, any> };
  };
  const as = (account: string) => keys[account]?.secret ?? '';

  /** Independent sums over the generated events, for one account of the tree. */
  function expected(account: string, keyOf: (e: EventOf<'usage.recorded'>) => string, filter: (e: EventOf<'usage.recorded'>) => boolean = () => true) {
    const out = new Map<string, { requests: number; errors: number; retried: number; prompt: number; completion: number; cost: bigint; upstream: bigint; latency: number[] }>();
    for (const e of usage) {
      const i = e.accountPath.indexOf(account);
      if (i < 0 || !filter(e)) continue;
      const k = keyOf(e);
      const s = out.get(k) ?? { requests: 0, errors: 0, retried: 0, prompt: 0, completion: 0, cost: 0n, upstream: 0n, latency: [] };
      s.requests++;
      if (e.data.status !== 'ok') s.errors++;
      if (e.data.attempts.length > 1) s.retried++;
      s.prompt += e.data.tokens.prompt;
      s.completion += e.data.tokens.completion;
      s.cost += BigInt(e.data.costs[i] ?? '0');
      s.upstream += BigInt(e.data.listCostNano);
      s.latency.push(e.data.latencyMs);
      out.set(k, s);
    }
    return out;
  }

  function assertRows(rows: Record<string, any>[], want: ReturnType<typeof expected>, keyOf: (r: Record<string, any>) => string, operator: boolean) {
    assert.deepEqual(rows.map(keyOf).sort(), [...want.keys()].sort());
    for (const r of rows) {
      const w = want.get(keyOf(r));
      assert.ok(w, keyOf(r));
      assert.deepEqual(
        [r.requests, r.errors, r.retried_requests, r.tokens.prompt, r.tokens.completion, r.cost_nano],
        [w.requests, w.errors, w.retried, w.prompt, w.completion, w.cost.toString()],
        keyOf(r),
      );
      if (operator) assert.equal(r.margin_nano, (w.cost - w.upstream).toString());
      else assert.equal(r.upstream_cost_nano, undefined, 'accounts never see the upstream cost');
      assert.equal(r.latency_ms.avg, Math.round((w.latency.reduce((a, b) => a + b, 0) / w.latency.length) * 10) / 10);
      const [lo, hi] = [Math.min(...w.latency), Math.max(...w.latency)];
      assert.ok(r.latency_ms.p50 >= lo && r.latency_ms.p50 <= r.latency_ms.p90 && r.latency_ms.p90 <= r.latency_ms.p99 && r.latency_ms.p99 <= hi, JSON.stringify(r.latency_ms));
    }
  }

  const range = 'from=2026-10-01&to=2026-11-30';

  it('totals, series and breakdowns equal the sums of the events, for the operator and the account', async () => {
    const all = () => 'all';
    for (const [token, operator] of [
      [TOKEN, true],
      [as(R), false],
    ] as const) {
      const total = await get(`/usage?account_id=${R}&${range}`, token);
      assert.equal(total.status, 200, total.text);
      assertRows(total.json.data, expected(R, all), all, operator);
      const daily = await get(`/usage?account_id=${R}&${range}&interval=day`, token);
      assertRows(
        daily.json.data,
        expected(R, (e) => e.time.slice(0, 10)),
        (r) => r.bucket,
        operator,
      );
      const monthly = await get(`/usage?account_id=${R}&${range}&interval=month`, token);
      assertRows(
        monthly.json.data,
        expected(R, (e) => `${e.time.slice(0, 7)}-01`),
        (r) => r.bucket,
        operator,
      );
      const hourly = await get(`/usage?account_id=${R}&from=2026-10-01&to=2026-10-02&interval=hour`, token);
      assertRows(
        hourly.json.data,
        expected(
          R,
          (e) => `${e.time.slice(0, 13).replace('T', ' ')}:00:00`,
          (e) => e.time < '2026-10-03',
        ),
        (r) => r.bucket,
        operator,
      );
      for (const [group, keyOf] of [
        ['model', (e: EventOf<'usage.recorded'>) => e.data.model],
        ['api_key', (e: EventOf<'usage.recorded'>) => e.data.apiKeyId],
        ['sub_account', (e: EventOf<'usage.recorded'>) => e.accountPath[1] ?? ''],
      ] as const) {
        const by = await get(`/usage?account_id=${R}&${range}&group_by=${group}`, token);
        assertRows(by.json.data, expected(R, keyOf), (r) => r.group, operator);
      }
    }
    // A filter narrows the figures; a sub-account sees its own price and its own subtree.
    const mini = await get(`/usage?account_id=${R}&${range}&model=gpt-4o-mini&group_by=api_key`);
    assertRows(
      mini.json.data,
      expected(
        R,
        (e) => e.data.apiKeyId,
        (e) => e.data.model === 'gpt-4o-mini',
      ),
      (r) => r.group,
      true,
    );
    const sub = await get(`/usage?${range}&group_by=sub_account`, as(C1));
    assert.equal(sub.json.account_id, C1);
    assertRows(
      sub.json.data,
      expected(C1, (e) => e.accountPath[2] ?? ''),
      (r) => r.group,
      false,
    );
  });

  it('the operator sees traffic by upstream key and organization with margin; accounts may not', async () => {
    for (const [group, keyOf] of [
      ['upstream_key', (e: EventOf<'usage.recorded'>) => e.data.upstreamKeyId ?? ''],
      ['organization', (e: EventOf<'usage.recorded'>) => e.data.upstreamOrg ?? ''],
    ] as const) {
      const r = await get(`/upstreams?${range}&group_by=${group}`);
      assert.equal(r.status, 200, r.text);
      // The topic is shared with other suites: compare the groups our events touch, by root cost.
      const want = new Map<string, { requests: number; charged: bigint; upstream: bigint }>();
      for (const e of usage) {
        const w = want.get(keyOf(e)) ?? { requests: 0, charged: 0n, upstream: 0n };
        w.requests++;
        w.charged += BigInt(e.data.costs[0] ?? '0');
        w.upstream += BigInt(e.data.listCostNano);
        want.set(keyOf(e), w);
      }
      for (const [k, w] of want) {
        const row = r.json.data.find((x: { group: string }) => x.group === k);
        assert.deepEqual([row?.requests, row?.cost_nano, row?.margin_nano], [w.requests, w.charged.toString(), (w.charged - w.upstream).toString()], k);
      }
    }
    assert.equal((await get(`/upstreams?${range}`, as(R))).status, 403);
  });

  it('pages through line items without skipping or repeating one; filters are exact', async () => {
    const pageAll = async (query: string, token = TOKEN) => {
      const seen: Record<string, any>[] = [];
      let cursor: string | null = null;
      do {
        const r = await get(`/line_items?${query}&limit=37${cursor ? `&cursor=${cursor}` : ''}`, token);
        assert.equal(r.status, 200, r.text);
        seen.push(...r.json.data);
        cursor = r.json.next_cursor;
      } while (cursor);
      return seen;
    };
    const items = await pageAll(`account_id=${R}&${range}`);
    const ids = items.map((i) => i.event_id);
    assert.equal(new Set(ids).size, ids.length, 'no line item repeated');
    assert.deepEqual([...ids].sort(), usage.map((e) => e.id).sort(), 'none skipped, the duplicates delivered once');
    const times = items.map((i) => i.time);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    for (const [query, want] of [
      [`account_id=${R}&${range}&model=gpt-4o`, (e: EventOf<'usage.recorded'>) => e.data.model === 'gpt-4o'],
      [`account_id=${R}&${range}&status=upstream_error`, (e: EventOf<'usage.recorded'>) => e.data.status === 'upstream_error'],
      [`account_id=${R}&${range}&api_key_id=${keys[C2]?.id}`, (e: EventOf<'usage.recorded'>) => e.data.apiKeyId === keys[C2]?.id],
      [`account_id=${R}&${range}&sub_account=${C1}`, (e: EventOf<'usage.recorded'>) => e.accountPath.includes(C1)],
      [`account_id=${R}&from=2026-10-02&to=2026-10-31`, (e: EventOf<'usage.recorded'>) => e.time >= '2026-10-02' && e.time < '2026-11-01'],
    ] as const) {
      const got = (await pageAll(query)).map((i) => i.event_id).sort();
      assert.deepEqual(
        got,
        usage
          .filter(want)
          .map((e) => e.id)
          .sort(),
        query,
      );
    }
    // A sub-account's key: only its subtree, at its own price, with the path cut at itself.
    const mine = await pageAll(range, as(C1));
    assert.deepEqual(
      mine.map((i) => i.event_id).sort(),
      usage
        .filter((e) => e.accountPath.includes(C1))
        .map((e) => e.id)
        .sort(),
    );
    for (const i of mine) {
      const e = usage.find((u) => u.id === i.event_id);
      assert.equal(i.cost_nano, e?.data.costs[1]);
      assert.equal(i.path[0], C1);
      assert.equal(i.upstream_key_id, undefined);
    }
  });

  it('one line item shows every field, its price version and its attempts', async () => {
    const e = usage.find((u) => u.accountPath.length === 3 && u.data.attempts.length === 2) ?? usage[0];
    assert.ok(e);
    const op = await get(`/line_items/${encodeURIComponent(e.id)}?account_id=${R}`);
    assert.equal(op.status, 200, op.text);
    assert.equal(op.json.price_version, 'pv-test');
    assert.deepEqual(op.json.path_costs_nano, e.data.costs);
    assert.equal(op.json.prompt_tokens, e.data.tokens.prompt);
    assert.equal(op.json.ttft_ms, e.data.ttftMs);
    assert.deepEqual(op.json.attempt_details, e.data.attempts);
    const own = await get(`/line_items/${encodeURIComponent(e.id)}`, as(G));
    assert.equal(own.json.cost_nano, e.data.costs[2]);
    assert.deepEqual(own.json.path, [G]);
    assert.ok(own.json.attempt_details.every((a: Record<string, unknown>) => !('upstreamKeyId' in a)));
    assert.equal((await get(`/line_items/${encodeURIComponent(e.id)}`, as(C2))).status, 404);
  });

  it('CSV exports parse back to the same rows', async () => {
    const csv = await get(`/line_items?account_id=${R}&${range}&format=csv`);
    assert.equal(csv.status, 200);
    const rows = parseCsv(csv.text);
    const header = rows.shift() ?? [];
    const col = (name: string) => header.indexOf(name);
    assert.equal(rows.length, usage.length);
    for (const row of rows) {
      const e = usage.find((u) => u.id === row[col('event_id')]);
      assert.ok(e, row[col('event_id')]);
      assert.equal(row[col('cost_nano')], e.data.costs[0]);
      assert.equal(Number(row[col('completion_tokens')]), e.data.tokens.completion);
      assert.equal(row[col('model')], e.data.model);
    }
    const json = (await get(`/usage?account_id=${R}&${range}&group_by=model`)).json.data as Record<string, any>[];
    const table = parseCsv((await get(`/usage?account_id=${R}&${range}&group_by=model&format=csv`)).text);
    const h = table.shift() ?? [];
    assert.deepEqual(
      table.map((r) => [r[h.indexOf('group')], r[h.indexOf('requests')], r[h.indexOf('cost_nano')], r[h.indexOf('latency_ms_p90')]]),
      json.map((r) => [r.group, String(r.requests), r.cost_nano, String(r.latency_ms.p90)]),
    );
  });

  it('sub-accounts cannot read outside their subtree', async () => {
    for (const q of [
      `/usage?account_id=${R}&${range}`,
      `/usage?account_id=${C2}&${range}`,
      `/line_items?account_id=${C2}&${range}`,
      `/line_items?${range}&sub_account=${C2}`,
      `/usage?account_id=nobody-${uid()}&${range}`,
    ]) {
      const r = await get(q, as(C1));
      assert.equal(r.status, 404, q);
      assert.equal(r.json.error.code, 'account_not_found');
    }
    assert.equal((await get(`/usage?account_id=${G}&${range}`, as(C1))).status, 200);
    assert.equal((await get(`/usage?${range}`, 'sk-yg-wrong')).status, 401);
    assert.equal((await get(`/usage?${range}`, 'not-the-token')).status, 401);
  });

  it('bad input gets a clear 400 and no query is built from user text', async () => {
    const bad = [
      `/usage?account_id=${R}&from=2026-02-30&to=2026-03-01`,
      `/usage?account_id=${R}&from=2026-11-02&to=2026-11-01`,
      `/usage?account_id=${R}&from=2000-01-01&to=2026-11-01`,
      `/usage?account_id=${R}&${range}&interval=hour`,
      `/usage?account_id=${R}&${range}&group_by=colour`,
      `/usage?account_id=${R}&${range}&interval=week`,
      `/usage?account_id=${R}&${range}&format=xml`,
      `/usage?account_id=${R}'%20OR%201=1--&${range}`,
      `/usage?account_id=${R}&${range}&model=x'%3B%20DROP%20TABLE%20line_items`,
      `/usage?account_id=${R}&${range}&api_key_id=1%20OR%201`,
      `/line_items?account_id=${R}&${range}&limit=100000`,
      `/line_items?account_id=${R}&${range}&limit=0`,
      `/line_items?account_id=${R}&${range}&cursor=not-a-cursor!`,
      `/line_items?account_id=${R}&${range}&cursor=${Buffer.from(JSON.stringify([1, "x' OR '1"])).toString('base64url')}`,
      `/line_items?account_id=${R}&${range}&status=everything`,
      `/line_items?account_id=${R}&from=2026-01-01`,
      `/line_items/${encodeURIComponent("x' OR 1=1")}?account_id=${R}`,
      `/rate_limits?api_key_id=key_x'`,
    ];
    for (const q of bad) {
      const r = await get(q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.ok(r.json.error.message.length > 5);
    }
    const [n] = await (await ch.query({ query: 'SELECT count() AS n FROM line_items', format: 'JSONEachRow' })).json<{ n: string }>();
    assert.ok(Number(n?.n) >= usage.length, 'the table is still there');
  });

  it("reports this minute's use against a key's limits", async () => {
    const minute = Math.floor(Date.now() / 60_000);
    const key = keys[C1]?.id ?? '';
    // What the admission script counts for one admitted request of 1,234 tokens.
    await redis
      .multi()
      .incr(redisKeys.rpm(R, `k:${key}`, minute))
      .incrby(redisKeys.tpm(R, `k:${key}`, minute), 1234)
      .incr(redisKeys.rpm(R, `a:${C1}`, minute))
      .incrby(redisKeys.tpm(R, `a:${C1}`, minute), 1234)
      .exec();
    const r = await get('/rate_limits', as(C1));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.key, { rpm: { limit: 60, used: 1, remaining: 59 }, tpm: { limit: 10_000, used: 1234, remaining: 8766 } });
    assert.deepEqual(r.json.accounts.find((a: { account_id: string }) => a.account_id === C1).rpm, { limit: 100, used: 1, remaining: 99 });
    assert.equal((await get(`/rate_limits?api_key_id=${keys[C2]?.id}`, as(C1))).status, 404);
    assert.equal((await get(`/rate_limits?account_id=${R}&api_key_id=${key}`)).status, 200);
  });

  it('the dashboards user can read but not write', async () => {
    await assert.rejects(reader.command({ query: `INSERT INTO line_items (event_id) VALUES ('x')` }), /readonly|Cannot (execute|insert)|privilege/i);
    await assert.rejects(reader.command({ query: 'DROP TABLE line_items' }), /readonly|Cannot|privilege/i);
  });
});
