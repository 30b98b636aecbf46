import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RedisClient } from '../redis-client.js';
import { redisKeys } from '../redis-keys.js';
import { clientAddress, ipAllowed, limiterSubject, type Cidr } from './ip.js';
import type { AccessReader, AccountView, ClientKey } from './records.js';

/** A refusal in OpenAI's error shape; the services send it as their own error body. */
export interface AccessDenial {
  status: number;
  type: string;
  code: string;
  message: string;
  param: null;
  headers?: Record<string, string>;
}

const deny = (status: number, code: string, message: string, headers?: Record<string, string>): AccessDenial => ({
  status,
  type: status === 429 ? 'requests' : 'invalid_request_error',
  code,
  message,
  param: null,
  ...(headers ? { headers } : {}),
});

export const accessDenials = {
  missingKey: (base: string) => deny(401, 'missing_api_key', `You didn't provide an API key. Send your Yugong key (sk-yg-…) as "Authorization: Bearer <key>", with the base URL ${base}/v1.`),
  invalidKey: (base: string) => deny(401, 'invalid_api_key', `Incorrect API key provided. Use a Yugong key (sk-yg-…) with the base URL ${base}/v1; OpenAI keys do not work here.`),
  keyRevoked: () => deny(401, 'invalid_api_key', 'This API key has been revoked.'),
  keyExpired: () => deny(401, 'invalid_api_key', 'This API key has expired.'),
  accountDisabled: () => deny(403, 'account_disabled', 'The account of this API key is disabled.'),
  ipNotAllowed: () => deny(403, 'ip_not_allowed', 'Requests from your IP address are not allowed for this API key.'),
  originNotAllowed: () => deny(403, 'origin_not_allowed', 'Requests from this web origin are not allowed for this API key.'),
  authRateLimited: (retryAfterS: number) =>
    deny(429, 'rate_limit_exceeded', `Too many failed authentication attempts from your address. Try again in ${retryAfterS}s.`, { 'retry-after': String(retryAfterS) }),
};

export interface AccessContext {
  ip: string;
  origin: string | undefined;
  now: number;
}

/**
 * Whether a live key may be used from here and now: the key's status and expiry, every
 * account of its path active and unexpired, the address within the key's and every
 * account's allowlist, the web origin within the key's. The one rule for every service.
 */
export function authorize(key: ClientKey, accounts: readonly AccountView[], ctx: AccessContext): AccessDenial | null {
  if (key.status !== 'active') return accessDenials.keyRevoked();
  if (key.expiresAt !== null && key.expiresAt <= ctx.now) return accessDenials.keyExpired();
  if (accounts.some((a) => a.status !== 'active' || (a.expiresAt !== null && a.expiresAt <= ctx.now))) return accessDenials.accountDisabled();
  if (!ipAllowed(key.ipAllowlist, ctx.ip) || accounts.some((a) => !ipAllowed(a.ipAllowlist, ctx.ip))) return accessDenials.ipNotAllowed();
  if (ctx.origin !== undefined && key.origins && !key.origins.includes(ctx.origin)) return accessDenials.originNotAllowed();
  return null;
}

/** May a browser page at `origin` read this answer? Not when the key refused that origin. */
export function corsAllowed(denial: AccessDenial | null): boolean {
  return denial?.code !== 'origin_not_allowed';
}

/**
 * Failed authentications per address (an IPv6 /64 counts as one), in one-minute windows
 * shared by every node through Redis. Only failures are counted and only failures are
 * refused: a valid key is never turned away because others failed from its address.
 */
export class FailedAuthLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly maxPerMinute = 30,
  ) {}

  /** Counts one failure; answers the seconds to wait when the address is over its limit. */
  async fail(ip: string, now = Date.now()): Promise<number> {
    const minute = Math.floor(now / 60_000);
    const key = redisKeys.authFailures(limiterSubject(ip), minute);
    const [[err, count] = [null, 0]] = (await this.redis.multi().incr(key).pexpire(key, 120_000).exec()) ?? [];
    if (err) throw err;
    return Number(count) > this.maxPerMinute ? Math.max(1, Math.ceil(((minute + 1) * 60_000 - now) / 1000)) : 0;
  }
}

export interface Caller {
  key: ClientKey;
  /** The key's account path, root first. */
  accounts: AccountView[];
  ip: string;
}

export interface Authenticator {
  /** The client's address, through trusted proxies only. */
  clientIp(req: IncomingMessage): string;
  authenticate(req: IncomingMessage, now?: number): Promise<Caller | AccessDenial>;
}

export function bearerToken(req: IncomingMessage): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;
}

export function isDenial(v: object): v is AccessDenial {
  return 'status' in v && 'code' in v;
}

export function createAuthenticator(deps: { reader: AccessReader; limiter: FailedAuthLimiter; trustedProxies: readonly Cidr[]; publicUrl: string }): Authenticator {
  const clientIp = (req: IncomingMessage) => clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], deps.trustedProxies);
  const failed = async (ip: string, denial: AccessDenial) => {
    const wait = await deps.limiter.fail(ip);
    return wait > 0 ? accessDenials.authRateLimited(wait) : denial;
  };
  return {
    clientIp,
    async authenticate(req, now = Date.now()) {
      const ip = clientIp(req);
      const token = bearerToken(req);
      if (!token) return failed(ip, accessDenials.missingKey(deps.publicUrl));
      const key = await deps.reader.clientKey(createHash('sha256').update(token).digest('hex'));
      if (!key) return failed(ip, accessDenials.invalidKey(deps.publicUrl));
      const accounts = await deps.reader.path(key.root, key.path);
      if (!accounts) return failed(ip, accessDenials.invalidKey(deps.publicUrl));
      const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
      return authorize(key, accounts, { ip, origin, now }) ?? { key, accounts, ip };
    },
  };
}
