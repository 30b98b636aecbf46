import { createHash, timingSafeEqual } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { formatUsd, sqlDate, sqlString } from '@yugong/schemas';
import type { AnalyticsConfig } from './config.js';
import { parseAccount, parseRange } from './params.js';

function bad(res: Response, status: number, param: string | null, message: string, code = 'invalid_value'): void {
  res.status(status).json({ error: { message, type: 'invalid_request_error', param, code } });
}

function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export interface OverviewRow {
  requests: string;
  errors: string;
  prompt_tokens: string;
  cached_tokens: string;
  completion_tokens: string;
  cost_nano: string;
}

/** Totals of one account (its own and its sub-accounts' requests, at its own price) over days. */
export async function overview(ch: ClickHouseClient, accountId: string, from: Date, to: Date): Promise<OverviewRow> {
  const rs = await ch.query({
    query: `SELECT toString(sum(requests)) AS requests, toString(sum(errors)) AS errors, toString(sum(prompt_tokens)) AS prompt_tokens,
        toString(sum(cached_tokens)) AS cached_tokens, toString(sum(completion_tokens)) AS completion_tokens, toString(sum(cost_nano)) AS cost_nano
      FROM usage_daily
      WHERE account_id = ${sqlString(accountId)} AND bucket >= ${sqlDate(from)} AND bucket <= ${sqlDate(to)}`,
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<OverviewRow>();
  return row ?? { requests: '0', errors: '0', prompt_tokens: '0', cached_tokens: '0', completion_tokens: '0', cost_nano: '0' };
}

export function createAnalyticsApp(deps: { config: AnalyticsConfig; clickhouse: ClickHouseClient; log: Logger }) {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ok = await deps.clickhouse.ping().then((r) => r.success, () => false);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', clickhouse: ok });
  });
  const admin = express.Router();
  admin.use((req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1] || !same(m[1], deps.config.adminToken)) return bad(res, 401, null, 'This endpoint needs the operator admin token.', 'invalid_admin_token');
    next();
  });
  admin.get('/overview', async (req, res) => {
    const account = parseAccount(req.query.account_id);
    if (!account.ok) return bad(res, 400, account.param, account.message);
    const range = parseRange(req.query);
    if (!range.ok) return bad(res, 400, range.param, range.message);
    const row = await overview(deps.clickhouse, account.value, range.value.from, range.value.to);
    res.json({
      object: 'analytics.overview',
      account_id: account.value,
      from: req.query.from,
      to: req.query.to,
      requests: Number(row.requests),
      errors: Number(row.errors),
      tokens: { prompt: Number(row.prompt_tokens), cached: Number(row.cached_tokens), completion: Number(row.completion_tokens) },
      cost_nano: row.cost_nano,
      cost_usd: formatUsd(BigInt(row.cost_nano)),
    });
  });
  app.use('/analytics/v1', admin);
  app.use((req: Request, res: Response) => bad(res, 404, null, `Invalid URL (${req.method} ${req.path})`, 'unknown_url'));
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    deps.log.error({ err: err.message }, 'analytics request failed');
    res.status(500).json({ error: { message: 'The analytics service had an error.', type: 'server_error', param: null, code: null } });
  });
  return app;
}
