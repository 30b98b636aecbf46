import express, { type Request, type Response } from 'express';
import { accountId as accountIdSchema } from '@yugong/schemas';
import { boundKeySettings, keyWithin, type KeyLimits } from './key-bounds.js';
import type { AccountsService, AccountSummary } from './service.js';
import {
  accountInput,
  accountPatch,
  accountPatchInput,
  accountSettings,
  accountView,
  creditInput,
  disableInput,
  keyInput,
  keySettings,
  keyView,
  multiplierInput,
  parseBody,
  protectedFields,
  sendResult,
} from './inputs.js';
import { sendApiError } from '../errors.js';

/**
 * What a caller may do with accounts. The operator sees and manages everything; an account's
 * own key sees itself and its descendants and manages only its descendants, so no account
 * can raise its own limits or top itself up.
 */
export interface Scope {
  /** Recorded as who granted a top-up. */
  actor: string;
  /** The parent of a new account whose body names none; null makes a root. */
  defaultParent: string | null;
  /** New accounts are named under their parent (`parent.id`) and never made roots. */
  namespaced: boolean;
  sees(account: AccountSummary): boolean;
  manages(account: AccountSummary): boolean;
  /** The calling key's own limits, which bound every key it creates or revokes; null for the operator. */
  keyLimits: KeyLimits | null;
  /** Every account this caller may list, when no `under` is given. */
  listAll(req: Request, res: Response): Promise<void>;
}

type Need = 'see' | 'manage';

/** The account routes shared by the operator API and the self-service API. */
export function accountsRouter(service: AccountsService, scopeOf: (res: Response) => Scope) {
  const r = express.Router();

  /** Accounts outside the caller's view do not exist for it: 404, never a hint. */
  async function target(req: Request, res: Response, need: Need): Promise<AccountSummary | null> {
    const scope = scopeOf(res);
    const id = String(req.params.id ?? '');
    const account = await service.get(id);
    if (!account || !scope.sees(account)) {
      sendApiError(res, 404, 'account_not_found', `No account "${id}".`, 'id');
      return null;
    }
    if (need === 'manage' && !scope.manages(account)) {
      sendApiError(res, 403, 'permission_denied', `Account "${id}" can be changed only by its parent account or the operator.`, 'id');
      return null;
    }
    return account;
  }

  r.post('/accounts', async (req, res) => {
    const body = parseBody(accountInput, req, res);
    if (!body) return;
    const scope = scopeOf(res);
    if (scope.namespaced && body.parent_id === null) {
      return sendApiError(res, 403, 'permission_denied', 'An account key creates sub-accounts under its own account or its descendants, never top-level accounts.', 'parent_id');
    }
    const parentId = body.parent_id ?? scope.defaultParent;
    if (parentId !== null) {
      const parent = await service.get(parentId);
      if (!parent || !scope.sees(parent)) return sendApiError(res, 404, 'account_not_found', `No account "${parentId}".`, 'parent_id');
    }
    const id = scope.namespaced && parentId !== null ? `${parentId}.${body.id}` : body.id;
    if (!accountIdSchema.safeParse(id).success) return sendApiError(res, 400, 'invalid_value', `The account id "${id}" would be longer than 200 characters; choose a shorter id.`, 'id');
    sendResult(res, await service.createAccount(id, parentId, accountSettings(body)), 201, accountView);
  });

  r.get('/accounts', async (req, res) => {
    const under = typeof req.query.under === 'string' ? req.query.under : null;
    if (under === null) return scopeOf(res).listAll(req, res);
    const top = await service.get(under);
    if (!top || !scopeOf(res).sees(top)) return sendApiError(res, 404, 'account_not_found', `No account "${under}".`, 'under');
    const { accounts, truncated } = await service.subtree(under);
    res.json({ object: 'list', data: accounts.map(accountView), has_more: truncated });
  });

  r.get('/accounts/:id', async (req, res) => {
    const account = await target(req, res, 'see');
    if (account) res.json(accountView(account));
  });

  r.patch('/accounts/:id', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const locked = Object.keys(body).find((k) => k in protectedFields);
    if (locked) return sendApiError(res, 403, 'field_not_writable', `'${locked}' cannot be changed here. ${protectedFields[locked]}`, locked);
    const patch = parseBody(accountPatchInput, req, res);
    if (!patch) return;
    const account = await target(req, res, 'manage');
    if (!account) return;
    sendResult(res, await service.updateAccount(account.id, accountPatch(patch, account)), 200, accountView);
  });

  r.post('/accounts/:id/multiplier', async (req, res) => {
    const body = parseBody(multiplierInput, req, res);
    if (!body) return;
    const account = await target(req, res, 'manage');
    if (!account) return;
    sendResult(res, await service.updateAccount(account.id, { multiplierPpm: body.multiplier }), 200, accountView);
  });

  r.post('/accounts/:id/disable', async (req, res) => {
    const body = parseBody(disableInput, req, res);
    if (!body) return;
    const account = await target(req, res, 'manage');
    if (!account) return;
    sendResult(res, await service.disableAccount(account.id, body.reason), 200, accountView);
  });

  r.post('/accounts/:id/credits', async (req, res) => {
    const body = parseBody(creditInput, req, res);
    if (!body) return;
    const account = await target(req, res, 'manage');
    if (!account) return;
    sendResult(res, await service.grantCredit(account.id, body.amount_usd, body.note, body.idempotency_key, scopeOf(res).actor), 201, accountView);
  });

  r.get('/accounts/:id/keys', async (req, res) => {
    const account = await target(req, res, 'see');
    if (account) res.json({ object: 'list', data: (await service.listKeys(account)).map(keyView) });
  });

  r.post('/accounts/:id/keys', async (req, res) => {
    const body = parseBody(keyInput, req, res);
    if (!body) return;
    const account = await target(req, res, 'see');
    if (!account) return;
    const limits = scopeOf(res).keyLimits;
    const bounded = limits ? boundKeySettings(limits, keySettings(body)) : { ok: true as const, settings: keySettings(body) };
    if (!bounded.ok) return sendResult(res, bounded);
    sendResult(res, await service.createKey(account.id, bounded.settings), 201, (k) => ({ object: 'api_key', id: k.keyId, key: k.key, prefix: k.prefix, account_id: k.accountId }));
  });

  r.delete('/accounts/:id/keys/:keyId', async (req, res) => {
    const account = await target(req, res, 'see');
    if (!account) return;
    const keyId = String(req.params.keyId ?? '');
    const limits = scopeOf(res).keyLimits;
    const key = limits ? await service.getKey(account, keyId) : null;
    if (limits && key && !keyWithin(limits, { ...key, expiresAt: key.expiresAt === null ? null : Date.parse(key.expiresAt) })) {
      return sendApiError(
        res,
        403,
        'permission_denied',
        `Key "${keyId}" reaches further than the key you are using (models, limits, addresses, origins or expiry), so this key cannot revoke it.`,
        'key_id',
      );
    }
    sendResult(res, await service.revokeKey(account.id, keyId), 200, (k) => ({ object: 'api_key', id: k.keyId, status: k.status }));
  });

  return r;
}
