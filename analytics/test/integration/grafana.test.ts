import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { endpointsFromEnv, READONLY_USER, repoRoot } from '@yugong/infra';
import { createMetrics as ledgerMetrics } from '@yugong/ledger-consumer';
import { createProxyMetrics } from '@yugong/proxy';
import { makeEvent, migrate, sqlString, toLineItemRow, type EventData } from '@yugong/schemas';

interface Target {
  datasource: { uid: string };
  rawSql?: string;
  expr?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  panels: { title: string; targets: Target[] }[];
  templating: { list: { name: string; datasource: { uid: string }; query: string }[] };
}

const dir = join(repoRoot, 'infra', 'grafana', 'dashboards');
const dashboards = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Dashboard);

const FROM = Math.floor(Date.parse('2026-10-01T00:00:00Z') / 1000);
const TO = Math.floor(Date.parse('2026-10-08T00:00:00Z') / 1000);

/** The grafana-clickhouse-datasource macros the dashboards use, expanded as the plugin does. */
function expand(sql: string, vars: Record<string, string>): string {
  const day = (s: number) => sqlString(new Date(s * 1000).toISOString().slice(0, 10));
  const out = sql
    .replace(/\$__timeFilter\(([\w.]+)\)/g, (_m, c: string) => `${c} >= toDateTime(${FROM}) AND ${c} <= toDateTime(${TO})`)
    .replace(/\$__dateFilter\(([\w.]+)\)/g, (_m, c: string) => `${c} >= toDate(${day(FROM)}) AND ${c} <= toDate(${day(TO)})`)
    .replace(/\$__fromTime/g, `toDateTime(${FROM})`)
    .replace(/\$__toTime/g, `toDateTime(${TO})`)
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a?: string, b?: string) => vars[a ?? b ?? ''] ?? m);
  assert.doesNotMatch(out, /\$/, `an unexpanded macro or variable in: ${out}`);
  return out;
}

describe('Grafana dashboards', function () {
  this.timeout(60_000);
  const database = `yg_gf_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  let admin: ClickHouseClient;
  let reader: ClickHouseClient;

  before(async () => {
    const url = endpointsFromEnv().clickhouseUrl;
    const server = createClient({ url });
    await server.command({ query: `CREATE DATABASE ${database}` });
    await server.close();
    admin = createClient({ url, database });
    await migrate(admin);
    const data = (costs: string[]): EventData<'usage.recorded'> => ({
      requestId: randomUUID(), apiKeyId: 'key_a', endpoint: 'chat.completions', model: 'gpt-4o-mini', status: 'ok', httpStatus: 200, errorCode: null, stream: true,
      tokens: { prompt: 10, cached: 2, completion: 5, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 },
      images: 0, imageSize: null, imageQuality: null, audioMs: 0, speechCharacters: 0, usageSource: 'upstream', costs, listCostNano: costs[0] ?? '0',
      priceVersion: 'v1', holdId: null, attempts: [], upstreamKeyId: 'up_1', upstreamOrg: 'org-1', latencyMs: 120, ttftMs: 40,
    });
    const rows = [
      makeEvent('usage.recorded', { id: 'g1', source: 't', accountPath: ['acme'], time: new Date('2026-10-02T10:00:00Z'), data: data(['100']) }),
      makeEvent('usage.recorded', { id: 'g2', source: 't', accountPath: ['acme', 'shop'], time: new Date('2026-10-03T11:30:00Z'), data: data(['100', '150']) }),
    ].map(toLineItemRow);
    await admin.insert({ table: 'line_items', values: rows, format: 'JSONEachRow' });
    reader = createClient({ url, database, username: READONLY_USER, password: '', log: { level: ClickHouseLogLevel.OFF } });
  });

  after(async () => {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await Promise.all([admin.close(), reader.close()]);
  });

  it('are provisioned with unique uids and the data sources they name', () => {
    assert.ok(dashboards.length >= 6);
    assert.equal(new Set(dashboards.map((d) => d.uid)).size, dashboards.length);
    const provisioned = readFileSync(join(repoRoot, 'infra', 'grafana', 'provisioning', 'datasources', 'yugong.yaml'), 'utf8');
    const uids = new Set([...provisioned.matchAll(/uid:\s*(\S+)/g)].map((m) => m[1]));
    for (const d of dashboards) for (const p of d.panels) for (const t of p.targets) assert.ok(uids.has(t.datasource.uid), `${d.title} / ${p.title}: ${t.datasource.uid}`);
  });

  it('run every ClickHouse query, macros expanded, as the read-only user without an error', async () => {
    let ran = 0;
    for (const d of dashboards) {
      const vars: Record<string, string> = {};
      for (const v of d.templating.list) {
        const rows = await (await reader.query({ query: expand(v.query, {}), format: 'JSONEachRow' })).json<Record<string, string>>();
        vars[v.name] = Object.values(rows[0] ?? {})[0] ?? '';
        assert.ok(vars[v.name], `${d.title}: variable ${v.name} has values`);
      }
      for (const p of d.panels) {
        for (const t of p.targets.filter((x) => x.rawSql)) {
          const sql = expand(t.rawSql ?? '', vars);
          const rows = await reader.query({ query: sql, format: 'JSONEachRow' }).then((r) => r.json(), (e: Error) => assert.fail(`${d.title} / ${p.title}: ${e.message}\n${sql}`));
          assert.ok(rows.length > 0, `${d.title} / ${p.title} returns the test data`);
          ran++;
        }
      }
    }
    assert.ok(ran >= 15, `${ran} queries ran`);
  });

  it('name only metrics that the proxy and the ledger export', async () => {
    const exported = (await createProxyMetrics().registry.metrics()) + (await ledgerMetrics().registry.metrics());
    const names = new Set([...exported.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    for (const d of dashboards) {
      for (const p of d.panels) {
        for (const t of p.targets.filter((x) => x.expr)) {
          for (const [m] of (t.expr ?? '').matchAll(/yugong_[a-z_]+/g)) {
            assert.ok(names.has(m) || names.has(m.replace(/_(bucket|sum|count)$/, '')), `${d.title} / ${p.title}: ${m} is not exported`);
          }
        }
      }
    }
  });
});
