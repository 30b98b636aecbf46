import assert from 'node:assert/strict';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { clickhouseLogging } from '../../src/index.js';

describe('ClickHouse client messages as structured log lines', () => {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const sink = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg })])) as never;

  it('maps each level and keeps the module, the arguments and the error message', () => {
    const logging = clickhouseLogging(sink);
    assert.equal(logging.level, ClickHouseLogLevel.WARN);
    const logger = new logging.LoggerClass();
    logger.error({ module: 'Connection', message: 'Query: HTTP request error.', args: { query_id: 'q1' }, err: new Error('connect ECONNREFUSED 127.0.0.1:1') });
    logger.warn({ module: 'Client', message: 'slow' });
    logger.trace({ module: 'Client', message: 'noise' });
    assert.deepEqual(lines, [
      { level: 'error', obj: { component: 'clickhouse-client', module: 'Connection', query_id: 'q1', err: 'connect ECONNREFUSED 127.0.0.1:1' }, msg: 'Query: HTTP request error.' },
      { level: 'warn', obj: { component: 'clickhouse-client', module: 'Client' }, msg: 'slow' },
      { level: 'debug', obj: { component: 'clickhouse-client', module: 'Client' }, msg: 'noise' },
    ]);
  });

  it('receives what a client reports of a server that refuses connections', async () => {
    lines.length = 0;
    const client = createClient({ url: 'http://127.0.0.1:1', log: clickhouseLogging(sink), request_timeout: 2000 });
    await assert.rejects(client.query({ query: 'SELECT 1', format: 'JSONEachRow' }));
    await client.close();
    const refused = lines.find((l) => l.level === 'error');
    assert.ok(refused, JSON.stringify(lines));
    assert.equal(refused.obj.component, 'clickhouse-client');
    assert.match(String(refused.obj.err), /ECONNREFUSED/);
  });
});
