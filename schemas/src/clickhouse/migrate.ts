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
/**
 * On a cluster the rollups' views read this Null table, which the sink fills with the same
 * rows as line_items in a second insert: see replicatedStatements.
 */
export const LINE_ITEMS_FEED = 'line_items_feed';
const NAME = '[A-Za-z_][A-Za-z0-9_]*';
/** A table named after one of these words, unless it is already qualified or is a function. */
const TABLE_REFERENCE = new RegExp(`\\b(FROM|TO|INTO|TABLE|VIEW|EXISTS)(\\s+)(?!IF\\b)(${NAME})\\b(?![.(])`, 'g');
const DDL_HEAD = new RegExp(`^(\\s*(?:CREATE (?:TABLE|MATERIALIZED VIEW)|DROP TABLE)(?: IF (?:NOT )?EXISTS)? ${NAME}\\.(${NAME}))`);
const ENGINE = /ENGINE = (Replacing|Summing|Aggregating|)MergeTree\(\)/;
/** Where a rollup's column list ends (rollups sum or aggregate; line_items and credits replace). */
const ROLLUP_COLUMNS_END = /(\s*\)\s*ENGINE = (?:Summing|Aggregating)MergeTree\(\))/;

/**
 * The replicated form of one of our statements (one or two). Distributed DDL runs on each
 * replica in its default database, so every table is named with ours; each table's ZooKeeper
 * path carries the migration's tag, so a table dropped and made anew by a later migration
 * never meets the old one's replicas (18.16 leaves a dropped table's path behind). Inserts run
 * once, on the server the runner is connected to, and reach the other replicas by replication.
 *
 * The rollups' views read a Null table beside line_items (LINE_ITEMS_FEED) instead of
 * line_items itself. A view's insert is not atomic with its source's: a replica that dies
 * after storing a block of line_items and before its views' blocks leaves the rollups short,
 * and the same block written again on the other replica is dropped as a duplicate, views and
 * all (18.16 has no deduplicate_blocks_in_dependent_materialized_views). Fed by an insert of
 * its own, which a Null table never drops, every view writes its block again on a retry, and
 * each replicated rollup keeps it once by its own checksum. Since a view then deduplicates
 * its own blocks, two batches that sum to the same rows (one request each, of the same key,
 * model and cost) would be taken for one: every rollup row carries `batch_token`, the
 * greatest event id of the rows it sums, the same on a retry and never the same for two
 * batches. (A view fed by a replicated table is not deduplicated at all, as 18.16 leaves that
 * to the source: so single-node mode and line_items need no token.)
 */
export function replicatedStatements(statement: string, cluster: string, database: string, tag: string): string[] {
  const qualified = statement.replace(TABLE_REFERENCE, (_, word: string, space: string, table: string) => `${word}${space}${database}.${table}`);
  // A rollup's rows (a view's, or a backfill's) carry the token; a view reads the feed.
  const fromLineItems = new RegExp(`\\s*\\bFROM ${database}\\.line_items\\b`, 'g');
  const withToken = (sql: string, source: string) => sql.replace(fromLineItems, `, ${/\bGROUP BY\b/.test(sql) ? 'max(event_id)' : 'event_id'} AS batch_token\n    FROM ${database}.${source}`);
  if (/^\s*INSERT\b/.test(qualified)) return [withToken(qualified, 'line_items')];
  const head = DDL_HEAD.exec(qualified);
  if (!head) throw new Error(`no replicated form for: ${statement.slice(0, 80)}`);
  const table = head[2] ?? '';
  const rest = qualified.slice(head[0].length);
  const body = /^\s*CREATE MATERIALIZED VIEW\b/.test(qualified) ? withToken(rest, LINE_ITEMS_FEED) : rest.replace(ROLLUP_COLUMNS_END, ', batch_token String$1');
  const replicated = `${head[1]} ON CLUSTER ${cluster}${body}`.replace(
    ENGINE,
    (_, kind: string) => `ENGINE = Replicated${kind}MergeTree('/clickhouse/tables/{shard}/${database}/${table}/${tag}', '{replica}')`,
  );
  const feed =
    table === 'line_items' && /^\s*CREATE TABLE\b/.test(qualified) ? [`CREATE TABLE IF NOT EXISTS ${database}.${LINE_ITEMS_FEED} ON CLUSTER ${cluster} AS ${database}.line_items ENGINE = Null`] : [];
  return [replicated, ...feed];
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
  const run = async (statement: string, tag: string) => {
    for (const query of cluster ? replicatedStatements(statement, cluster, database, tag) : [statement]) await client.command({ query });
  };
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
