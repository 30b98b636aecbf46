import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { clientErrors, type ApiError } from '../http/errors.js';
import { ipAllowed, normalizeIp } from '../http/limits.js';
import type { FailedAuthLimiter } from './limiter.js';
import type { AccountView, ClientKey, Projections } from './projections.js';

export interface Caller {
  key: ClientKey;
  /** The key's account path, root first. */
  accounts: AccountView[];
  ip: string;
}

export interface AuthDeps {
  projections: Projections;
  authLimiter: FailedAuthLimiter;
  publicUrl: string;
}

function bearer(req: IncomingMessage): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1] ?? null;
}

/**
 * Who is calling, for the OpenAI API and the self-service account API alike: a live key of
 * an active account path, from an allowed address and origin. Failures are counted per
 * address so scanners are slowed down before they cost Redis lookups.
 */
export async function authenticate(req: IncomingMessage, deps: AuthDeps, now = Date.now()): Promise<Caller | ApiError> {
  const ip = normalizeIp(req.socket.remoteAddress);
  const blocked = deps.authLimiter.blockedFor(ip);
  if (blocked > 0) return clientErrors.authRateLimited(blocked);
  const token = bearer(req);
  if (!token) {
    deps.authLimiter.fail(ip);
    return clientErrors.missingKey(deps.publicUrl);
  }
  const key = await deps.projections.clientKey(createHash('sha256').update(token).digest('hex'));
  if (!key) {
    deps.authLimiter.fail(ip);
    return clientErrors.invalidKey(deps.publicUrl);
  }
  if (key.status !== 'active') return clientErrors.keyRevoked();
  if (key.expiresAt !== null && key.expiresAt <= now) return clientErrors.keyExpired();
  const accounts = await deps.projections.path(key.root, key.path);
  if (!accounts) return clientErrors.invalidKey(deps.publicUrl);
  if (accounts.some((a) => a.status !== 'active' || (a.expiresAt !== null && a.expiresAt <= now))) return clientErrors.accountDisabled();
  if (!ipAllowed(key.ipAllowlist, ip) || accounts.some((a) => !ipAllowed(a.ipAllowlist, ip))) return clientErrors.ipNotAllowed();
  if (req.headers.origin && key.origins && !key.origins.includes(req.headers.origin)) return clientErrors.originNotAllowed();
  return { key, accounts, ip };
}

export function isApiError(v: Caller | ApiError): v is ApiError {
  return 'status' in v;
}
