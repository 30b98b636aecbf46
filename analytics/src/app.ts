import type { ClickHouseClient } from '@clickhouse/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { corsAllowed, createAuthenticator, errorBody, FailedAuthLimiter, redisAccessReader, type RedisClient } from '@yugong/schemas';
import { authenticate, isDenied, resolveTarget, type Caller, type Target } from './auth.js';
import type { AnalyticsConfig } from './config.js';
import { csvLine } from './csv.js';
import { serveWebPages } from './web.js';
import { lineItem, lineItemPage, lineItemsCsv, statuses, type LineItemFilter } from './line-items.js';
import { KEY_ID, MODEL, parseAccount, parseChoice, parseCursor, parseFilter, parseLimit, parseRange, type Param } from './params.js';
import { overview } from './overview.js';
import { rateLimits } from './rate-limits.js';
import { accountGroups, accountUsage, intervals, upstreamGroups, upstreamUsage, usageCsvCells, usageCsvHeader, type UsageQuery, type UsageRow } from './usage.js';

export interface AnalyticsDeps {
  config: AnalyticsConfig;
  clickhouse: ClickHouseClient;
  redis: RedisClient;
  log: Logger;
}

function fail(res: Response, status: number, param: string | null, message: string, code = 'invalid_value'): void {
  res
    .status(status)
    .type('application/json')
    .send(errorBody({ message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param, code }));
}

/** Unwraps parsed parameters; answers 400 for the first bad one. */
function all<T extends unknown[]>(res: Response, ...params: { [K in keyof T]: Param<T[K]> }): T | null {
  for (const p of params) {
    if (!p.ok) {
      fail(res, 400, p.param, p.message);
      return null;
    }
  }
  return params.map((p) => (p as { value: unknown }).value) as T;
}

const callerOf = (res: Response) => res.locals.caller as Caller;
const isOperator = (res: Response) => callerOf(res).kind === 'operator';
// A calendar month in any time zone spans at most 32 UTC days.
const HOUR_RANGE_DAYS = 32;

