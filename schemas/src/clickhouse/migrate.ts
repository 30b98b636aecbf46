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

export interface MigrateOptions {
  /**
   * A cluster of the servers' remote_servers: every table is made on all its replicas
   * (ON CLUSTER) with a Replicated engine, coordinated by the servers' ZooKeeper.
   */
  cluster?: string;
}

const LEDGER = 'schema_migrations';
const NAME = '[A-Za-z_][A-Za-z0-9_]*';
/** A table named after one of these words, unless it is already qualified or is a function. */
const TABLE_REFERENCE = new RegExp(`\\b(FROM|TO|INTO|TABLE|VIEW|EXISTS)(\\s+)(?!IF\\b)(${NAME})\\b(?![.(])`, 'g');
const DDL_HEAD = new RegExp(`^(\\s*(?:CREATE (?:TABLE|MATERIALIZED VIEW)|DROP TABLE)(?: IF (?:NOT )?EXISTS)? ${NAME}\\.(${NAME}))`);
const ENGINE = /ENGINE = (Replacing|Summing|Aggregating|)MergeTree\(\)/;

/**
 * The replicated form of one of our statements. Distributed DDL runs on each replica in its
 * default database, so every table is named with ours; each table's ZooKeeper path carries
 * the migration's tag, so a table dropped and made anew by a later migration never meets the
 * old one's replicas (18.16 leaves a dropped table's path behind). Inserts run once, on the
 * server the runner is connected to, and reach the other replicas by replication.
 */
export function replicatedStatement(statement: string, cluster: string, database: string, tag: string): string {
  const qualified = statement.replace(TABLE_REFERENCE, (_, word: string, space: string, table: string) => `${word}${space}${database}.${table}`);
  if (/^\s*INSERT\b/.test(qualified)) return qualified;
  const head = DDL_HEAD.exec(qualified);
  if (!head) throw new Error(`no replicated form for: ${statement.slice(0, 80)}`);
  const table = head[2] ?? '';
  return `${head[1]} ON CLUSTER ${cluster}${qualified.slice(head[0].length)}`.replace(
    ENGINE,
    (_, kind: string) => `ENGINE = Replicated${kind}MergeTree('/clickhouse/tables/{shard}/${database}/${table}/${tag}', '{replica}')`,
  );
}

/**
 * Applies the migrations not yet recorded, in order, recording each after its statements
 * succeed. Statements are idempotent (IF NOT EXISTS), so a run cut between a statement and
 * its record is simply repeated.
 */
export async function migrate(client: ClickHouseLike, migrations: Migration[] = allMigrations, opts: MigrateOptions = {}): Promise<MigrationReport> {
  const [server] = await (await client.query({ query: 'SELECT version() AS version, currentDatabase() AS database', format: 'JSONEachRow' })).json<{
    version: string;
    database: string;
  }>();
  const database = server?.database ?? 'default';
  const { cluster } = opts;
  const run = (statement: string, tag: string) => client.command({ query: cluster ? replicatedStatement(statement, cluster, database, tag) : statement });
  await run(`CREATE TABLE IF NOT EXISTS ${LEDGER} (id UInt32, name String, applied_at DateTime) ENGINE = MergeTree() ORDER BY id`, 'ledger');
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
    for (const statement of m.statements) await run(statement, `m${m.id}`);
    await run(`INSERT INTO ${LEDGER} (id, name, applied_at) VALUES (${sqlInt(m.id)}, ${sqlString(m.name)}, now())`, `m${m.id}`);
    report.applied.push(m.id);
  }
  return report;
}
