import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';

const good = { YUGONG_KAFKA_BROKERS: 'a:1, b:2', YUGONG_REDIS_URL: 'redis://127.0.0.1:1', YUGONG_CLICKHOUSE_URL: 'http://127.0.0.1:2' };

describe('ledger configuration', () => {
  it('parses brokers, defaults and durations once', () => {
    const c = loadConfig(good);
    assert.deepEqual(c.kafkaBrokers, ['a:1', 'b:2']);
    assert.equal(c.dedupeTtlSeconds, 30 * 86_400);
    assert.equal(c.clickhouseDatabase, 'default');
    assert.deepEqual([c.clickhouseUrls, c.clickhouseCluster], [['http://127.0.0.1:2'], null]);
  });

  it('takes every replica of a replicated shard and its cluster', () => {
    const c = loadConfig({ ...good, YUGONG_CLICKHOUSE_URL: 'http://ch-1:8123, http://ch-2:8123', YUGONG_CLICKHOUSE_CLUSTER: 'yugong' });
    assert.deepEqual([c.clickhouseUrls, c.clickhouseCluster], [['http://ch-1:8123', 'http://ch-2:8123'], 'yugong']);
    assert.throws(() => loadConfig({ ...good, YUGONG_CLICKHOUSE_URL: 'http://ch-1:8123,ch-2' }), /YUGONG_CLICKHOUSE_URL/);
    assert.throws(() => loadConfig({ ...good, YUGONG_CLICKHOUSE_URL: ' , ' }), /YUGONG_CLICKHOUSE_URL/);
    assert.throws(() => loadConfig({ ...good, YUGONG_CLICKHOUSE_CLUSTER: 'a b' }), /YUGONG_CLICKHOUSE_CLUSTER/);
  });

  it('names every bad variable', () => {
    assert.throws(
      () => loadConfig({ ...good, YUGONG_REDIS_URL: 'nope', YUGONG_LEDGER_PORT: '99999' }),
      (err: Error) => {
        assert.match(err.message, /YUGONG_REDIS_URL/);
        assert.match(err.message, /YUGONG_LEDGER_PORT/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ ...good, YUGONG_CLICKHOUSE_DATABASE: 'x; DROP' }), /YUGONG_CLICKHOUSE_DATABASE/);
  });
});
