import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  decodeAccount,
  decodeApiKey,
  decodeUpstreamKey,
  formatUsd,
  makeEvent,
  priceTableSchema,
  redisKeys,
  type AccountRecord,
  type ApiKeyRecord,
  type EventData,
  type PriceTable,
  type RedisClient,
  type YugongEvent,
} from '@yugong/schemas';
import type { EventSink } from '../events/sink.js';
import { encryptSecret, upstreamKeyId } from '../pool/crypto.js';

export type ServiceError = { ok: false; status: number; code: string; message: string; param?: string };

/**
 * A write that is in the event log but that the ledger has not applied within the wait (it is
 * failing over, or lagging): the caller is told to retry, not that the server broke.
 */
/** A write not applied after this long is sent again. */
const RESEND_AFTER_MS = 10_000;

export class NotAppliedError extends Error {
  readonly status = 503;
  readonly code = 'write_not_applied';
  constructor(what: string, withinMs: number) {
    super(`The change (${what}) was recorded but the ledger has not applied it within ${withinMs / 1000} s. It will be; read it back, or retry in a few seconds.`);
    this.name = 'NotAppliedError';
  }
}
export type Result<T> = { ok: true; value: T } | ServiceError;

const fail = (status: number, code: string, message: string, param?: string): ServiceError => ({ ok: false, status, code, message, ...(param ? { param } : {}) });

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** sk-yg- and 32 base62 characters: 190 random bits, shown once, stored as SHA-256. */
export function newApiKey(): string {
  const bytes = randomBytes(40);
  let out = 'sk-yg-';
  for (let i = 0; out.length < 38; i++) {
    const b = bytes[i] ?? 0;
    if (b < 248) out += BASE62[b % 62]; // 248 = 4 × 62: no modulo bias
  }
  return out;
}

/** An account as the admin and self-service APIs show it: its record, amounts as decimal strings. */
export type AccountSummary = Omit<AccountRecord, 'root' | 'disabledReason' | 'creditLimitNano' | 'creditedNano' | 'spentNano' | 'heldNano' | 'leasedNano'> & {
  creditLimitNano: string;
  creditedNano: string;
  spentNano: string;
  heldNano: string;
  /** Reserved by proxy nodes' admission leases, for requests they admit in memory. */
  leasedNano: string;
  balanceNano: string;
};

function summaryOf(accountId: string, h: Record<string, string>): AccountSummary | null {
  const a = decodeAccount(h);
  if (!a) return null;
  const { root, disabledReason, creditLimitNano, creditedNano, spentNano, heldNano, leasedNano, ...rest } = a;
  return {
    ...rest,
    id: accountId,
    creditLimitNano: creditLimitNano.toString(),
    creditedNano: creditedNano.toString(),
    spentNano: spentNano.toString(),
    heldNano: heldNano.toString(),
    leasedNano: leasedNano.toString(),
    balanceNano: (creditedNano - spentNano).toString(),
  };
}

/** A key as its owner and the operator see it. */
export type KeySummary = Omit<ApiKeyRecord, 'root' | 'path'>;

function keySummaryOf(h: Record<string, string>): KeySummary | null {
  const k = decodeApiKey(h);
  if (!k) return null;
  // The tree and path are the ledger's to route by; an owner is shown neither.
  const { root, path, ...summary } = k;
  return summary;
}

export type AccountSettings = Omit<EventData<'account.created'>, 'accountId' | 'parentId'>;
export type KeySettings = Omit<EventData<'apikey.created'>, 'keyId' | 'accountId' | 'hash' | 'prefix'>;
export type AccountPatch = EventData<'account.updated'>['patch'];

/** The service as a node or the control process runs it: slow writes go to the log as they are sent again. */
export function accountsServiceFor(redis: RedisClient, sink: EventSink, config: { nodeId: string; secretKey: Buffer }, log: { error(obj: object, msg: string): void }): AccountsService {
  return new AccountsService(redis, sink, config.nodeId, config.secretKey, 30_000, (event, waitedMs) =>
    log.error({ eventId: event.id, type: event.type, waitedMs }, 'a write was not applied in time: sent again'),
  );
}

/**
 * Every change is an event; a write returns only once the ledger has projected it, so the
 * caller reads its own writes.
 */
export class AccountsService {
  constructor(
    private readonly redis: RedisClient,
    private readonly sink: EventSink,
    private readonly source: string,
    private readonly secretKey: Buffer,
    // Longer than a ledger failover (a session timeout, then a rebalance): a write answered
    // while the balances group changes hands is still answered, not refused.
    private readonly visibleWithinMs = 30_000,
    /** Told of a write not applied after RESEND_AFTER_MS, as it is sent again (for the log). */
    private readonly onSlowWrite?: (event: YugongEvent, waitedMs: number) => void,
  ) {}

