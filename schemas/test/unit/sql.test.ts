import assert from 'node:assert/strict';
import { sqlDateTime, sqlIdentifier, sqlInt, sqlString, sqlStringSet, toClickHouseDateTime } from '../../src/clickhouse/sql.js';

describe('ClickHouse literals', () => {
  it('escapes quotes, backslashes and control characters', () => {
    assert.equal(sqlString("it's"), "'it\\'s'");
    assert.equal(sqlString('a\\b'), "'a\\\\b'");
    assert.equal(sqlString('x\ny\t\0'), "'x\\ny\\t\\0'");
    assert.equal(sqlString("'; DROP TABLE line_items; --"), "'\\'; DROP TABLE line_items; --'");
    assert.equal(sqlStringSet(['a', "b'"]), "('a', 'b\\'')");
  });

  it('formats integers, dates and identifiers strictly', () => {
    assert.equal(sqlInt(42), '42');
    assert.equal(sqlInt(9007199254740993n), '9007199254740993');
    assert.throws(() => sqlInt(1.5));
    assert.equal(toClickHouseDateTime(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02 03:04:05');
    assert.equal(sqlDateTime(new Date('2026-01-02T03:04:05Z')), "toDateTime('2026-01-02 03:04:05', 'UTC')");
    assert.throws(() => sqlDateTime(new Date('nope')));
    assert.equal(sqlIdentifier('model', ['model', 'api_key_id'] as const), 'model');
    assert.throws(() => sqlIdentifier('model; DROP' as 'model', ['model']));
  });
});
