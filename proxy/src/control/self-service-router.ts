import express, { type NextFunction, type Request, type Response } from 'express';
import { accountsRouter, type Scope } from './accounts-router.js';
import { bearerCors } from './cors.js';
import { sendApiError } from '../errors.js';
import { accountView } from './inputs.js';
import type { AccountsService } from './service.js';
import { corsAllowed, isDenial, type Authenticator, type Caller } from '@yugong/schemas';

function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}

function scopeOf(service: AccountsService, caller: Caller): Scope {
  const self = caller.key.accountId;
  return {
    actor: `account:${self}`,
    defaultParent: self,
    namespaced: true,
    keyLimits: caller.key,
    sees: (a) => a.path.includes(self),
    manages: (a) => a.path.includes(self) && a.id !== self,
    async listAll(_req, res) {
      const { accounts, truncated } = await service.subtree(self);
      res.json({ object: 'list', data: accounts.map(accountView), has_more: truncated });
    },
  };
}

/**
 * The self-service API under /account/v1, authorized by an account's own API key: the
 * account, its sub-accounts to any depth and their keys. Browsers may call it from any
 * origin the key allows (it carries no cookies, only the bearer key).
 */
export function selfServiceRouter(service: AccountsService, auth: Authenticator) {
  const r = express.Router();
  r.use(bearerCors);
  r.use(async (req: Request, res: Response, next: NextFunction) => {
    const caller = await auth.authenticate(req);
    if (isDenial(caller)) {
      if (caller.headers) res.set(caller.headers);
      if (!corsAllowed(caller)) res.removeHeader('access-control-allow-origin');
      return sendApiError(res, caller.status, caller.code, caller.message, caller.param, caller.type);
    }
    res.locals.caller = caller;
    next();
  });
  r.get('/me', async (_req, res) => {
    const { key } = callerOf(res);
    const account = await service.get(key.accountId);
    if (!account) return sendApiError(res, 404, 'account_not_found', `No account "${key.accountId}".`);
    res.json({ ...accountView(account), key: { id: key.keyId, models: key.models, rpm: key.rpm, tpm: key.tpm, expires_at: key.expiresAt === null ? null : new Date(key.expiresAt).toISOString() } });
  });
  r.use(accountsRouter(service, (res) => scopeOf(service, callerOf(res))));
  return r;
}
