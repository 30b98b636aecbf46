/**
 * The records the ledger writes to Redis and every service reads: the account hash, the API
 * key hashes, the upstream key projection and the change notice. Each has one encoder (the
 * ledger's) and one decoder (everyone else's) here, so a field is named in one place.
 * Absent values are '' in a hash (Redis has no null); lists are JSON.
 */
import { z } from 'zod';
import type { EventData } from './events.js';

const num = (v: string | null | undefined): number | null => (v === undefined || v === null || v === '' ? null : Number(v));
const list = (v: string | null | undefined): string[] | null => (v ? (JSON.parse(v) as string[]) : null);
const nano = (v: string | null | undefined): bigint => (v ? BigInt(v) : 0n);
const text = (v: string | null | undefined): string | null => (v ? v : null);
const optionalJson = (v: unknown): string => (v === null || v === undefined ? '' : JSON.stringify(v));
const optional = (v: string | number | null | undefined): string => (v === null || v === undefined ? '' : String(v));

// ── Accounts (`redisKeys.account(root, id)`) ────────────────────────────────────────────

export type AccountSettings = Omit<EventData<'account.created'>, 'accountId' | 'parentId'>;

/** The counters the ledger's scripts move; made 0 when the account is made (HSETNX). */
export const ACCOUNT_COUNTERS = ['credited', 'spent', 'held', 'leased', 'requests'] as const;

/** An account as stored, every field decoded. */
export interface AccountRecord {
  id: string;
  parentId: string | null;
  root: string;
  /** root → … → this account. */
  path: string[];
  name: string;
  status: 'active' | 'disabled';
  disabledReason: string | null;
  multiplierPpm: number;
  creditLimitNano: bigint;
  creditedNano: bigint;
  spentNano: bigint;
  heldNano: bigint;
  leasedNano: bigint;
  requests: number;
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  ipAllowlist: string[] | null;
  expiresAt: string | null;
  createdAt: string;
}

/** The hash fields of settings given (a patch leaves out what it does not change). */
export function encodeAccountSettings(s: Partial<AccountSettings>): Record<string, string> {
  const h: Record<string, string> = {};
  if (s.name !== undefined) h.name = s.name;
  if (s.multiplierPpm !== undefined) h.multiplierPpm = String(s.multiplierPpm);
  if (s.creditLimitNano !== undefined) h.creditLimitNano = s.creditLimitNano ?? '0';
  if (s.limits !== undefined) {
    h.rpm = optional(s.limits.rpm);
    h.tpm = optional(s.limits.tpm);
  }
  if (s.models !== undefined) h.models = optionalJson(s.models);
  if (s.ipAllowlist !== undefined) h.ipAllowlist = optionalJson(s.ipAllowlist);
  if (s.expiresAt !== undefined) h.expiresAt = s.expiresAt ?? '';
  return h;
}

/** A new account's hash, without its counters. */
export function encodeAccount(a: { id: string; parentId: string | null; root: string; path: string[]; settings: AccountSettings; createdAt: string }): Record<string, string> {
  return { id: a.id, parent: a.parentId ?? '', root: a.root, path: JSON.stringify(a.path), status: 'active', ...encodeAccountSettings(a.settings), createdAt: a.createdAt };
}

export function encodeAccountDisabled(reason: string): Record<string, string> {
  return { status: 'disabled', disabledReason: reason };
}

/** Null when the hash is not an account (not written yet, or gone). */
export function decodeAccount(h: Record<string, string>): AccountRecord | null {
  if (!h.id) return null;
  return {
    id: h.id,
    parentId: text(h.parent),
    root: h.root ?? h.id,
    path: list(h.path) ?? [h.id],
    name: h.name ?? '',
    status: h.status === 'active' ? 'active' : 'disabled',
    disabledReason: text(h.disabledReason),
    multiplierPpm: num(h.multiplierPpm) ?? 1_000_000,
    creditLimitNano: nano(h.creditLimitNano),
    creditedNano: nano(h.credited),
    spentNano: nano(h.spent),
    heldNano: nano(h.held),
    leasedNano: nano(h.leased),
    requests: num(h.requests) ?? 0,
    rpm: num(h.rpm),
    tpm: num(h.tpm),
    models: list(h.models),
    ipAllowlist: list(h.ipAllowlist),
    expiresAt: text(h.expiresAt),
    createdAt: h.createdAt ?? '',
  };
}

// ── API keys (`redisKeys.apiKey(hash)` for lookups, `redisKeys.keyMeta(root, id)` for owners) ──

