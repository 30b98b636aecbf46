import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { accountId as accountIdSchema, formatUsd, parseMultiplier, parseUsd } from '@yugong/schemas';
import type { UpstreamPool } from '../pool/pool.js';
import type { AccountsService, AccountSummary, Result } from './service.js';

const usd = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    const nano = parseUsd(String(v));
    if (nano < 0n) throw new RangeError('negative');
    if (nano > 1_000_000_000n * 1_000_000_000n) throw new RangeError('too large');
    return nano;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a non-negative USD amount with at most 9 decimals, at most 1,000,000,000' });
    return z.NEVER;
  }
});
const multiplier = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    const ppm = parseMultiplier(String(v));
    if (ppm <= 0) throw new RangeError('zero');
    return ppm;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a number greater than 0 with at most 6 decimals' });
    return z.NEVER;
  }
});
const limit = z.number().int().min(1).max(100_000_000).nullable().optional();
const names = z.array(z.string().min(1).max(200)).max(500).nullable().optional();
const ips = z.array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'an IP address or CIDR range')).max(100).nullable().optional();
const when = z.string().datetime({ offset: true }).nullable().optional();

export const accountInput = z
  .object({
    id: accountIdSchema,
    name: z.string().min(1).max(200).optional(),
    parent_id: accountIdSchema.nullable().optional(),
    multiplier: multiplier.optional(),
    credit_limit_usd: usd.nullable().optional(),
    rpm: limit,
    tpm: limit,
    models: names,
    ip_allowlist: ips,
    expires_at: when,
  })
  .strict();

export const creditInput = z
  .object({
    amount_usd: usd.refine((n) => n > 0n, 'must be greater than 0'),
    note: z.string().max(500).default(''),
    idempotency_key: z.string().min(1).max(200),
  })
  .strict();

export const keyInput = z
  .object({
    name: z.string().max(200).default(''),
    models: names,
    rpm: limit,
    tpm: limit,
    ip_allowlist: ips,
    origins: z.array(z.string().url().max(200)).max(100).nullable().optional(),
    expires_at: when,
  })
  .strict();

