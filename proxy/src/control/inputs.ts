import type { Request, Response } from 'express';
import { z } from 'zod';
import { accountSegment, parseCidr, accountId as accountIdSchema, formatUsd, matchRuleSchema, parseMultiplier, parseUsd, ratesSchema, type ModelPrice } from '@yugong/schemas';
import { sendApiError } from '../errors.js';
import type { AccountPatch, AccountSummary, KeySummary, Result } from './service.js';

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
const ips = z
  .array(
    z
      .string()
      .max(64)
      .refine((s) => parseCidr(s) !== null, 'must be an IP address or CIDR range (IPv4 or IPv6)'),
  )
  .max(100)
  .nullable()
  .optional();
const when = z.string().datetime({ offset: true }).nullable().optional();

/** The settings a generic update may change; balances, multiplier and ownership are not among them. */
const accountSettingsShape = {
  name: z.string().min(1).max(200).optional(),
  credit_limit_usd: usd.nullable().optional(),
  rpm: limit,
  tpm: limit,
  models: names,
  ip_allowlist: ips,
  expires_at: when,
};

export const accountPatchInput = z.object(accountSettingsShape).strict();

export const accountInput = z.object({ id: accountSegment, parent_id: accountIdSchema.nullable().optional(), multiplier: multiplier.optional(), ...accountSettingsShape }).strict();

/** Fields a caller may read but only change through their own endpoint (or never). */
export const protectedFields: Record<string, string> = {
  id: 'An account id cannot be changed.',
  parent_id: 'An account cannot be moved to another parent.',
  path: 'An account cannot be moved to another parent.',
  multiplier: 'Change the multiplier with POST /accounts/{id}/multiplier.',
  multiplier_ppm: 'Change the multiplier with POST /accounts/{id}/multiplier.',
  status: 'Disable an account with POST /accounts/{id}/disable.',
  balance_usd: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  balance_nano: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  credited_nano: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  spent_nano: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  held_nano: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  leased_nano: 'Balances change only through top-ups (POST /accounts/{id}/credits) and usage.',
  requests: 'Request counts change only through usage.',
  created_at: 'The creation time cannot be changed.',
};

export const multiplierInput = z.object({ multiplier }).strict();
export const disableInput = z.object({ reason: z.string().max(500).default('') }).strict();

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

export const upstreamInput = z
  .object({
    base_url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'http(s) URL'),
    key: z.string().min(1).max(500),
    organization: z.string().max(100).nullable().optional(),
    models: names,
    weight: z.number().int().min(1).max(1000).optional(),
    pool_id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .optional(),
  })
  .strict();

/** Operator prices, in USD per million units (tokens, audio seconds, characters) and per image. */
const usdRate = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    const nano = parseUsd(String(v));
    if (nano < 0n || nano > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('range');
    return Number(nano);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a non-negative USD amount with at most 9 decimals' });
    return z.NEVER;
  }
});
const rateNames = Object.keys(ratesSchema.shape).filter((k) => k !== 'perImage') as (keyof typeof ratesSchema.shape)[];
const usdRates = z
  .object({
    ...Object.fromEntries(rateNames.map((k) => [k, usdRate.optional()])),
    perImage: z.record(z.string().max(50), usdRate).optional(),
  })
  .strict();

export const priceInput = z
  .object({
    /** Start from the table in force (default) or from a fresh seed of the maintained package. */
    base: z.enum(['current', 'package']).default('current'),
    overrides: z
      .array(z.object({ id: z.string().min(1).max(200), match: matchRuleSchema.optional(), rates_usd_per_1m: usdRates }).strict())
      .max(500)
      .default([]),
  })
  .strict();

export function overridesOf(body: z.infer<typeof priceInput>): ModelPrice[] {
  return body.overrides.map((o) => ({ id: o.id, match: o.match ?? { equals: o.id }, rates: o.rates_usd_per_1m as ModelPrice['rates'] }));
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
    leased_nano: a.leasedNano,
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

export function keyView(k: KeySummary) {
  return {
    object: 'api_key',
    id: k.keyId,
    account_id: k.accountId,
    prefix: k.prefix,
    name: k.name,
    status: k.status,
    models: k.models,
    rpm: k.rpm,
    tpm: k.tpm,
    ip_allowlist: k.ipAllowlist,
    origins: k.origins,
    expires_at: k.expiresAt,
    created_at: k.createdAt,
    revoked_at: k.revokedAt,
  };
}

/** Fields present in the body replace the current ones; limits are stored as a pair. */
export function accountPatch(body: z.infer<typeof accountPatchInput>, current: AccountSummary): AccountPatch {
  const patch: AccountPatch = {};
  if (body.name !== undefined) patch.name = body.name;
  if (body.credit_limit_usd !== undefined) patch.creditLimitNano = body.credit_limit_usd === null ? null : body.credit_limit_usd.toString();
  if (body.rpm !== undefined || body.tpm !== undefined) {
    patch.limits = { rpm: body.rpm === undefined ? current.rpm : body.rpm, tpm: body.tpm === undefined ? current.tpm : body.tpm };
  }
  if (body.models !== undefined) patch.models = body.models;
  if (body.ip_allowlist !== undefined) patch.ipAllowlist = body.ip_allowlist;
  if (body.expires_at !== undefined) patch.expiresAt = body.expires_at;
  return patch;
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
