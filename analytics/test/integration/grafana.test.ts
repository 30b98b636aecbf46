import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { endpointsFromEnv, READONLY_USER, repoRoot } from '@yugong/infra';
import { createMetrics as ledgerMetrics } from '@yugong/ledger-consumer';
import { createProxyMetrics } from '@yugong/proxy';
import { makeEvent, migrate, toLineItemRow, type EventData } from '@yugong/schemas';
import { dashboardQueries, dashboards } from './grafana-queries.js';

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
      requestId: randomUUID(),
      apiKeyId: 'key_a',
      endpoint: 'chat.completions',
      model: 'gpt-4o-mini',
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      stream: true,
      tokens: { prompt: 10, cached: 2, completion: 5, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 },
      images: 0,
      imageSize: null,
      imageQuality: null,
      audioMs: 0,
      speechCharacters: 0,
      usageSource: 'upstream',
      costs,
      listCostNano: costs[0] ?? '0',
      priceVersion: 'v1',
      holdId: null,
      attempts: [],
      upstreamKeyId: 'up_1',
      upstreamOrg: 'org-1',
      latencyMs: 120,
      ttftMs: 40,
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
    const run = async (sql: string) => (await reader.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    for (const q of await dashboardQueries(run)) {
      const rows = await run(q.sql).catch((e: Error) => assert.fail(`${q.name}: ${e.message}\n${q.sql}`));
      assert.ok(rows.length > 0, `${q.name} returns the test data`);
      ran++;
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
