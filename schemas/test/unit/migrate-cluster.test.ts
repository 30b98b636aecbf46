import assert from 'node:assert/strict';
import { LINE_ITEMS_FEED, migrations, replicatedStatements } from '../../src/index.js';

describe('migrations on a cluster (replicated form)', () => {
  const all = migrations.flatMap((m) => m.statements.flatMap((s) => replicatedStatements(s, 'yugong', 'db1', `m${m.id}`).map((r) => ({ id: m.id, s, r }))));

  it('makes and drops every table on all replicas, with a Replicated engine under a path of its own', () => {
    for (const { s, r } of all) {
      if (/^\s*(CREATE|DROP)\b/.test(s)) assert.match(r, /^\s*(CREATE|DROP) [A-Z ]+ db1\.\w+ ON CLUSTER yugong(\s|$)/, r);
      assert.doesNotMatch(r, /ENGINE = (Replacing|Summing|Aggregating)?MergeTree\(/, 'an unreplicated engine');
    }
    assert.deepEqual(replicatedStatements('CREATE TABLE IF NOT EXISTS t (a String) ENGINE = SummingMergeTree() ORDER BY a', 'c', 'db', 'm7'), [
      "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c (a String, batch_token String) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/t/m7', '{replica}') ORDER BY a",
    ]);
    const paths = all.map(({ r }) => /'\/clickhouse\/tables\/\{shard\}\/[^']+'/.exec(r)?.[0]).filter(Boolean);
    assert.equal(new Set(paths).size, paths.length, 'each table made has a ZooKeeper path of its own');
  });

  it("names every table with the database (distributed DDL runs in each replica's default database)", () => {
    for (const { r } of all) {
      for (const m of r.matchAll(/\b(FROM|TO|INTO) (\S+)/g)) assert.match(m[2] ?? '', /^db1\.\w+/, `${m[0]} in ${r.slice(0, 60)}`);
    }
    assert.deepEqual(
      replicatedStatements('INSERT INTO v SELECT 1 FROM line_items', 'c', 'db', 'm3'),
      ['INSERT INTO db.v SELECT 1, event_id AS batch_token\n    FROM db.line_items'],
      'a backfill reads line_items',
    );
  });

  it("feeds the rollups' views from a Null table of line_items' shape, which the sink fills with a second insert", () => {
    assert.deepEqual(replicatedStatements('CREATE MATERIALIZED VIEW v_mv TO v AS SELECT toDate(time) AS d FROM line_items', 'c', 'db', 'm3'), [
      `CREATE MATERIALIZED VIEW db.v_mv ON CLUSTER c TO db.v AS SELECT toDate(time) AS d, event_id AS batch_token\n    FROM db.${LINE_ITEMS_FEED}`,
    ]);
    const made = replicatedStatements(migrations[0]!.statements[0]!, 'c', 'db', 'm1');
    assert.equal(made.length, 2);
    assert.equal(made[1], `CREATE TABLE IF NOT EXISTS db.${LINE_ITEMS_FEED} ON CLUSTER c AS db.line_items ENGINE = Null`);
    for (const { r } of all) if (/^\s*CREATE MATERIALIZED VIEW/.test(r)) assert.doesNotMatch(r, /FROM db1\.line_items\b/, r.slice(0, 60));
  });

  it("gives every rollup row its batch's token, so two batches that sum alike are not taken for one", () => {
    const rollups = all.filter(({ r }) => /ENGINE = Replicated(Summing|Aggregating)MergeTree/.test(r));
    assert.equal(rollups.length, 7, 'two v1 and five v2 rollups');
    for (const { r } of rollups) assert.match(r, /, batch_token String\s*\) ENGINE/, r.slice(0, 60));
    for (const { r } of all.filter(({ r }) => /^\s*(CREATE MATERIALIZED VIEW|INSERT)/.test(r))) {
      assert.match(r, /(max\(event_id\)|event_id) AS batch_token\s+FROM db1\.line_items(_feed)?\b/, r.slice(0, 60));
      assert.equal(/GROUP BY/.test(r), /max\(event_id\) AS batch_token/.test(r), 'a grouped select takes the greatest id of its rows');
    }
    for (const { r } of all.filter(({ r }) => /ENGINE = ReplicatedReplacingMergeTree/.test(r))) assert.doesNotMatch(r, /batch_token/, 'line items and credits replace by their ids');
  });

  it('refuses a statement it has no replicated form for', () => {
    assert.throws(() => replicatedStatements('ALTER TABLE t ADD COLUMN x String', 'c', 'db', 'm9'), /no replicated form/);
  });
});
