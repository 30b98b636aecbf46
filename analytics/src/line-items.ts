import type { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { lineItemColumns, requestStatuses, sqlDateTime, sqlInt, sqlString, sqlStringSet } from '@yugong/schemas';
import type { Target } from './auth.js';
import { encodeCursor, type Cursor } from './params.js';

export const statuses = requestStatuses;

export interface LineItemFilter {
  from: Date;
  to: Date;
  model: string | null;
  apiKeyId: string | null;
  /** Only requests made by this account or below it (checked to be inside the target's tree). */
  subAccount: string | null;
  status: string | null;
}

/** Stored columns every caller sees as they are: from the price version on, but the attempts' detail and the operator's own. */
const stored = lineItemColumns.slice(lineItemColumns.indexOf('price_version')).filter((c) => c !== 'attempts_json' && c !== 'upstream_key_id' && c !== 'upstream_org');

/**
 * The columns a caller sees. Costs are the target account's own (its price); the path is cut
 * at the target, so a sub-account never sees what its ancestors paid. The operator also sees
 * every account's cost, the list (upstream) cost and the upstream key.
 */
function columns(target: Target, operator: boolean): string[] {
  const me = sqlString(target.accountId);
  const common = [
    'event_id',
    'request_id',
    'time',
    'toUInt32(time) AS ts',
    'account_id AS caller_account_id',
    `arraySlice(account_path, indexOf(account_path, ${me})) AS path`,
    `toString(costs_nano[indexOf(account_path, ${me})]) AS cost_nano`,
    ...stored,
  ];
  return operator ? [...common, 'arrayMap(c -> toString(c), costs_nano) AS path_costs_nano', 'toString(list_cost_nano) AS upstream_cost_nano', 'upstream_key_id', 'upstream_org'] : common;
}

/** The filters of a query; the primary key starts with (root_account_id, time). */
function filters(target: Target, f: LineItemFilter): string[] {
  return [
    `root_account_id = ${sqlString(target.root)}`,
    `has(account_path, ${sqlString(target.accountId)})`,
    f.model ? `model = ${sqlString(f.model)}` : '',
    f.apiKeyId ? `api_key_id = ${sqlString(f.apiKeyId)}` : '',
    f.subAccount ? `has(account_path, ${sqlString(f.subAccount)})` : '',
    f.status ? `status = ${sqlString(f.status)}` : '',
  ].filter(Boolean);
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const at = (s: number) => sqlDateTime(new Date(s * 1000));
const DAY_S = 86_400;

function where(target: Target, f: LineItemFilter): string[] {
  return [...filters(target, f), `time >= ${at(seconds(f.from))}`, `time < ${at(seconds(f.to) + DAY_S)}`];
}

type Row = Record<string, unknown> & { ts: number; event_id: string };
export type LineItem = Record<string, unknown>;

/**
 * The (time, event_id) keys of one page, newest first. 18.16 cannot stop reading at a LIMIT
 * in key order, so the range is walked backwards in windows (a day, then four times longer
 * each time): a busy account's page reads about a day of its rows, not the month.
 */
async function pageKeys(ch: ClickHouseClient, conds: string[], fromS: number, endS: number, cursor: Cursor | null, want: number): Promise<{ ts: number; event_id: string }[]> {
  const keys: { ts: number; event_id: string }[] = [];
  const after = cursor ? [`(time < ${at(cursor.time)} OR (time = ${at(cursor.time)} AND event_id < ${sqlString(cursor.eventId)}))`] : [];
  let hi = cursor ? Math.min(endS, cursor.time + 1) : endS;
  for (let span = DAY_S; keys.length < want && hi > fromS; span *= 4) {
    const lo = Math.max(fromS, hi - span);
    const rs = await ch.query({
      query: `SELECT toUInt32(time) AS ts, event_id FROM line_items WHERE ${[...conds, ...after, `time >= ${at(lo)}`, `time < ${at(hi)}`].join(' AND ')}
        ORDER BY time DESC, event_id DESC LIMIT ${sqlInt(want - keys.length)}`,
      format: 'JSONEachRow',
    });
    keys.push(...(await rs.json<{ ts: number | string; event_id: string }>()).map((k) => ({ ts: Number(k.ts), event_id: k.event_id })));
    hi = lo;
  }
  return keys;
}

/** One page, newest first, by keyset on (time, event_id): no item is skipped or repeated. */
export async function lineItemPage(ch: ClickHouseClient, target: Target, f: LineItemFilter, operator: boolean, limit: number, cursor: Cursor | null) {
  const conds = filters(target, f);
  const keys = await pageKeys(ch, conds, seconds(f.from), seconds(f.to) + DAY_S, cursor, limit + 1);
  const page = keys.slice(0, limit);
  const more = keys.length > limit;
  const last = page.at(-1);
  if (!last) return { items: [], nextCursor: null };
  const first = page[0] as { ts: number };
  const rs = await ch.query({
    query: `SELECT ${columns(target, operator).join(', ')} FROM line_items
      WHERE ${[...conds, `time >= ${at(last.ts)}`, `time <= ${at(first.ts)}`, `event_id IN ${sqlStringSet(page.map((k) => k.event_id))}`].join(' AND ')}
      ORDER BY time DESC, event_id DESC LIMIT 1 BY event_id`,
    format: 'JSONEachRow',
  });
  const items = await rs.json<Row>();
  return { items: items.map(present), nextCursor: more ? encodeCursor({ time: last.ts, eventId: last.event_id }) : null };
}

export async function lineItem(ch: ClickHouseClient, target: Target, eventId: string, operator: boolean): Promise<LineItem | null> {
  const rs = await ch.query({
    query: `SELECT ${columns(target, operator).join(', ')}, attempts_json FROM line_items
      WHERE root_account_id = ${sqlString(target.root)} AND has(account_path, ${sqlString(target.accountId)}) AND event_id = ${sqlString(eventId)} LIMIT 1`,
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<Row & { attempts_json: string }>();
  if (!row) return null;
  const { attempts_json: raw, ...rest } = row;
  const attempts = JSON.parse(raw) as Record<string, unknown>[];
  // Which upstream key served an attempt is the operator's business only.
  return { ...present(rest as Row), attempt_details: operator ? attempts : attempts.map(({ upstreamKeyId: _k, ...a }) => a) };
}

function present(row: Row): LineItem {
  const { ts: _ts, ...rest } = row;
  return { object: 'line_item', ...rest, stream: Boolean(row.stream), ttft_ms: Number(row.ttft_ms) >= 0 ? row.ttft_ms : null };
}

/** CSV straight from ClickHouse, oldest first, streamed: the export never sits in memory. */
export async function lineItemsCsv(ch: ClickHouseClient, target: Target, f: LineItemFilter, operator: boolean): Promise<Readable> {
  const cols = columns(target, operator).filter((c) => !c.endsWith(' AS ts'));
  const { stream } = await ch.exec({
    query: `SELECT ${cols.join(', ')} FROM line_items WHERE ${where(target, f).join(' AND ')} ORDER BY time, event_id FORMAT CSVWithNames`,
  });
  return stream;
}
