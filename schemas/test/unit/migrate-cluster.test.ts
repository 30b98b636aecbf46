import assert from 'node:assert/strict';
import { migrations, replicatedStatement } from '../../src/index.js';

describe('migrations on a cluster (replicated form)', () => {
  const all = migrations.flatMap((m) => m.statements.map((s) => ({ id: m.id, s, r: replicatedStatement(s, 'yugong', 'db1', `m${m.id}`) })));

  it('makes and drops every table on all replicas, with a Replicated engine under a path of its own', () => {
    for (const { s, r } of all) {
      if (/^\s*(CREATE|DROP)\b/.test(s)) assert.match(r, /^\s*(CREATE|DROP) [A-Z ]+ db1\.\w+ ON CLUSTER yugong(\s|$)/, r);
      assert.doesNotMatch(r, /ENGINE = (Replacing|Summing|Aggregating)?MergeTree\(/, 'an unreplicated engine');
    }
    assert.equal(
      replicatedStatement('CREATE TABLE IF NOT EXISTS t (a String) ENGINE = SummingMergeTree() ORDER BY a', 'c', 'db', 'm7'),
      "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c (a String) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/t/m7', '{replica}') ORDER BY a",
    );
    const paths = all.map(({ r }) => /'\/clickhouse\/tables\/\{shard\}\/[^']+'/.exec(r)?.[0]).filter(Boolean);
    assert.equal(new Set(paths).size, paths.length, 'each table made has a ZooKeeper path of its own');
  });

  it('names every table with the database (distributed DDL runs in each replica\'s default database)', () => {
    for (const { r } of all) {
      for (const m of r.matchAll(/\b(FROM|TO|INTO) (\S+)/g)) assert.match(m[2] ?? '', /^db1\.\w+/, `${m[0]} in ${r.slice(0, 60)}`);
    }
    assert.equal(
      replicatedStatement('CREATE MATERIALIZED VIEW v_mv TO v AS SELECT toDate(time) AS d FROM line_items', 'c', 'db', 'm3'),
      'CREATE MATERIALIZED VIEW db.v_mv ON CLUSTER c TO db.v AS SELECT toDate(time) AS d FROM db.line_items',
    );
    assert.equal(replicatedStatement('INSERT INTO v SELECT 1 FROM line_items', 'c', 'db', 'm3'), 'INSERT INTO db.v SELECT 1 FROM db.line_items');
  });

  it('refuses a statement it has no replicated form for', () => {
    assert.throws(() => replicatedStatement('ALTER TABLE t ADD COLUMN x String', 'c', 'db', 'm9'), /no replicated form/);
  });
});
