import type { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { requestStatuses, sqlDateTime, sqlInt, sqlString } from '@yugong/schemas';
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

const DAY_MS = 86_400_000;

/**
 * The columns a caller sees. Costs are the target account's own (its price); the path is cut
 * at the target, so a sub-account never sees what its ancestors paid. The operator also sees
 * every account's cost, the list (upstream) cost and the upstream key.
 */
function columns(target: Target, operator: boolean): string[] {
  const me = sqlString(target.accountId);
  const common = [
    'event_id', 'request_id', 'time', 'toUInt32(time) AS ts', 'account_id AS caller_account_id',
    `arraySlice(account_path, indexOf(account_path, ${me})) AS path`, `toString(costs_nano[indexOf(account_path, ${me})]) AS cost_nano`,
    'price_version', 'api_key_id', 'endpoint', 'model', 'status', 'http_status', 'error_code', 'stream', 'prompt_tokens', 'cached_tokens', 'completion_tokens',
    'reasoning_tokens', 'audio_prompt_tokens', 'audio_completion_tokens', 'image_prompt_tokens', 'image_completion_tokens', 'images', 'image_size',
    'image_quality', 'audio_ms', 'speech_characters', 'usage_source', 'attempts', 'latency_ms', 'ttft_ms',
  ];
  return operator ? [...common, 'arrayMap(c -> toString(c), costs_nano) AS path_costs_nano', 'toString(list_cost_nano) AS upstream_cost_nano', 'upstream_key_id', 'upstream_org'] : common;
}

/** The primary key starts with (root_account_id, time): every query names both. */
function where(target: Target, f: LineItemFilter): string[] {
  return [
    `root_account_id = ${sqlString(target.root)}`,
    `has(account_path, ${sqlString(target.accountId)})`,
    `time >= ${sqlDateTime(f.from)}`,
    `time < ${sqlDateTime(new Date(f.to.getTime() + DAY_MS))}`,
    f.model ? `model = ${sqlString(f.model)}` : '',
    f.apiKeyId ? `api_key_id = ${sqlString(f.apiKeyId)}` : '',
    f.subAccount ? `has(account_path, ${sqlString(f.subAccount)})` : '',
    f.status ? `status = ${sqlString(f.status)}` : '',
  ].filter(Boolean);
}

type Row = Record<string, unknown> & { ts: number; event_id: string };
export type LineItem = Record<string, unknown>;

/** One page, newest first, by keyset on (time, event_id): no item is skipped or repeated. */
export async function lineItemPage(ch: ClickHouseClient, target: Target, f: LineItemFilter, operator: boolean, limit: number, cursor: Cursor | null) {
  const conds = where(target, f);
  if (cursor) {
    const t = sqlDateTime(new Date(cursor.time * 1000));
    conds.push(`(time < ${t} OR (time = ${t} AND event_id < ${sqlString(cursor.eventId)}))`);
  }
  const rs = await ch.query({
    query: `SELECT ${columns(target, operator).join(', ')} FROM line_items WHERE ${conds.join(' AND ')} ORDER BY time DESC, event_id DESC LIMIT ${sqlInt(limit + 1)}`,
    format: 'JSONEachRow',
  });
  const items = await rs.json<Row>();
  const more = items.length > limit;
  const page = items.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(present), nextCursor: more && last ? encodeCursor({ time: Number(last.ts), eventId: last.event_id }) : null };
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
