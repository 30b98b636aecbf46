import type { RedisClient } from '../redis-client.js';
import { redisKeys } from '../redis-keys.js';
import { decodeAccount, decodeApiKey, type ApiKeyRecord } from '../records.js';

/** A client API key as authentication reads it (`redisKeys.apiKey(hash)`): its record, expiry as a time. */
export type ClientKey = Pick<ApiKeyRecord, 'keyId' | 'accountId' | 'root' | 'path' | 'status' | 'models' | 'rpm' | 'tpm' | 'ipAllowlist' | 'origins'> & { expiresAt: number | null };

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

const time = (v: string | null): number | null => (v ? Date.parse(v) : null);

/** The lookup's view of the API key record. */
export function decodeClientKey(h: Record<string, string>): ClientKey | null {
  const k = decodeApiKey(h);
  if (!k) return null;
  return {
    keyId: k.keyId,
    accountId: k.accountId,
    root: k.root,
    path: k.path,
    status: k.status,
    models: k.models,
    rpm: k.rpm,
    tpm: k.tpm,
    ipAllowlist: k.ipAllowlist,
    origins: k.origins,
    expiresAt: time(k.expiresAt),
  };
}

/** The account fields `decodeAccountView` reads, in the order it reads them (for HMGET). */
export const ACCOUNT_VIEW_FIELDS = ['id', 'status', 'multiplierPpm', 'rpm', 'tpm', 'models', 'ipAllowlist', 'expiresAt'] as const;

/** Admission's view of the account record, from the fields HMGET returned (in ACCOUNT_VIEW_FIELDS' order). */
export function decodeAccountView(id: string, fields: readonly (string | null)[]): AccountView | null {
  const h: Record<string, string> = {};
  ACCOUNT_VIEW_FIELDS.forEach((name, i) => {
    const v = fields[i];
    if (v !== null && v !== undefined) h[name] = v;
  });
  const a = decodeAccount(h);
  if (!a) return null;
  return { id, status: a.status, multiplierPpm: a.multiplierPpm, rpm: a.rpm, tpm: a.tpm, models: a.models, ipAllowlist: a.ipAllowlist, expiresAt: time(a.expiresAt) };
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
