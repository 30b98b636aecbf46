import type { ClickHouseClient } from '@clickhouse/client';
import { formatUsd, QUANTILES, sqlDate, sqlDateTime, sqlString } from '@yugong/schemas';

export const intervals = ['total', 'hour', 'day', 'month'] as const;
export type Interval = (typeof intervals)[number];
export const accountGroups = ['none', 'model', 'api_key', 'sub_account'] as const;
export const upstreamGroups = ['none', 'model', 'upstream_key', 'organization'] as const;
type Group = (typeof accountGroups)[number] | (typeof upstreamGroups)[number];

/** Identifiers come only from these maps, never from the request. */
const groupColumn: Record<Group, string> = {
  none: "''",
  model: 'model',
  api_key: 'api_key_id',
  sub_account: 'child_account_id',
  upstream_key: 'upstream_key_id',
  organization: 'upstream_org',
};

export interface UsageQuery {
  from: Date;
  to: Date;
  interval: Interval;
  model: string | null;
  apiKeyId: string | null;
}

const DAY_MS = 86_400_000;

/** Hourly buckets come from the hourly rollup, the rest from the daily one (months are days summed). */
function bucketing(q: UsageQuery, hourly: string, daily: string) {
  const next = new Date(q.to.getTime() + DAY_MS);
  if (q.interval === 'hour') return { table: hourly, bucket: 'toString(bucket)', range: `bucket >= ${sqlDateTime(q.from)} AND bucket < ${sqlDateTime(next)}` };
  const bucket = q.interval === 'day' ? 'toString(bucket)' : q.interval === 'month' ? 'toString(toStartOfMonth(bucket))' : "''";
  return { table: daily, bucket, range: `bucket >= ${sqlDate(q.from)} AND bucket <= ${sqlDate(q.to)}` };
}

const SUMS = [
  'requests',
  'errors',
  'retried',
  'attempts_total',
  'prompt_tokens_total',
  'cached_tokens_total',
  'completion_tokens_total',
  'reasoning_tokens_total',
  'audio_prompt_tokens_total',
  'audio_completion_tokens_total',
  'images_total',
  'audio_ms_total',
  'speech_characters_total',
  'upstream_cost_nano',
  'latency_ms_sum',
  'ttft_ms_sum',
  'ttft_count',
] as const;
type SumRow = Record<(typeof SUMS)[number] | 'cost_nano' | 'charged_nano', string> & { b: string; k: string };
type QuantileRow = { b: string; k: string; lq: (number | null)[]; tq: (number | null)[] };

export interface UsageRow {
  bucket: string | null;
  group: string | null;
  requests: number;
  errors: number;
  retried_requests: number;
  attempts: number;
  tokens: { prompt: number; cached: number; completion: number; reasoning: number; audio_prompt: number; audio_completion: number };
  images: number;
  audio_seconds: number;
  speech_characters: number;
  cost_nano: string;
  cost_usd: string;
  upstream_cost_nano?: string;
  margin_nano?: string;
  latency_ms: { avg: number | null; p50: number | null; p90: number | null; p99: number | null };
  ttft_ms: { avg: number | null; p50: number | null; p90: number | null; p99: number | null };
}

async function rows<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

const q3 = (v: (number | null)[] | undefined) => ({ p50: v?.[0] ?? null, p90: v?.[1] ?? null, p99: v?.[2] ?? null });
const avg = (sum: string, n: string) => (Number(n) > 0 ? Math.round((Number(sum) / Number(n)) * 10) / 10 : null);

function toUsageRow(s: SumRow, q: QuantileRow | undefined, interval: Interval, group: Group, cost: string, withUpstream: boolean): UsageRow {
  const row: UsageRow = {
    bucket: interval === 'total' ? null : s.b,
    group: group === 'none' ? null : s.k,
    requests: Number(s.requests),
    errors: Number(s.errors),
    retried_requests: Number(s.retried),
    attempts: Number(s.attempts_total),
    tokens: {
      prompt: Number(s.prompt_tokens_total),
      cached: Number(s.cached_tokens_total),
      completion: Number(s.completion_tokens_total),
      reasoning: Number(s.reasoning_tokens_total),
      audio_prompt: Number(s.audio_prompt_tokens_total),
      audio_completion: Number(s.audio_completion_tokens_total),
    },
    images: Number(s.images_total),
    audio_seconds: Number(s.audio_ms_total) / 1000,
    speech_characters: Number(s.speech_characters_total),
    cost_nano: cost,
    cost_usd: formatUsd(BigInt(cost)),
    latency_ms: { avg: avg(s.latency_ms_sum, s.requests), ...q3(q?.lq) },
    ttft_ms: { avg: avg(s.ttft_ms_sum, s.ttft_count), ...q3(q?.tq) },
  };
  if (withUpstream) {
    row.upstream_cost_nano = s.upstream_cost_nano;
    row.margin_nano = (BigInt(cost) - BigInt(s.upstream_cost_nano)).toString();
  }
  return row;
}