function sendCsv(res: Response, name: string): void {
  res.status(200).set({ 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${name}.csv"` });
}

export function createAnalyticsApp(deps: AnalyticsDeps) {
  const { clickhouse: ch, redis } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [chOk, redisOk] = await Promise.all([
      ch.ping().then(
        (r) => r.success,
        () => false,
      ),
      redis.ping().then(
        () => true,
        () => false,
      ),
    ]);
    res.status(chOk && redisOk ? 200 : 503).json({ status: chOk && redisOk ? 'ready' : 'not_ready', clickhouse: chOk, redis: redisOk });
  });

  const api = express.Router();
  api.use((req: Request, res: Response, next: NextFunction) => {
    if (req.headers.origin) res.set({ 'access-control-allow-origin': req.headers.origin, vary: 'origin', 'access-control-expose-headers': 'content-disposition' });
    if (req.method === 'OPTIONS') {
      res.set({ 'access-control-allow-methods': 'GET, OPTIONS', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '600' });
      res.status(204).end();
      return;
    }
    next();
  });
  const auth = createAuthenticator({ reader: redisAccessReader(redis), limiter: new FailedAuthLimiter(redis), trustedProxies: deps.config.trustedProxies, publicUrl: deps.config.proxyUrl });
  api.use(async (req: Request, res: Response, next: NextFunction) => {
    const caller = await authenticate(req, auth, deps.config.adminToken);
    if (isDenied(caller)) {
      if (caller.headers) res.set(caller.headers);
      // A page on an origin the key refuses must not read even the refusal.
      if (!corsAllowed(caller)) res.removeHeader('access-control-allow-origin');
      return fail(res, caller.status, caller.param, caller.message, caller.code);
    }
    res.locals.caller = caller;
    next();
  });

  async function target(req: Request, res: Response, param = 'account_id'): Promise<Target | null> {
    const id = parseAccount(req.query[param], param);
    if (!id.ok) {
      fail(res, 400, id.param, id.message);
      return null;
    }
    const t = await resolveTarget(callerOf(res), id.value, redis);
    if (isDenied(t)) {
      fail(res, t.status, t.param === 'account_id' ? param : t.param, t.message, t.code);
      return null;
    }
    return t;
  }

  function usageQuery(req: Request, res: Response): UsageQuery | null {
    const parsed = all<[UsageQuery['interval'], string | null, string | null]>(
      res,
      parseChoice('interval', req.query.interval, intervals, 'total'),
      parseFilter('model', req.query.model, MODEL),
      parseFilter('api_key_id', req.query.api_key_id, KEY_ID),
    );
    if (!parsed) return null;
    const [interval, model, apiKeyId] = parsed;
    const range = parseRange(req.query, interval === 'hour' ? HOUR_RANGE_DAYS : 3660);
    if (!range.ok) {
      fail(res, 400, range.param, range.message);
      return null;
    }
    return { ...range.value, interval, model, apiKeyId };
  }

  function sendUsage(req: Request, res: Response, rows: UsageRow[], meta: Record<string, unknown>): void {
    const format = parseChoice('format', req.query.format, ['json', 'csv'] as const, 'json');
    if (!format.ok) return fail(res, 400, format.param, format.message);
    if (format.value === 'json') {
      res.json({ object: 'analytics.usage', ...meta, data: rows });
      return;
    }
    sendCsv(res, 'usage');
    res.write(csvLine(usageCsvHeader));
    for (const r of rows) res.write(csvLine(usageCsvCells(r)));
    res.end();
  }

  // Totals, time series and breakdowns of one account, from the rollups.
  api.get('/usage', async (req, res) => {
    const group = parseChoice('group_by', req.query.group_by, accountGroups, 'none');
    if (!group.ok) return fail(res, 400, group.param, group.message);
    const q = usageQuery(req, res);
    if (!q) return;
    const t = await target(req, res);
    if (!t) return;
    const rows = await accountUsage(ch, t.accountId, q, group.value, isOperator(res));
    sendUsage(req, res, rows, { account_id: t.accountId, from: req.query.from, to: req.query.to, interval: q.interval, group_by: group.value });
  });

  // The operator's view by upstream key and organization, with margin.
  api.get('/upstreams', async (req, res) => {
    if (!isOperator(res)) return fail(res, 403, null, 'Upstream analytics are for the operator.', 'permission_denied');
    const group = parseChoice('group_by', req.query.group_by, upstreamGroups, 'upstream_key');
    if (!group.ok) return fail(res, 400, group.param, group.message);
    const q = usageQuery(req, res);
    if (!q) return;
    sendUsage(req, res, await upstreamUsage(ch, q, group.value), { from: req.query.from, to: req.query.to, interval: q.interval, group_by: group.value });
  });

  async function lineItemFilter(req: Request, res: Response, t: Target): Promise<LineItemFilter | null> {
    const parsed = all<[string | null, string | null, string | null]>(
      res,
      parseFilter('model', req.query.model, MODEL),
      parseFilter('api_key_id', req.query.api_key_id, KEY_ID),
      parseChoice<(typeof statuses)[number] | ''>('status', req.query.status, statuses, ''),
    );
    if (!parsed) return null;
    const range = parseRange(req.query, 366);
    if (!range.ok) {
      fail(res, 400, range.param, range.message);
      return null;
    }
    let subAccount: string | null = null;
    if (req.query.sub_account !== undefined) {
      const sub = await target(req, res, 'sub_account');
      if (!sub) return null;
      if (!sub.path.includes(t.accountId)) {
        fail(res, 404, 'sub_account', `No account "${sub.accountId}" under "${t.accountId}".`, 'account_not_found');
        return null;
      }
      subAccount = sub.accountId;
    }
    const [model, apiKeyId, status] = parsed;
    return { ...range.value, model, apiKeyId, status: status || null, subAccount };
  }

  // Drill-down: line items page by page, or all of them as CSV.
  api.get('/line_items', async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    const f = await lineItemFilter(req, res, t);
    if (!f) return;
    const format = parseChoice('format', req.query.format, ['json', 'csv'] as const, 'json');
    if (!format.ok) return fail(res, 400, format.param, format.message);
    if (format.value === 'csv') {
      const stream = await lineItemsCsv(ch, t, f, isOperator(res));
      sendCsv(res, `line-items-${t.accountId}`);
      stream.on('error', (err: Error) => {
        deps.log.error({ err: err.message }, 'csv export failed');
        res.destroy(err);
      });
      stream.pipe(res);
      return;
    }
    const parsed = all<[number, Awaited<ReturnType<typeof parseCursor>> extends Param<infer C> ? C : never]>(res, parseLimit(req.query.limit, 100, 1000), parseCursor(req.query.cursor));
    if (!parsed) return;
    const page = await lineItemPage(ch, t, f, isOperator(res), parsed[0], parsed[1]);
    res.json({ object: 'list', data: page.items, next_cursor: page.nextCursor, has_more: page.nextCursor !== null });
  });

  api.get('/line_items/:eventId', async (req, res) => {
    const eventId = String(req.params.eventId);
    if (!/^[A-Za-z0-9:_.-]{1,200}$/.test(eventId)) return fail(res, 400, 'event_id', "'event_id' is not a valid line item id");
    const t = await target(req, res);
    if (!t) return;
    const item = await lineItem(ch, t, eventId, isOperator(res));
    if (!item) return fail(res, 404, 'event_id', `No line item "${eventId}" for account "${t.accountId}".`, 'line_item_not_found');
    res.json(item);
  });

  // The operator console's overview: traffic, errors, revenue, top accounts and models, ledger lag, spool.
  api.get('/overview', async (_req, res) => {
    if (!isOperator(res)) return fail(res, 403, null, 'The overview is for the operator.', 'permission_denied');
    res.json(await overview(ch, { ledgerUrl: deps.config.ledgerUrl, proxyUrl: deps.config.proxyUrl }));
  });

  // This minute's use against a key's limits (the caller's own key by default).
  api.get('/rate_limits', async (req, res) => {
    const caller = callerOf(res);
    const keyId = parseFilter('api_key_id', req.query.api_key_id, KEY_ID);
    if (!keyId.ok) return fail(res, 400, keyId.param, keyId.message);
    const id = keyId.value ?? (caller.kind === 'account' ? caller.keyId : null);
    if (!id) return fail(res, 400, 'api_key_id', "The operator must name an 'api_key_id' and its 'account_id'.", 'missing_required_parameter');
    const t = await target(req, res);
    if (!t) return;
    const limits = await rateLimits(redis, t.root, id);
    // A key is visible if it belongs to the target account or below it.
    if (!limits?.accounts.some((a) => a.account_id === t.accountId)) return fail(res, 404, 'api_key_id', `No key "${id}" under account "${t.accountId}".`, 'key_not_found');
    res.json(limits);
  });

  app.use('/analytics/v1', api);
  serveWebPages(app, deps.config.proxyUrl);
  app.use((req: Request, res: Response) => fail(res, 404, null, `Invalid URL (${req.method} ${req.path}).`, 'unknown_url'));
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    // Express's own refusals of what a client sent (a malformed %-escape in the path).
    if (err.status !== undefined && err.status >= 400 && err.status < 500) return fail(res, err.status, null, `The request could not be read: ${err.message}`, 'invalid_request');
    deps.log.error({ err: err.message }, 'analytics request failed');
    fail(res, 500, null, 'The analytics service had an error.', null as unknown as string);
  });
  return app;
}
