import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { privateTarget, seedPriceTable, withOverrides } from '@yugong/schemas';
import type { UpstreamKey } from '../pool/pool.js';
import { accountsRouter, type Scope } from './accounts-router.js';
import { bearerCors } from './cors.js';
import { sendApiError } from '../errors.js';
import { accountView, overridesOf, parseBody, priceInput, sendResult, upstreamInput } from './inputs.js';
import type { AccountsService, Result } from './service.js';

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** What the operator's API reads from, and tells, the process it runs in. */
export interface ControlHooks {
  /** The pool as this process sees it: live health where it serves traffic, the shared notices' view where it does not. */
  upstreamKeys(): UpstreamKey[];
  /** This process's pool follows its own writes at once (the others follow the change notice), so the answer is read back as written. */
  upstreamChanged(keyId: string): Promise<void>;
  /** A node that bills does so at the new prices from the answer on. */
  pricesPublished(version: string): Promise<void>;
}

/** The operator's API: /admin/v1/…, authorized by the admin token. */
export function adminRouter(service: AccountsService, adminToken: string, hooks: ControlHooks, allowPrivateUpstreams: boolean) {
  const andReload = async <T extends { keyId: string }>(r: Result<T>): Promise<Result<T>> => {
    if (r.ok) await hooks.upstreamChanged(r.value.keyId);
    return r;
  };
  const r = express.Router();
  // The operator console is served by analytics, on another origin; it holds the token itself.
  r.use(bearerCors);
  r.use((req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1] || !sameSecret(m[1], adminToken)) return sendApiError(res, 401, 'invalid_admin_token', 'This endpoint needs the operator admin token: Authorization: Bearer <YUGONG_ADMIN_TOKEN>.');
    next();
  });
  const operator: Scope = {
    actor: 'operator',
    defaultParent: null,
    namespaced: false,
    keyLimits: null,
    sees: () => true,
    manages: () => true,
    async listAll(req, res) {
      const limit = Number(req.query.limit ?? 100);
      const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : '0';
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return sendApiError(res, 400, 'invalid_value', "'limit' must be an integer from 1 to 1000.", 'limit');
      if (!/^\d{1,20}$/.test(cursor)) return sendApiError(res, 400, 'invalid_value', "'cursor' must be the next_cursor of a previous page.", 'cursor');
      const q = typeof req.query.q === 'string' ? req.query.q.trim().toLowerCase().slice(0, 100) : '';
      // A search walks the pages itself until it has a page of matches or reaches the end.
      let page = await service.listAll(cursor, limit);
      const found = page.accounts.filter((a) => !q || a.id.includes(q) || a.name.toLowerCase().includes(q));
      while (q && found.length < limit && page.nextCursor !== null) {
        page = await service.listAll(page.nextCursor, limit);
        found.push(...page.accounts.filter((a) => a.id.includes(q) || a.name.toLowerCase().includes(q)));
      }
      res.json({ object: 'list', data: found.map(accountView), next_cursor: page.nextCursor, has_more: page.nextCursor !== null });
    },
  };
  r.use(accountsRouter(service, () => operator));
  r.post('/upstreams', async (req, res) => {
    const body = parseBody(upstreamInput, req, res);
    if (!body) return;
    // An upstream inside the network would let the operator API reach this host or the cloud metadata service.
    const inside = allowPrivateUpstreams ? null : privateTarget(body.base_url);
    if (inside) return sendApiError(res, 400, 'upstream_not_allowed', `${inside}: upstreams inside the network are refused unless YUGONG_ALLOW_PRIVATE_UPSTREAMS=true.`, 'base_url');
    const seed = { baseUrl: body.base_url, key: body.key, organization: body.organization ?? null, models: body.models ?? null, weight: body.weight ?? 1, poolId: body.pool_id ?? 'default' };
    sendResult(res, await andReload(await service.addUpstreamKey(seed)), 201, (v) => ({ object: 'upstream_key', id: v.keyId, created: v.created }));
  });
  r.get('/upstreams', (_req, res) => {
    const now = Date.now();
    res.json({
      object: 'list',
      data: hooks.upstreamKeys().map((k) => ({
        // The secret's first characters only, as OpenAI's dashboard shows a key.
        id: k.id,
        pool_id: k.poolId,
        base_url: k.baseUrl,
        organization: k.organization,
        models: k.models,
        weight: k.weight,
        key_prefix: k.secret.slice(0, 6),
        status: k.status,
        reason: k.reason,
        cooling_for_ms: Math.max(0, k.cooldownUntil - now),
        cooldown_until: k.cooldownUntil > now ? new Date(k.cooldownUntil).toISOString() : null,
        in_flight: k.inFlight,
        limit_requests: k.limitRequests,
        remaining_requests: k.remainingRequests,
        limit_tokens: k.limitTokens,
        remaining_tokens: k.remainingTokens,
        requests_reset_at: k.requestsResetAt ? new Date(k.requestsResetAt).toISOString() : null,
        tokens_reset_at: k.tokensResetAt ? new Date(k.tokensResetAt).toISOString() : null,
      })),
    });
  });
  r.delete('/upstreams/:id', async (req, res) => {
    sendResult(res, await andReload(await service.removeUpstreamKey(req.params.id ?? '', 'removed by operator')), 200, (v) => ({ object: 'upstream_key', id: v.keyId, status: v.status }));
  });
  for (const action of ['enable', 'disable'] as const) {
    r.post(`/upstreams/:id/${action}`, async (req, res) => {
      sendResult(res, await andReload(await service.setUpstreamStatus(req.params.id ?? '', action === 'enable', `by operator`)), 200, (v) => ({
        object: 'upstream_key',
        id: v.keyId,
        status: v.status,
      }));
    });
  }
  r.get('/prices', async (_req, res) => {
    res.json({
      object: 'list',
      data: (await service.priceVersions()).map((v) => ({ object: 'price_table', version: v.version, source: v.source, created_at: v.createdAt, models: v.models, current: v.current })),
    });
  });
  r.get('/prices/:version', async (req, res) => {
    const table = await service.priceTable(String(req.params.version ?? ''));
    if (!table) return sendApiError(res, 404, 'price_table_not_found', `No price table "${req.params.version}".`, 'version');
    res.json({ object: 'price_table', ...table });
  });
  r.post('/prices', async (req, res) => {
    const body = parseBody(priceInput, req, res);
    if (!body) return;
    const base = body.base === 'package' ? seedPriceTable() : await service.currentPrices();
    if (!base) return sendApiError(res, 409, 'no_price_table', 'No price table is in force yet; publish one with {"base": "package"}.', 'base');
    const table = body.overrides.length ? withOverrides(base, overridesOf(body)) : base;
    const published = await service.publishPrices(table);
    // The others follow the change notice.
    if (published.ok) await hooks.pricesPublished(published.value.version);
    sendResult(res, published, 201, (v) => ({ object: 'price_table', version: v.version, source: table.source, models: table.models.length, current: true }));
  });
  return r;
}