const upstreamInput = z
  .object({
    base_url: z.string().url().regex(/^https?:\/\//, 'http(s) URL'),
    key: z.string().min(1).max(500),
    organization: z.string().max(100).nullable().optional(),
    models: names,
    weight: z.number().int().min(1).max(1000).optional(),
    pool_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  })
  .strict();

export function sendApiError(res: Response, status: number, code: string | null, message: string, param: string | null = null, type = 'invalid_request_error'): void {
  res.status(status).json({ error: { message, type, param, code } });
}

export function sendResult<T>(res: Response, r: Result<T>, status = 200, view: (v: T) => unknown = (v) => v): void {
  if (r.ok) res.status(status).json(view(r.value));
  else sendApiError(res, r.status, r.code, r.message, r.param ?? null);
}

/** Parses a body with a strict schema; answers 400 naming the first bad field. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, req: Request, res: Response): z.infer<S> | null {
  const r = schema.safeParse(req.body ?? {});
  if (r.success) return r.data as z.infer<S>;
  const issue = r.error.issues[0];
  const param = issue?.path.join('.') || null;
  const message = issue?.code === 'unrecognized_keys' ? `Unknown field(s): ${(issue as { keys: string[] }).keys.join(', ')}.` : `Invalid '${param ?? 'body'}': ${issue?.message ?? 'invalid'}.`;
  sendApiError(res, 400, issue?.code === 'unrecognized_keys' ? 'unknown_parameter' : 'invalid_value', message, param);
  return null;
}

export function accountView(a: AccountSummary) {
  return {
    id: a.id,
    object: 'account',
    parent_id: a.parentId,
    name: a.name,
    status: a.status,
    multiplier: a.multiplierPpm / 1_000_000,
    multiplier_ppm: a.multiplierPpm,
    balance_usd: formatUsd(BigInt(a.balanceNano)),
    balance_nano: a.balanceNano,
    credited_nano: a.creditedNano,
    spent_nano: a.spentNano,
    held_nano: a.heldNano,
    credit_limit_usd: formatUsd(BigInt(a.creditLimitNano)),
    requests: a.requests,
    rpm: a.rpm,
    tpm: a.tpm,
    models: a.models,
    ip_allowlist: a.ipAllowlist,
    expires_at: a.expiresAt,
    created_at: a.createdAt,
  };
}

export function accountSettings(body: z.infer<typeof accountInput>) {
  return {
    name: body.name ?? body.id,
    multiplierPpm: body.multiplier ?? 1_000_000,
    creditLimitNano: body.credit_limit_usd === undefined || body.credit_limit_usd === null ? null : body.credit_limit_usd.toString(),
    limits: { rpm: body.rpm ?? null, tpm: body.tpm ?? null },
    models: body.models ?? null,
    ipAllowlist: body.ip_allowlist ?? null,
    expiresAt: body.expires_at ?? null,
  };
}

export function keySettings(body: z.infer<typeof keyInput>) {
  return {
    name: body.name,
    models: body.models ?? null,
    limits: { rpm: body.rpm ?? null, tpm: body.tpm ?? null },
    ipAllowlist: body.ip_allowlist ?? null,
    origins: body.origins ?? null,
    expiresAt: body.expires_at ?? null,
  };
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The operator's API: /admin/v1/…, authorized by the admin token. */
export function adminRouter(service: AccountsService, pool: UpstreamPool, adminToken: string) {
  const r = express.Router();
  r.use((req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1] || !sameSecret(m[1], adminToken)) return sendApiError(res, 401, 'invalid_admin_token', 'This endpoint needs the operator admin token: Authorization: Bearer <YUGONG_ADMIN_TOKEN>.');
    next();
  });
  r.post('/accounts', async (req, res) => {
    const body = parseBody(accountInput, req, res);
    if (!body) return;
    sendResult(res, await service.createAccount(body.id, body.parent_id ?? null, accountSettings(body)), 201, accountView);
  });
  r.get('/accounts/:id', async (req, res) => {
    const a = await service.get(req.params.id ?? '');
    if (!a) return sendApiError(res, 404, 'account_not_found', `No account "${req.params.id}".`);
    res.json(accountView(a));
  });
  r.post('/accounts/:id/credits', async (req, res) => {
    const body = parseBody(creditInput, req, res);
    if (!body) return;
    sendResult(res, await service.grantCredit(req.params.id ?? '', body.amount_usd, body.note, body.idempotency_key, 'operator'), 201, accountView);
  });
  r.post('/accounts/:id/keys', async (req, res) => {
    const body = parseBody(keyInput, req, res);
    if (!body) return;
    sendResult(res, await service.createKey(req.params.id ?? '', keySettings(body)), 201, (k) => ({ object: 'api_key', id: k.keyId, key: k.key, prefix: k.prefix, account_id: k.accountId }));
  });
  r.delete('/accounts/:id/keys/:keyId', async (req, res) => {
    sendResult(res, await service.revokeKey(req.params.id ?? '', req.params.keyId ?? ''), 200, (k) => ({ object: 'api_key', id: k.keyId, status: k.status }));
  });
  r.post('/upstreams', async (req, res) => {
    const body = parseBody(upstreamInput, req, res);
    if (!body) return;
    const seed = { baseUrl: body.base_url, key: body.key, organization: body.organization ?? null, models: body.models ?? null, weight: body.weight ?? 1, poolId: body.pool_id ?? 'default' };
    sendResult(res, await service.addUpstreamKey(seed), 201, (v) => ({ object: 'upstream_key', id: v.keyId, created: v.created }));
  });
  r.get('/upstreams', (_req, res) => {
    const now = Date.now();
    res.json({
      object: 'list',
      data: pool.all().map((k) => ({
        id: k.id, pool_id: k.poolId, base_url: k.baseUrl, organization: k.organization, models: k.models, weight: k.weight,
        status: k.status, reason: k.reason, cooling_for_ms: Math.max(0, k.cooldownUntil - now), in_flight: k.inFlight,
        remaining_requests: k.remainingRequests, remaining_tokens: k.remainingTokens,
      })),
    });
  });
  for (const action of ['enable', 'disable'] as const) {
    r.post(`/upstreams/:id/${action}`, async (req, res) => {
      sendResult(res, await service.setUpstreamStatus(req.params.id ?? '', action === 'enable', `by operator`), 200, (v) => ({ object: 'upstream_key', id: v.keyId, status: v.status }));
    });
  }
  return r;
}
