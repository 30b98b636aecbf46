import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerToken, decodeAccount, isDenial, redisKeys, type AccessDenial, type Authenticator, type RedisClient } from '@yugong/schemas';

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

/**
 * The operator by its token; anyone else through the same authentication and authorization
 * as the proxy (key and account status, expiry, IP allowlists, origins, failure limiter).
 */
export async function authenticate(req: IncomingMessage, auth: Authenticator, adminToken: string): Promise<Caller | AccessDenial> {
  const token = bearerToken(req);
  if (token && !token.startsWith('sk-') && same(token, adminToken)) return { kind: 'operator' };
  const caller = await auth.authenticate(req);
  if (isDenial(caller)) return caller;
  return { kind: 'account', accountId: caller.key.accountId, root: caller.key.root, keyId: caller.key.keyId };
}

/**
 * The account a request asks about (the caller's own by default). Accounts outside the
 * caller's subtree answer exactly like accounts that do not exist.
 */
export async function resolveTarget(caller: Caller, requested: string | null, redis: RedisClient): Promise<Target | Denied> {
  const id = requested ?? (caller.kind === 'account' ? caller.accountId : null);
  if (id === null) return { status: 400, code: 'missing_required_parameter', message: "The operator must name an 'account_id'.", param: 'account_id' };
  const notFound: Denied = { status: 404, code: 'account_not_found', message: `No account "${id}".`, param: 'account_id' };
  const root = await redis.hget(redisKeys.accountRoots(), id);
  if (!root) return notFound;
  const path = decodeAccount(await redis.hgetall(redisKeys.account(root, id)))?.path ?? [id];
  if (caller.kind === 'account' && !path.includes(caller.accountId)) return notFound;
  return { accountId: id, root, path };
}

export function isDenied<T extends object>(v: T | Denied): v is Denied {
  return 'status' in v && 'code' in v;
}