/** An API key as its owner sees it (never its secret or hash). */
export interface ApiKeyRecord {
  keyId: string;
  accountId: string;
  root: string;
  path: string[];
  prefix: string;
  name: string;
  status: 'active' | 'revoked';
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  ipAllowlist: string[] | null;
  origins: string[] | null;
  expiresAt: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/** A new key's hash: the same fields under both keys (the owner's copy adds the hash). */
export function encodeApiKey(k: EventData<'apikey.created'>, at: { root: string; path: string[]; createdAt: string }): Record<string, string> {
  return {
    keyId: k.keyId,
    accountId: k.accountId,
    root: at.root,
    path: JSON.stringify(at.path),
    status: 'active',
    prefix: k.prefix,
    name: k.name,
    models: optionalJson(k.models),
    rpm: optional(k.limits.rpm),
    tpm: optional(k.limits.tpm),
    ipAllowlist: optionalJson(k.ipAllowlist),
    origins: optionalJson(k.origins),
    expiresAt: k.expiresAt ?? '',
    createdAt: at.createdAt,
  };
}

export function encodeApiKeyRevoked(at: string): Record<string, string> {
  return { status: 'revoked', revokedAt: at };
}

export function decodeApiKey(h: Record<string, string>): ApiKeyRecord | null {
  if (!h.keyId) return null;
  return {
    keyId: h.keyId,
    accountId: h.accountId ?? '',
    root: h.root ?? '',
    path: list(h.path) ?? [],
    prefix: h.prefix ?? '',
    name: h.name ?? '',
    status: h.status === 'active' ? 'active' : 'revoked',
    models: list(h.models),
    rpm: num(h.rpm),
    tpm: num(h.tpm),
    ipAllowlist: list(h.ipAllowlist),
    origins: list(h.origins),
    expiresAt: text(h.expiresAt),
    createdAt: h.createdAt ?? '',
    revokedAt: text(h.revokedAt),
  };
}

// ── Upstream keys (a field of `redisKeys.upstreamKeys()` each, JSON) ───────────────────────

export type UpstreamKeyRecord = EventData<'upstream.key.added'> & { status: 'active' | 'disabled'; reason: string; changedAt: string };

export function encodeUpstreamKey(k: UpstreamKeyRecord): string {
  return JSON.stringify(k);
}

/** A health change on top of the stored key (`null` if it was removed since). */
export function withUpstreamStatus(raw: string | null, status: UpstreamKeyRecord['status'], reason: string, changedAt: string): UpstreamKeyRecord | null {
  const k = decodeUpstreamKey(raw);
  return k && { ...k, status, reason, changedAt };
}

export function decodeUpstreamKey(raw: string | null | undefined): UpstreamKeyRecord | null {
  if (!raw) return null;
  const k = JSON.parse(raw) as UpstreamKeyRecord;
  return { ...k, status: k.status === 'active' ? 'active' : 'disabled', reason: k.reason ?? '' };
}

// ── Change notices (published on `redisKeys.changes()`) ──────────────────────────────────

/** A cooldown one node learned from an upstream's answer, shared with the others. */
export type UpstreamHealthChange = { kind: 'cooldown'; keyId: string; until: number } | { kind: 'org-cooldown'; organization: string; until: number };

/** What the proxy nodes are told when a record they cache changes. */
export type ChangeNotice =
  | { type: 'account'; accountId: string; root: string }
  | { type: 'apikey'; hash: string }
  | { type: 'upstream'; keyId: string }
  | { type: 'prices'; version: string }
  | { type: 'upstream-health'; from: string; change: UpstreamHealthChange };

const short = z.string().max(300);
const noticeSchema: z.ZodType<ChangeNotice> = z.union([
  z.object({ type: z.literal('account'), accountId: short, root: short }),
  z.object({ type: z.literal('apikey'), hash: short }),
  z.object({ type: z.literal('upstream'), keyId: short }),
  z.object({ type: z.literal('prices'), version: short }),
  z.object({
    type: z.literal('upstream-health'),
    from: short,
    change: z.union([z.object({ kind: z.literal('cooldown'), keyId: short, until: z.number() }), z.object({ kind: z.literal('org-cooldown'), organization: short, until: z.number() })]),
  }),
]);

export function encodeNotice(n: ChangeNotice): string {
  return JSON.stringify(n);
}

/** Anyone who can publish on the channel can send anything: what is not a notice is null. */
export function decodeNotice(message: string): ChangeNotice | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  const parsed = noticeSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