  private async emitAndWait(event: YugongEvent, visible: () => Promise<boolean>): Promise<void> {
    await this.sink.emit(event);
    const deadline = Date.now() + this.visibleWithinMs;
    let resendAt = Date.now() + RESEND_AFTER_MS;
    while (!(await visible())) {
      if (Date.now() > deadline) throw new NotAppliedError(event.type, this.visibleWithinMs);
      if (Date.now() > resendAt) {
        // Sent again: the event id makes a second copy harmless, and one that was lost on the way is applied.
        this.onSlowWrite?.(event, Date.now() - (resendAt - RESEND_AFTER_MS));
        await this.sink.emit(event);
        resendAt = Date.now() + RESEND_AFTER_MS;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private applied(root: string, eventId: string) {
    return async () => (await this.redis.exists(redisKeys.applied(root, eventId))) === 1;
  }

  async rootOf(accountId: string): Promise<string | null> {
    return this.redis.hget(redisKeys.accountRoots(), accountId);
  }

  async get(accountId: string): Promise<AccountSummary | null> {
    const root = await this.rootOf(accountId);
    if (!root) return null;
    return (await this.getMany(root, [accountId]))[0] ?? null;
  }

  /** Accounts of one tree, in the order asked; missing ones are left out. */
  async getMany(root: string, ids: string[]): Promise<AccountSummary[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(redisKeys.account(root, id));
    const results = (await p.exec()) ?? [];
    const out: AccountSummary[] = [];
    ids.forEach((id, i) => {
      const [err, h] = results[i] ?? [];
      if (err) throw err;
      const summary = summaryOf(id, h as Record<string, string>);
      if (summary) out.push(summary);
    });
    return out;
  }

  /** An account and all its descendants, breadth first, at most `max` of them. */
  async subtree(accountId: string, max = 10_000): Promise<{ accounts: AccountSummary[]; truncated: boolean }> {
    const top = await this.get(accountId);
    if (!top) return { accounts: [], truncated: false };
    const root = top.path[0] ?? accountId;
    const accounts = [top];
    let level = [accountId];
    while (level.length > 0 && accounts.length < max) {
      const p = this.redis.pipeline();
      for (const id of level) p.smembers(redisKeys.children(root, id));
      const children = ((await p.exec()) ?? []).flatMap(([err, ids]) => {
        if (err) throw err;
        return (ids as string[]).sort();
      });
      const found = await this.getMany(root, children.slice(0, max - accounts.length));
      accounts.push(...found);
      if (children.length > found.length && accounts.length >= max) return { accounts, truncated: true };
      level = found.map((a) => a.id);
    }
    return { accounts, truncated: false };
  }

  /** Every account, a page at a time (a Redis SCAN cursor: no account is skipped). */
  async listAll(cursor: string, count: number): Promise<{ accounts: AccountSummary[]; nextCursor: string | null }> {
    const [next, flat] = await this.redis.hscan(redisKeys.accountRoots(), cursor, 'COUNT', count);
    const byRoot = new Map<string, string[]>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [id, root] = [flat[i] as string, flat[i + 1] as string];
      byRoot.set(root, [...(byRoot.get(root) ?? []), id]);
    }
    const accounts = (await Promise.all([...byRoot].map(([root, ids]) => this.getMany(root, ids)))).flat();
    return { accounts: accounts.sort((a, b) => a.id.localeCompare(b.id)), nextCursor: next === '0' ? null : next };
  }

  async createAccount(accountId: string, parentId: string | null, settings: AccountSettings): Promise<Result<AccountSummary>> {
    if (await this.rootOf(accountId)) return fail(409, 'account_exists', `An account with id "${accountId}" already exists.`, 'id');
    let path = [accountId];
    if (parentId) {
      const parent = await this.get(parentId);
      if (!parent) return fail(404, 'account_not_found', `No account "${parentId}".`, 'parent_id');
      if (parent.path.length >= 32) return fail(400, 'too_deep', 'Sub-accounts nest at most 32 levels deep.');
      path = [...parent.path, accountId];
    }
    const root = path[0] ?? accountId;
    const event = makeEvent('account.created', { id: `account:${accountId}:created`, source: this.source, accountPath: path, data: { accountId, parentId, ...settings } });
    await this.emitAndWait(event, this.applied(root, event.id));
    const created = await this.get(accountId);
    return created ? { ok: true, value: created } : fail(500, 'not_visible', 'The account was created but cannot be read back.');
  }

  async grantCredit(accountId: string, amountNano: bigint, note: string, idempotencyKey: string, grantedBy: string): Promise<Result<AccountSummary>> {
    const account = await this.get(accountId);
    if (!account) return fail(404, 'account_not_found', `No account "${accountId}".`);
    const root = account.path[0] ?? accountId;
    const keyHash = createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32);
    // The first use of a key decides what it means; a reuse for another top-up is a conflict, not a silent no-op.
    const asked = JSON.stringify({ amountNano: amountNano.toString(), note });
    const requests = redisKeys.creditRequests(root, accountId);
    const first = (await this.redis.hsetnx(requests, keyHash, asked)) === 1 ? asked : await this.redis.hget(requests, keyHash);
    if (first !== null && first !== asked) {
      const was = JSON.parse(first) as { amountNano: string; note: string };
      return fail(
        409,
        'idempotency_key_conflict',
        `The idempotency_key "${idempotencyKey}" was already used for a top-up of $${formatUsd(BigInt(was.amountNano))} (note "${was.note}") on this account; it is granted once. Use a new idempotency_key for a new top-up.`,
        'idempotency_key',
      );
    }
    const event = makeEvent('credit.granted', {
      id: `credit:${accountId}:${keyHash}`,
      source: this.source,
      accountPath: account.path,
      data: { accountId, amountNano: amountNano.toString(), note, idempotencyKey, grantedBy },
    });
    await this.emitAndWait(event, this.applied(root, event.id));
    return this.found(accountId);
  }

  async createKey(accountId: string, settings: KeySettings): Promise<Result<{ key: string; keyId: string; prefix: string; accountId: string }>> {
    const account = await this.get(accountId);
    if (!account) return fail(404, 'account_not_found', `No account "${accountId}".`);
    const key = newApiKey();
    const hash = createHash('sha256').update(key).digest('hex');
    const keyId = `key_${randomBytes(9).toString('base64url')}`;
    const prefix = key.slice(0, 10);
    const event = makeEvent('apikey.created', { id: `apikey:${keyId}:created`, source: this.source, accountPath: account.path, data: { keyId, accountId, hash, prefix, ...settings } });
    await this.emitAndWait(event, this.applied(account.path[0] ?? accountId, event.id));
    return { ok: true, value: { key, keyId, prefix, accountId } };
  }

  async updateAccount(accountId: string, patch: AccountPatch): Promise<Result<AccountSummary>> {
    const account = await this.get(accountId);
    if (!account) return fail(404, 'account_not_found', `No account "${accountId}".`);
    if (Object.keys(patch).length === 0) return { ok: true, value: account };
    const root = account.path[0] ?? accountId;
    const event = makeEvent('account.updated', { id: `account:${accountId}:updated:${randomUUID()}`, source: this.source, accountPath: account.path, data: { accountId, patch } });
    await this.emitAndWait(event, this.applied(root, event.id));
    return this.found(accountId);
  }

  async disableAccount(accountId: string, reason: string): Promise<Result<AccountSummary>> {
    const account = await this.get(accountId);
    if (!account) return fail(404, 'account_not_found', `No account "${accountId}".`);
    if (account.status === 'disabled') return { ok: true, value: account };
    const root = account.path[0] ?? accountId;
    const event = makeEvent('account.disabled', { id: `account:${accountId}:disabled`, source: this.source, accountPath: account.path, data: { accountId, reason } });
    await this.emitAndWait(event, this.applied(root, event.id));
    return this.found(accountId);
  }

  private async found(accountId: string): Promise<Result<AccountSummary>> {
    const after = await this.get(accountId);
    return after ? { ok: true, value: after } : fail(404, 'account_not_found', `No account "${accountId}".`);
  }

  async listKeys(account: AccountSummary): Promise<KeySummary[]> {
    const root = account.path[0] ?? account.id;
    const ids = (await this.redis.smembers(redisKeys.keysOf(root, account.id))).sort();
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(redisKeys.keyMeta(root, id));
    return ((await p.exec()) ?? []).flatMap(([err, raw]) => {
      if (err) throw err;
      const key = keySummaryOf(raw as Record<string, string>);
      return key ? [key] : [];
    });
  }

  /** One key of the account, or null when it has none of that id. */
  async getKey(account: AccountSummary, keyId: string): Promise<KeySummary | null> {
    const key = keySummaryOf(await this.redis.hgetall(redisKeys.keyMeta(account.path[0] ?? account.id, keyId)));
    return key?.accountId === account.id ? key : null;
  }

  /** Publishes a price table (idempotent by version) and waits until it is the one in force. */
  async publishPrices(table: PriceTable): Promise<Result<{ version: string }>> {
    const event = makeEvent('price.table.published', {
      id: `price:${table.version}:${randomUUID()}`,
      source: this.source,
      accountPath: [],
      data: { version: table.version, source: table.source, table },
    });
    await this.emitAndWait(event, async () => (await this.redis.get(redisKeys.currentPriceVersion())) === table.version);
    return { ok: true, value: { version: table.version } };
  }

  async priceTable(version: string): Promise<PriceTable | null> {
    const raw = await this.redis.hget(redisKeys.priceTables(), version);
    return raw ? priceTableSchema.parse(JSON.parse(raw)) : null;
  }

  async currentPrices(): Promise<PriceTable | null> {
    const version = await this.redis.get(redisKeys.currentPriceVersion());
    return version ? this.priceTable(version) : null;
  }

  async priceVersions(): Promise<{ version: string; source: string; createdAt: string; models: number; current: boolean }[]> {
    const [all, current] = await Promise.all([this.redis.hgetall(redisKeys.priceTables()), this.redis.get(redisKeys.currentPriceVersion())]);
    return Object.entries(all)
      .map(([version, raw]) => {
        const t = JSON.parse(raw) as { source?: string; createdAt?: string; models?: unknown[] };
        return { version, source: t.source ?? '', createdAt: t.createdAt ?? '', models: t.models?.length ?? 0, current: version === current };
      })
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async revokeKey(accountId: string, keyId: string): Promise<Result<{ keyId: string; status: 'revoked' }>> {
    const account = await this.get(accountId);
    if (!account) return fail(404, 'account_not_found', `No account "${accountId}".`);
    const root = account.path[0] ?? accountId;
    const meta = await this.redis.hgetall(redisKeys.keyMeta(root, keyId));
    if (decodeApiKey(meta)?.accountId !== accountId || !meta.hash) return fail(404, 'key_not_found', `No key "${keyId}" on account "${accountId}".`);
    const event = makeEvent('apikey.revoked', { id: `apikey:${keyId}:revoked`, source: this.source, accountPath: account.path, data: { keyId, accountId, hash: meta.hash } });
    const hash = meta.hash;
    await this.emitAndWait(event, async () => (await this.redis.hget(redisKeys.apiKey(hash), 'status')) === 'revoked');
    return { ok: true, value: { keyId, status: 'revoked' } };
  }

  async addUpstreamKey(seed: {
    baseUrl: string;
    key: string;
    organization: string | null;
    models: string[] | null;
    weight: number;
    poolId: string;
  }): Promise<Result<{ keyId: string; created: boolean }>> {
    const keyId = upstreamKeyId(seed.baseUrl, seed.key);
    if (await this.redis.hexists(redisKeys.upstreamKeys(), keyId)) return { ok: true, value: { keyId, created: false } };
    const event = makeEvent('upstream.key.added', {
      id: `upstream:${keyId}:added`,
      source: this.source,
      accountPath: [],
      data: { keyId, poolId: seed.poolId, baseUrl: seed.baseUrl, organization: seed.organization, models: seed.models, weight: seed.weight, encryptedKey: encryptSecret(this.secretKey, seed.key) },
    });
    await this.emitAndWait(event, async () => (await this.redis.hexists(redisKeys.upstreamKeys(), keyId)) === 1);
    return { ok: true, value: { keyId, created: true } };
  }

  async removeUpstreamKey(keyId: string, reason: string): Promise<Result<{ keyId: string; status: 'removed' }>> {
    if (!(await this.redis.hexists(redisKeys.upstreamKeys(), keyId))) return fail(404, 'upstream_not_found', `No upstream key "${keyId}".`);
    const event = makeEvent('upstream.key.removed', { id: `upstream:${keyId}:removed:${Date.now()}`, source: this.source, accountPath: [], data: { keyId, reason } });
    await this.emitAndWait(event, async () => (await this.redis.hexists(redisKeys.upstreamKeys(), keyId)) === 0);
    return { ok: true, value: { keyId, status: 'removed' } };
  }

  async setUpstreamStatus(keyId: string, enabled: boolean, reason: string): Promise<Result<{ keyId: string; status: string }>> {
    if (!(await this.redis.hexists(redisKeys.upstreamKeys(), keyId))) return fail(404, 'upstream_not_found', `No upstream key "${keyId}".`);
    const event = enabled
      ? makeEvent('upstream.key.enabled', { id: `upstream:${keyId}:enabled:${Date.now()}`, source: this.source, accountPath: [], data: { keyId, reason } })
      : makeEvent('upstream.key.disabled', { id: `upstream:${keyId}:disabled:${Date.now()}`, source: this.source, accountPath: [], data: { keyId, reason } });
    const want = enabled ? 'active' : 'disabled';
    await this.emitAndWait(event, async () => {
      return decodeUpstreamKey(await this.redis.hget(redisKeys.upstreamKeys(), keyId))?.status === want;
    });
    return { ok: true, value: { keyId, status: want } };
  }
}
