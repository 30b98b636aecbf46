import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import { redisKeys } from '@yugong/schemas';

/** Who asks: the operator sees every account; an account's key sees its own subtree. */
export type Caller = { kind: 'operator' } | { kind: 'account'; accountId: string; root: string; keyId: string };

/** An account the caller may read, with the tree it lives in. */
export interface Target {
  accountId: string;
  root: string;
  path: string[];
}

export type Denied = { status: number; code: string; message: string; param: string | null };

function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export async function authenticate(req: Request, redis: Redis, adminToken: string): Promise<Caller | Denied> {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  const denied: Denied = { status: 401, code: 'invalid_api_key', message: 'Send your Yugong API key (or the operator token) as "Authorization: Bearer <key>".', param: null };
  if (!token) return denied;
  if (!token.startsWith('sk-')) return same(token, adminToken) ? { kind: 'operator' } : denied;
  const h = await redis.hmget(redisKeys.apiKey(createHash('sha256').update(token).digest('hex')), 'keyId', 'accountId', 'root', 'status', 'expiresAt');
  const [keyId, accountId, root, status, expiresAt] = h;
  if (!keyId || !accountId || !root) return denied;
  if (status !== 'active') return { ...denied, message: 'This API key has been revoked.' };
  if (expiresAt && Date.parse(expiresAt) <= Date.now()) return { ...denied, message: 'This API key has expired.' };
  return { kind: 'account', accountId, root, keyId };
}

/**
 * The account a request asks about (the caller's own by default). Accounts outside the
 * caller's subtree answer exactly like accounts that do not exist.
 */
export async function resolveTarget(caller: Caller, requested: string | null, redis: Redis): Promise<Target | Denied> {
  const id = requested ?? (caller.kind === 'account' ? caller.accountId : null);
  if (id === null) return { status: 400, code: 'missing_required_parameter', message: "The operator must name an 'account_id'.", param: 'account_id' };
  const notFound: Denied = { status: 404, code: 'account_not_found', message: `No account "${id}".`, param: 'account_id' };
  const root = await redis.hget(redisKeys.accountRoots(), id);
  if (!root) return notFound;
  const raw = await redis.hget(redisKeys.account(root, id), 'path');
  const path = raw ? (JSON.parse(raw) as string[]) : [id];
  if (caller.kind === 'account' && !path.includes(caller.accountId)) return notFound;
  return { accountId: id, root, path };
}

export function isDenied<T extends object>(v: T | Denied): v is Denied {
  return 'status' in v && 'code' in v;
}
