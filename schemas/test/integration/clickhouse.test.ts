import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { endpointsFromEnv } from '@yugong/infra';
import { makeEvent } from '../../src/events.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { migrations } from '../../src/clickhouse/migrations.js';
import { toLineItemRow } from '../../src/clickhouse/line-items.js';
import { sqlString } from '../../src/clickhouse/sql.js';
import { sampleUsage } from '../../src/testing.js';

describe('ClickHouse migrations on the real server', function () {
  this.timeout(60_000);
  const database = `yg_test_${randomUUID().replace(/-/g, '')}`;
  let admin: ClickHouseClient;
  let client: ClickHouseClient;

  before(async () => {
    const url = endpointsFromEnv().clickhouseUrl;
    admin = createClient({ url });
    await admin.command({ query: `CREATE DATABASE ${database}` });
    client = createClient({ url, database });
  });
  after(async () => {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client.close();
    await admin.close();
  });

  it('applies every migration once and records it', async () => {
    const first = await migrate(client);
    assert.deepEqual(
      first.applied,
      migrations.map((m) => m.id),
    );
    assert.match(first.serverVersion, /^\d+\.\d+/);
    const second = await migrate(client);
    assert.deepEqual(second.applied, []);
    assert.deepEqual(
      second.alreadyApplied,
      migrations.map((m) => m.id),
    );
    const rows = await (await client.query({ query: 'SELECT id, name FROM schema_migrations ORDER BY id', format: 'JSONEachRow' })).json<{ id: number }>();
    assert.equal(rows.length, migrations.length);
  });

  it('stores line items exactly and rolls them up per account of the path', async () => {
    const events = [
      makeEvent('usage.recorded', {
        id: 'u1',
        source: 't',
        accountPath: ['root', 'kid'],
        time: new Date('2026-11-22T10:05:00Z'),
        data: sampleUsage({ requestId: 'r1', costs: ['9007199254740993', '13510798882111490'] }),
      }),
      makeEvent('usage.recorded', {
        id: 'u2',
        source: 't',
        accountPath: ['root', 'kid'],
        time: new Date('2026-11-22T10:45:00Z'),
        data: sampleUsage({ requestId: 'r2', costs: ['7', '11'], status: 'upstream_error' }),
      }),
      makeEvent('usage.recorded', { id: 'u3', source: 't', accountPath: ['root'], time: new Date('2026-11-22T11:01:00Z'), data: sampleUsage({ requestId: 'r3', costs: ['100'] }) }),
    ];
    await client.insert({ table: 'line_items', values: events.map(toLineItemRow), format: 'JSONEachRow' });

    const back = await (
      await client.query({
        query: `SELECT event_id, cost_nano, costs_nano, account_id, attempts_json FROM line_items WHERE root_account_id = ${sqlString('root')} ORDER BY event_id`,
        format: 'JSONEachRow',
      })
    ).json<{ event_id: string; cost_nano: string; costs_nano: string[]; account_id: string; attempts_json: string }>();
    assert.deepEqual(
      back.map((r) => [r.event_id, r.cost_nano, r.account_id]),
      [
        ['u1', '13510798882111490', 'kid'],
        ['u2', '11', 'kid'],
        ['u3', '100', 'root'],
      ],
    );
    assert.deepEqual(back[0]?.costs_nano, ['9007199254740993', '13510798882111490']);
    assert.deepEqual(JSON.parse(back[0]?.attempts_json ?? '[]'), events[0]?.data.attempts);

    const hourly = await (
      await client.query({
        query:
          'SELECT account_id, toString(bucket) AS bucket, sum(requests) AS requests, sum(errors) AS errors, sum(cost_nano) AS cost FROM usage_hourly GROUP BY account_id, bucket ORDER BY account_id, bucket',
        format: 'JSONEachRow',
      })
    ).json<Record<string, string>>();
    assert.deepEqual(hourly, [
      { account_id: 'kid', bucket: '2026-11-22 10:00:00', requests: '2', errors: '1', cost: '13510798882111501' },
      { account_id: 'root', bucket: '2026-11-22 10:00:00', requests: '2', errors: '1', cost: '9007199254741000' },
      { account_id: 'root', bucket: '2026-11-22 11:00:00', requests: '1', errors: '0', cost: '100' },
    ]);
    const daily = await (await client.query({ query: "SELECT sum(cost_nano) AS cost FROM usage_daily WHERE account_id = 'root'", format: 'JSONEachRow' })).json<{ cost: string }>();
    assert.equal(daily[0]?.cost, '9007199254741100');
  });
});
