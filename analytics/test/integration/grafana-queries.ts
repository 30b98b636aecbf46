import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@yugong/infra';
import { sqlString } from '@yugong/schemas';

export interface Target {
  datasource: { uid: string };
  rawSql?: string;
  expr?: string;
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: { title: string; targets: Target[] }[];
  templating: { list: { name: string; datasource: { uid: string }; query: string }[] };
}

const dir = join(repoRoot, 'infra', 'grafana', 'dashboards');
export const dashboards = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Dashboard);

/** The dashboards' time range in the tests: the fixture's week. */
export const FROM = Math.floor(Date.parse('2026-10-01T00:00:00Z') / 1000);
export const TO = Math.floor(Date.parse('2026-10-08T00:00:00Z') / 1000);

/** The grafana-clickhouse-datasource macros the dashboards use, expanded as the plugin does. */
export function expand(sql: string, vars: Record<string, string>): string {
  const day = (s: number) => sqlString(new Date(s * 1000).toISOString().slice(0, 10));
  const out = sql
    .replace(/\$__timeFilter\(([\w.]+)\)/g, (_m, c: string) => `${c} >= toDateTime(${FROM}) AND ${c} <= toDateTime(${TO})`)
    .replace(/\$__dateFilter\(([\w.]+)\)/g, (_m, c: string) => `${c} >= toDate(${day(FROM)}) AND ${c} <= toDate(${day(TO)})`)
    .replace(/\$__fromTime/g, `toDateTime(${FROM})`)
    .replace(/\$__toTime/g, `toDateTime(${TO})`)
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a?: string, b?: string) => vars[a ?? b ?? ''] ?? m);
  assert.doesNotMatch(out, /\$/, `an unexpanded macro or variable in: ${out}`);
  return out;
}

/** Every ClickHouse query of every dashboard, its variables taken from the first row of their own queries. */
export async function dashboardQueries(run: (sql: string) => Promise<Record<string, unknown>[]>): Promise<{ name: string; sql: string }[]> {
  const out: { name: string; sql: string }[] = [];
  for (const d of dashboards) {
    const vars: Record<string, string> = {};
    for (const v of d.templating.list) {
      const rows = await run(expand(v.query, {}));
      vars[v.name] = String(Object.values(rows[0] ?? {})[0] ?? '');
      assert.ok(vars[v.name], `${d.title}: variable ${v.name} has values`);
    }
    for (const p of d.panels) for (const t of p.targets.filter((x) => x.rawSql)) out.push({ name: `${d.title} / ${p.title}`, sql: expand(t.rawSql ?? '', vars) });
  }
  return out;
}
