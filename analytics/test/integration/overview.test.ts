import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import { endpointsFromEnv } from '@yugong/infra';
import { makeEvent, migrate, toLineItemRow, type EventData } from '@yugong/schemas';
import { createAnalyticsApp } from '../../src/app.js';

const TOKEN = 'analytics-test-token-0123456789';

function usage(costs: string[], tokens: number, status: EventData<'usage.recorded'>['status'] = 'ok'): EventData<'usage.recorded'> {
  return {
    requestId: randomUUID(), apiKeyId: 'k', endpoint: 'chat.completions', model: 'gpt-4o', status, httpStatus: 200, errorCode: null, stream: false,
    tokens: { prompt: tokens, cached: 1, completion: 2 * tokens, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 },
    images: 0, imageSize: null, imageQuality: null, audioMs: 0, speechCharacters: 0, usageSource: 'upstream', costs, listCostNano: costs[0] ?? '0',
    priceVersion: 'v', holdId: null, attempts: [], upstreamKeyId: null, upstreamOrg: null, latencyMs: 1, ttftMs: null,
  };
}

describe('analytics overview on the real ClickHouse', function () {
  this.timeout(30_000);
  let ch: ClickHouseClient;
  let url: string;
  let close: () => void;
  const database = `yg_an_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

  before(async () => {
    const base = endpointsFromEnv().clickhouseUrl;
    const admin = createClient({ url: base });
    await admin.command({ query: `CREATE DATABASE ${database}` });
    await admin.close();
    ch = createClient({ url: base, database });
    await migrate(ch);
    const server = createAnalyticsApp({ config: { clickhouseUrl: base, clickhouseDatabase: database, port: 0, host: '127.0.0.1', adminToken: TOKEN, logLevel: 'silent' }, clickhouse: ch, log: pino({ level: 'silent' }) }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  after(async () => {
    close();
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch.close();
  });

  it('equals the sums of the events, per account of the path and within the range', async () => {
    const events = [
      makeEvent('usage.recorded', { id: 'a1', source: 't', accountPath: ['r', 'c'], time: new Date('2026-11-01T10:00:00Z'), data: usage(['100', '150'], 10) }),
      makeEvent('usage.recorded', { id: 'a2', source: 't', accountPath: ['r'], time: new Date('2026-11-02T23:59:59Z'), data: usage(['7'], 3, 'upstream_error') }),
      makeEvent('usage.recorded', { id: 'a3', source: 't', accountPath: ['r'], time: new Date('2026-11-03T00:00:00Z'), data: usage(['1000'], 5) }),
    ];
    await ch.insert({ table: 'line_items', values: events.map(toLineItemRow), format: 'JSONEachRow' });
    const get = async (q: string) => {
      const res = await fetch(`${url}/analytics/v1/overview?${q}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: res.status, json: (await res.json()) as Record<string, any> };
    };
    const root = await get('account_id=r&from=2026-11-01&to=2026-11-02');
    assert.equal(root.status, 200);
    assert.equal(root.json.requests, 2);
    assert.equal(root.json.errors, 1);
    assert.equal(root.json.cost_nano, '107');
    assert.deepEqual(root.json.tokens, { prompt: 13, cached: 2, completion: 26 });
    const child = await get('account_id=c&from=2026-11-01&to=2026-11-30');
    assert.equal(child.json.cost_nano, '150');
    assert.equal((await get('account_id=r&from=2026-11-03&to=2026-11-01')).status, 400);
    assert.equal((await get("account_id=r'--&from=2026-11-01&to=2026-11-02")).status, 400);
    const noToken = await fetch(`${url}/analytics/v1/overview?account_id=r&from=2026-11-01&to=2026-11-02`);
    assert.equal(noToken.status, 401);
  });
});
