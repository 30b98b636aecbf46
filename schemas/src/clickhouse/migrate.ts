import { sqlInt, sqlString } from './sql.js';
import { migrations as allMigrations, type Migration } from './migrations.js';

/** The little of a ClickHouse client the runner needs; @clickhouse/client fits it. */
export interface ClickHouseLike {
  command(params: { query: string }): Promise<unknown>;
  query(params: { query: string; format: 'JSONEachRow' }): Promise<{ json<T>(): Promise<T[]> }>;
}

export interface MigrationReport {
  serverVersion: string;
  applied: number[];
  alreadyApplied: number[];
}

const LEDGER = 'schema_migrations';

/**
 * Applies the migrations not yet recorded, in order, recording each after its statements
 * succeed. Statements are idempotent (IF NOT EXISTS), so a run cut between a statement and
 * its record is simply repeated.
 */
export async function migrate(client: ClickHouseLike, migrations: Migration[] = allMigrations): Promise<MigrationReport> {
  const [server] = await (await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' })).json<{
    version: string;
  }>();
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${LEDGER} (id UInt32, name String, applied_at DateTime) ENGINE = MergeTree() ORDER BY id`,
  });
  const rows = await (await client.query({ query: `SELECT DISTINCT id FROM ${LEDGER}`, format: 'JSONEachRow' })).json<{
    id: number | string;
  }>();
  const done = new Set(rows.map((r) => Number(r.id)));
  const report: MigrationReport = { serverVersion: server?.version ?? 'unknown', applied: [], alreadyApplied: [] };
  for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
    if (done.has(m.id)) {
      report.alreadyApplied.push(m.id);
      continue;
    }
    for (const statement of m.statements) await client.command({ query: statement });
    await client.command({
      query: `INSERT INTO ${LEDGER} (id, name, applied_at) VALUES (${sqlInt(m.id)}, ${sqlString(m.name)}, now())`,
    });
    report.applied.push(m.id);
  }
  return report;
}
