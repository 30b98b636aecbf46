import type { ClickHouseClient } from '@clickhouse/client';
import { formatUsd, sqlDateTime } from '@yugong/schemas';

const HOUR_MS = 3_600_000;

interface Totals {
  requests: string;
  errors: string;
  revenue_nano: string;
  upstream_cost_nano: string;
}

async function rows<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

/** What the root accounts were charged (their own price, the first of each path) and what upstream cost. */
const MEASURES =
  "toString(count()) AS requests, toString(countIf(status != 'ok')) AS errors, toString(sum(arrayElement(costs_nano, 1))) AS revenue_nano, toString(sum(list_cost_nano)) AS upstream_cost_nano";

function totals(t: Totals | undefined, seconds: number) {
  const requests = Number(t?.requests ?? 0);
  const errors = Number(t?.errors ?? 0);
  return {
    requests,
    errors,
    requests_per_second: Math.round((requests / seconds) * 100) / 100,
    error_share: requests > 0 ? Math.round((errors / requests) * 10_000) / 10_000 : 0,
    revenue_usd: formatUsd(BigInt(t?.revenue_nano ?? '0')),
    upstream_cost_usd: formatUsd(BigInt(t?.upstream_cost_nano ?? '0')),
  };
}

/** Reads a Prometheus text exposition's samples of one metric, summed per value of one label. */
export function sumByLabel(text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const key = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1] ?? '';
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

/** Per upstream key: the attempts it made and its requests by outcome (ok, upstream_error, client_abort, rejected). */
function upstreamOutcomes(rows: { upstream_key_id: string; status: string; requests: string; attempts: string }[]) {
  const out = new Map<string, { upstream_key_id: string; attempts: number; requests_by_outcome: Record<string, number> }>();
  for (const r of rows) {
    const u = out.get(r.upstream_key_id) ?? { upstream_key_id: r.upstream_key_id, attempts: 0, requests_by_outcome: {} };
    u.attempts += Number(r.attempts);
    u.requests_by_outcome[r.status] = Number(r.requests);
    out.set(r.upstream_key_id, u);
  }
  return [...out.values()];
}

async function probe<T>(url: string | null, read: (res: Response) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; reason: string }> {
  if (!url) return { ok: false, reason: 'not configured' };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { ok: true, value: await read(res) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * The operator's overview: traffic and errors now, revenue per hour over the last day, the top
 * root accounts and models of the last day (all from line items), and how far behind the ledger
 * is and how much a proxy has spooled (from their own /metrics and /readyz).
 */
export async function overview(ch: ClickHouseClient, links: { ledgerUrl: string | null; proxyUrl: string }, now = new Date()) {
  const at = (ms: number) => sqlDateTime(new Date(now.getTime() - ms));
  const day = `time >= ${at(24 * HOUR_MS)}`;
  const [[last5], [lastHour], hourly, accounts, models, upstreams, ledger, proxy] = await Promise.all([
    rows<Totals>(ch, `SELECT ${MEASURES} FROM line_items WHERE time >= ${at(5 * 60_000)}`),
    rows<Totals>(ch, `SELECT ${MEASURES} FROM line_items WHERE time >= ${at(HOUR_MS)}`),
    rows<Totals & { hour: string }>(ch, `SELECT toString(toStartOfHour(time)) AS hour, ${MEASURES} FROM line_items WHERE ${day} GROUP BY hour ORDER BY hour`),
    rows<Totals & { account_id: string }>(
      ch,
      `SELECT root_account_id AS account_id, ${MEASURES} FROM line_items WHERE ${day} GROUP BY account_id ORDER BY sum(arrayElement(costs_nano, 1)) DESC, account_id LIMIT 10`,
    ),
    rows<Totals & { model: string }>(ch, `SELECT model, ${MEASURES} FROM line_items WHERE ${day} GROUP BY model ORDER BY count() DESC, model LIMIT 10`),
    rows<{ upstream_key_id: string; status: string; requests: string; attempts: string }>(
      ch,
      `SELECT upstream_key_id, status, toString(count()) AS requests, toString(sum(attempts)) AS attempts FROM line_items WHERE time >= ${at(HOUR_MS)} AND upstream_key_id != '' GROUP BY upstream_key_id, status ORDER BY upstream_key_id, status`,
    ),
    probe(links.ledgerUrl && `${links.ledgerUrl}/metrics`, async (res) => sumByLabel(await res.text(), 'yugong_ledger_consumer_lag', 'group')),
    probe(`${links.proxyUrl}/readyz`, async (res) => ((await res.json()) as { spool_bytes?: number }).spool_bytes ?? 0),
  ]);
  return {
    object: 'analytics.overview',
    at: now.toISOString(),
    last_5_minutes: totals(last5, 300),
    last_hour: totals(lastHour, 3600),
    hourly: hourly.map((h) => ({ hour: h.hour, ...totals(h, 3600) })),
    top_accounts: accounts.map((a) => ({ account_id: a.account_id, ...totals(a, 86_400) })),
    top_models: models.map((m) => ({ model: m.model, ...totals(m, 86_400) })),
    upstreams_last_hour: upstreamOutcomes(upstreams),
    consumer_lag: ledger.ok ? { messages_by_group: ledger.value } : { unavailable: ledger.reason },
    spool: proxy.ok ? { bytes: proxy.value } : { unavailable: proxy.reason },
  };
}
