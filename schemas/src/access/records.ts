import type { RedisClient } from '../redis-client.js';
import { redisKeys } from '../redis-keys.js';

/** A client API key as the ledger projects it (`redisKeys.apiKey(hash)`). */
export interface ClientKey {
  keyId: string;
  accountId: string;
  root: string;
  /** root → … → the key's account. */
  path: string[];
  status: 'active' | 'revoked';
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  ipAllowlist: string[] | null;
  origins: string[] | null;
  expiresAt: number | null;
}

/** What admission and authorization need of an account (`redisKeys.account(root, id)`). */
export interface AccountView {
  id: string;
  status: 'active' | 'disabled';
  multiplierPpm: number;
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  ipAllowlist: string[] | null;
  expiresAt: number | null;
}

const num = (v: string | null | undefined): number | null => (v === undefined || v === null || v === '' ? null : Number(v));
const list = (v: string | null | undefined): string[] | null => (v ? (JSON.parse(v) as string[]) : null);
const time = (v: string | null | undefined): number | null => (v ? Date.parse(v) : null);

export function decodeClientKey(h: Record<string, string>): ClientKey | null {
  if (!h.keyId) return null;
  return {
    keyId: h.keyId,
    accountId: h.accountId ?? '',
    root: h.root ?? '',
    path: list(h.path) ?? [],
    status: h.status === 'active' ? 'active' : 'revoked',
    models: list(h.models),
    rpm: num(h.rpm),
    tpm: num(h.tpm),
    ipAllowlist: list(h.ipAllowlist),
    origins: list(h.origins),
    expiresAt: time(h.expiresAt),
  };
}

/** The account fields `decodeAccountView` reads, in the order it reads them (for HMGET). */
export const ACCOUNT_VIEW_FIELDS = ['id', 'status', 'multiplierPpm', 'rpm', 'tpm', 'models', 'ipAllowlist', 'expiresAt'] as const;

export function decodeAccountView(id: string, fields: readonly (string | null)[]): AccountView | null {
  const [fid, status, ppm, rpm, tpm, models, ip, expires] = fields;
  if (!fid) return null;
  return {
    id,
    status: status === 'active' ? 'active' : 'disabled',
    multiplierPpm: Number(ppm ?? 1_000_000),
    rpm: num(rpm),
    tpm: num(tpm),
    models: list(models),
    ipAllowlist: list(ip),
    expiresAt: time(expires),
  };
}

/** Where the authenticator finds keys and accounts: Redis directly, or a cache in front of it. */
export interface AccessReader {
  clientKey(hash: string): Promise<ClientKey | null>;
  /** The accounts of a path, root first; null if one of them does not exist (yet). */
  path(root: string, ids: readonly string[]): Promise<AccountView[] | null>;
}

/** Reads every lookup from Redis: for services that do not subscribe to change notices. */
export function redisAccessReader(redis: RedisClient): AccessReader {
  return {
    async clientKey(hash) {
      return decodeClientKey(await redis.hgetall(redisKeys.apiKey(hash)));
    },
    async path(root, ids) {
      const views = await readAccountViews(redis, root, ids);
      return views.every((v): v is AccountView => v !== null) ? views : null;
    },
  };
}

/** One pipeline for the accounts of a tree; a missing account is null in its place. */
export async function readAccountViews(redis: RedisClient, root: string, ids: readonly string[]): Promise<(AccountView | null)[]> {
  if (ids.length === 0) return [];
  const p = redis.pipeline();
  for (const id of ids) p.hmget(redisKeys.account(root, id), ...ACCOUNT_VIEW_FIELDS);
  const results = (await p.exec()) ?? [];
  return ids.map((id, i) => {
    const [err, fields] = results[i] ?? [];
    if (err) throw err;
    return decodeAccountView(id, fields as (string | null)[]);
  });
}
