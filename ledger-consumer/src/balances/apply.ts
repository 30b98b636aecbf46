import { Cluster, type ChainableCommander } from 'ioredis';
import { redisKeys, type EventOf, type YugongEvent, type RedisClient } from '@yugong/schemas';
import { creditLua, settleUsageLua } from './scripts.js';

type LedgerRedis = RedisClient & {
  ygSettleUsage(...args: (string | number)[]): Promise<number>;
  ygCredit(...args: (string | number)[]): Promise<number>;
};
type LedgerPipeline = ChainableCommander & {
  ygSettleUsage(...args: (string | number)[]): ChainableCommander;
};

/** What the proxies are told when a projection they cache changes. */
export type ChangeNotice =
  | { type: 'account'; accountId: string; root: string }
  | { type: 'apikey'; hash: string }
  | { type: 'upstream'; keyId: string }
  | { type: 'prices'; version: string };

/** Control events have no account tree; their markers live under a tag of their own. */
const CONTROL = 'control';

function nullableJson(v: unknown): string {
  return v === null || v === undefined ? '' : JSON.stringify(v);
}

export interface BalanceApplier {
  apply(events: YugongEvent[]): Promise<void>;
}

export function createBalanceApplier(redis: RedisClient, dedupeTtlSeconds: number): BalanceApplier {
  redis.defineCommand('ygSettleUsage', { lua: settleUsageLua });
  redis.defineCommand('ygCredit', { lua: creditLua });
  const r = redis as LedgerRedis;
  const ttl = String(dedupeTtlSeconds);

  /** One script call for usage events of one tree, in their order (see settleUsageLua). */
  function settleArgs(events: EventOf<'usage.recorded'>[]): (string | number)[] {
    const root = events[0]?.accountPath[0] ?? '';
    const keys: string[] = [];
    const argv: (string | number)[] = [ttl];
    for (const e of events) {
      keys.push(redisKeys.applied(root, e.id));
      for (const account of e.accountPath) {
        keys.push(redisKeys.account(root, account), redisKeys.holds(root, account), redisKeys.holdAmounts(root, account), redisKeys.leases(root, account), redisKeys.leaseAmounts(root, account));
      }
      argv.push(e.accountPath.length, e.data.holdId ?? '');
      for (const cost of e.data.costs) argv.push(cost);
    }
    return [keys.length, ...keys, ...argv];
  }

  async function notify(notice: ChangeNotice): Promise<void> {
    await redis.publish(redisKeys.changes(), JSON.stringify(notice));
  }

  /** Runs writes and the applied marker in one MULTI unless the marker is already there. */
  async function once(root: string, eventId: string, write: (m: ChainableCommander) => void): Promise<boolean> {
    const marker = redisKeys.applied(root, eventId);
    if ((await redis.exists(marker)) === 1) return false;
    const m = redis.multi();
    write(m);
    m.set(marker, '1', 'EX', dedupeTtlSeconds);
    const results = await m.exec();
    const failed = results?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
    return true;
  }

  async function applyOne(e: YugongEvent): Promise<void> {
    const root = e.accountPath[0] ?? CONTROL;
    switch (e.type) {
      case 'usage.recorded':
        await r.ygSettleUsage(...settleArgs([e]));
        return;
      case 'credit.granted':
        await r.ygCredit(2, redisKeys.applied(root, e.id), redisKeys.account(root, e.data.accountId), ttl, e.data.amountNano);
        return;
      case 'account.created': {
        const d = e.data;
        const key = redisKeys.account(root, d.accountId);
        // The global account → root index is written before the applied marker, so whoever
        // waits for the marker can already find the account (the write is idempotent).
        await redis.hset(redisKeys.accountRoots(), d.accountId, root);
        const applied = await once(root, e.id, (m) => {
          m.hset(key, {
            id: d.accountId,
            parent: d.parentId ?? '',
            root,
            path: JSON.stringify(e.accountPath),
            name: d.name,
            status: 'active',
            multiplierPpm: d.multiplierPpm,
            creditLimitNano: d.creditLimitNano ?? '0',
            rpm: d.limits.rpm ?? '',
            tpm: d.limits.tpm ?? '',
            models: nullableJson(d.models),
            ipAllowlist: nullableJson(d.ipAllowlist),
            expiresAt: d.expiresAt ?? '',
            createdAt: e.time,
          });
          for (const counter of ['credited', 'spent', 'held', 'leased', 'requests']) m.hsetnx(key, counter, '0');
          if (d.parentId) m.sadd(redisKeys.children(root, d.parentId), d.accountId);
        });
        if (applied) await notify({ type: 'account', accountId: d.accountId, root });
        return;
      }
      case 'account.updated': {
        const p = e.data.patch;
        const fields: Record<string, string | number> = {};
        if (p.name !== undefined) fields.name = p.name;
        if (p.multiplierPpm !== undefined) fields.multiplierPpm = p.multiplierPpm;
        if (p.creditLimitNano !== undefined) fields.creditLimitNano = p.creditLimitNano ?? '0';
        if (p.limits !== undefined) {
          fields.rpm = p.limits.rpm ?? '';
          fields.tpm = p.limits.tpm ?? '';
        }
        if (p.models !== undefined) fields.models = nullableJson(p.models);
        if (p.ipAllowlist !== undefined) fields.ipAllowlist = nullableJson(p.ipAllowlist);
        if (p.expiresAt !== undefined) fields.expiresAt = p.expiresAt ?? '';
        const applied = await once(root, e.id, (m) => {
          if (Object.keys(fields).length) m.hset(redisKeys.account(root, e.data.accountId), fields);
        });
        if (applied) await notify({ type: 'account', accountId: e.data.accountId, root });
        return;
      }
      case 'account.disabled': {
        const applied = await once(root, e.id, (m) => m.hset(redisKeys.account(root, e.data.accountId), { status: 'disabled', disabledReason: e.data.reason }));
        if (applied) await notify({ type: 'account', accountId: e.data.accountId, root });
        return;
      }
      case 'apikey.created': {
        const d = e.data;
        const record = {
          keyId: d.keyId,
          accountId: d.accountId,
          root,
          path: JSON.stringify(e.accountPath),
          status: 'active',
          prefix: d.prefix,
          name: d.name,
          models: nullableJson(d.models),
          rpm: d.limits.rpm ?? '',
          tpm: d.limits.tpm ?? '',
          ipAllowlist: nullableJson(d.ipAllowlist),
          origins: nullableJson(d.origins),
          expiresAt: d.expiresAt ?? '',
          createdAt: e.time,
        };
        // The lookup by hash is global (a key does not know its tree); it is written first
        // and is idempotent, so a crash before the marker only repeats it.
        await redis.hset(redisKeys.apiKey(d.hash), record);
        const applied = await once(root, e.id, (m) => {
          m.sadd(redisKeys.keysOf(root, d.accountId), d.keyId);
          m.hset(redisKeys.keyMeta(root, d.keyId), { ...record, hash: d.hash });
        });
        if (applied) await notify({ type: 'apikey', hash: d.hash });
        return;
      }
      case 'apikey.revoked': {
        await redis.hset(redisKeys.apiKey(e.data.hash), { status: 'revoked', revokedAt: e.time });
        await once(root, e.id, (m) => m.hset(redisKeys.keyMeta(root, e.data.keyId), { status: 'revoked', revokedAt: e.time }));
        // Always announce: a revoke must reach every node even if it was applied before a crash.
        await notify({ type: 'apikey', hash: e.data.hash });
        return;
      }
      case 'upstream.key.removed':
        await redis.hdel(redisKeys.upstreamKeys(), e.data.keyId);
        await notify({ type: 'upstream', keyId: e.data.keyId });
        return;
      case 'upstream.key.added':
      case 'upstream.key.disabled':
      case 'upstream.key.enabled': {
        const field = e.data.keyId;
        const current = await redis.hget(redisKeys.upstreamKeys(), field);
        // A health change of a key removed since (a replay, or a node that had not heard yet) revives nothing.
        if (!current && e.type !== 'upstream.key.added') return;
        const base = current ? (JSON.parse(current) as Record<string, unknown>) : {};
        const next =
          e.type === 'upstream.key.added'
            ? { ...e.data, status: 'active', reason: '', changedAt: e.time }
            : { ...base, status: e.type === 'upstream.key.disabled' ? 'disabled' : 'active', reason: e.data.reason, changedAt: e.time };
        await redis.hset(redisKeys.upstreamKeys(), field, JSON.stringify(next));
        await notify({ type: 'upstream', keyId: field });
        return;
      }
      case 'price.table.published':
        await redis.hset(redisKeys.priceTables(), e.data.version, JSON.stringify(e.data.table));
        await redis.set(redisKeys.currentPriceVersion(), e.data.version);
        await notify({ type: 'prices', version: e.data.version });
        return;
    }
  }

  return {
    async apply(events) {
      // Usage settlements are the bulk: consecutive ones go out as one pipeline (Redis keeps
      // its order); everything else is applied one by one, in order.
      let run: EventOf<'usage.recorded'>[] = [];
      const flush = async () => {
        if (run.length === 0) return;
        // One call per tree: its keys share a hash tag, so each call stays on one slot. On one
        // server the calls go as one pipeline (half the CPU of separate commands, measured);
        // a Redis Cluster refuses a pipeline across slots, so there they go out separately
        // and ioredis sends each node its own.
        const byRoot = new Map<string, EventOf<'usage.recorded'>[]>();
        for (const e of run) {
          const root = e.accountPath[0] ?? '';
          const list = byRoot.get(root);
          if (list) list.push(e);
          else byRoot.set(root, [e]);
        }
        if (redis instanceof Cluster) {
          await Promise.all([...byRoot.values()].map((events) => r.ygSettleUsage(...settleArgs(events))));
        } else {
          const p = r.pipeline() as LedgerPipeline;
          for (const events of byRoot.values()) p.ygSettleUsage(...settleArgs(events));
          const results = await p.exec();
          const failed = results?.find(([err]) => err);
          if (failed?.[0]) throw failed[0];
        }
        run = [];
      };
      for (const e of events) {
        if (e.type === 'usage.recorded') {
          run.push(e);
          continue;
        }
        await flush();
        await applyOne(e);
      }
      await flush();
    },
  };
}