const sumsSql = (extra: string) => [...SUMS.map((c) => `toString(sum(${c})) AS ${c}`), extra].join(', ');

/**
 * Usage of one account (its own requests and its sub-accounts', at its own price) from the
 * rollups: sums from usage_*, percentiles from latency_*, joined here by bucket and group.
 */
export async function accountUsage(ch: ClickHouseClient, accountId: string, q: UsageQuery, group: (typeof accountGroups)[number], operator: boolean): Promise<UsageRow[]> {
  const k = groupColumn[group];
  const filters = [`account_id = ${sqlString(accountId)}`, q.model ? `model = ${sqlString(q.model)}` : '', q.apiKeyId ? `api_key_id = ${sqlString(q.apiKeyId)}` : ''].filter(Boolean);
  const sums = bucketing(q, 'usage_hourly', 'usage_daily');
  const lat = bucketing(q, 'latency_hourly', 'latency_daily');
  const [s, p] = await Promise.all([
    rows<SumRow>(
      ch,
      `SELECT ${sums.bucket} AS b, ${k} AS k, ${sumsSql('toString(sum(cost_nano)) AS cost_nano')}
      FROM ${sums.table} WHERE ${[...filters, sums.range].join(' AND ')} GROUP BY b, k ORDER BY b, k`,
    ),
    rows<QuantileRow>(
      ch,
      `SELECT ${lat.bucket} AS b, ${k} AS k, ${QUANTILES.replace('(', 'Merge(')}(latency_q) AS lq, ${QUANTILES.replace('(', 'Merge(')}(ttft_q) AS tq
      FROM ${lat.table} WHERE ${[...filters, lat.range].join(' AND ')} GROUP BY b, k`,
    ),
  ]);
  const byKey = new Map(p.map((r) => [`${r.b}\n${r.k}`, r]));
  return s.map((r) => toUsageRow(r, byKey.get(`${r.b}\n${r.k}`), q.interval, group, r.cost_nano, operator));
}

/** The operator's view per upstream key or organization: what was charged (roots' cost) against list cost. */
export async function upstreamUsage(ch: ClickHouseClient, q: UsageQuery, group: (typeof upstreamGroups)[number]): Promise<UsageRow[]> {
  const k = groupColumn[group];
  const next = new Date(q.to.getTime() + DAY_MS);
  const bucket = { total: "''", hour: 'toString(bucket)', day: 'toString(toDate(bucket))', month: 'toString(toStartOfMonth(bucket))' }[q.interval];
  const filters = [`bucket >= ${sqlDateTime(q.from)}`, `bucket < ${sqlDateTime(next)}`, q.model ? `model = ${sqlString(q.model)}` : ''].filter(Boolean);
  const s = await rows<SumRow>(
    ch,
    `SELECT ${bucket} AS b, ${k} AS k, ${sumsSql('toString(sum(charged_nano)) AS charged_nano')}
    FROM upstream_hourly WHERE ${filters.join(' AND ')} GROUP BY b, k ORDER BY b, k`,
  );
  return s.map((r) => toUsageRow(r, undefined, q.interval, group, r.charged_nano, true));
}

/** Flat columns for CSV, in a fixed order. */
export const usageCsvHeader = [
  'bucket',
  'group',
  'requests',
  'errors',
  'retried_requests',
  'attempts',
  'prompt_tokens',
  'cached_tokens',
  'completion_tokens',
  'reasoning_tokens',
  'audio_prompt_tokens',
  'audio_completion_tokens',
  'images',
  'audio_seconds',
  'speech_characters',
  'cost_nano',
  'cost_usd',
  'upstream_cost_nano',
  'margin_nano',
  'latency_ms_avg',
  'latency_ms_p50',
  'latency_ms_p90',
  'latency_ms_p99',
  'ttft_ms_avg',
  'ttft_ms_p50',
  'ttft_ms_p90',
  'ttft_ms_p99',
];

export function usageCsvCells(r: UsageRow): unknown[] {
  const t = r.tokens;
  return [
    r.bucket,
    r.group,
    r.requests,
    r.errors,
    r.retried_requests,
    r.attempts,
    t.prompt,
    t.cached,
    t.completion,
    t.reasoning,
    t.audio_prompt,
    t.audio_completion,
    r.images,
    r.audio_seconds,
    r.speech_characters,
    r.cost_nano,
    r.cost_usd,
    r.upstream_cost_nano,
    r.margin_nano,
    r.latency_ms.avg,
    r.latency_ms.p50,
    r.latency_ms.p90,
    r.latency_ms.p99,
    r.ttft_ms.avg,
    r.ttft_ms.p50,
    r.ttft_ms.p90,
    r.ttft_ms.p99,
  ];
}
