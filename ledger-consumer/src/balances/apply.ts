import { Cluster, type ChainableCommander } from 'ioredis';
import {
  ACCOUNT_COUNTERS,
  encodeAccount,
  encodeAccountDisabled,
  encodeAccountSettings,
  encodeApiKey,
  encodeApiKeyRevoked,
  encodeNotice,
  encodeUpstreamKey,
  redisKeys,
  withUpstreamStatus,
  type ChangeNotice,
  type EventOf,
  type RedisClient,
  type YugongEvent,
} from '@yugong/schemas';
import { creditLua, settleUsageLua } from './scripts.js';

type LedgerRedis = RedisClient & {
  ygSettleUsage(...args: (string | number)[]): Promise<number>;
  ygCredit(...args: (string | number)[]): Promise<number>;
};
type LedgerPipeline = ChainableCommander & {
  ygSettleUsage(...args: (string | number)[]): ChainableCommander;
};

/** Control events have no account tree; their markers live under a tag of their own. */
const CONTROL = 'control';

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
        keys.push(
          redisKeys.account(root, account),
          redisKeys.holds(root, account),
          redisKeys.holdAmounts(root, account),
          redisKeys.leases(root, account),
          redisKeys.leaseAmounts(root, account),
          redisKeys.holdCosts(root, account),
        );
      }
      argv.push(e.accountPath.length, e.data.holdId ?? '');
      for (const cost of e.data.costs) argv.push(cost);
    }
    return [keys.length, ...keys, ...argv];
  }

  async function notify(notice: ChangeNotice): Promise<void> {
    await redis.publish(redisKeys.changes(), encodeNotice(notice));
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
          const { accountId: id, parentId, ...settings } = d;
          m.hset(key, encodeAccount({ id, parentId, root, path: e.accountPath, settings, createdAt: e.time }));
          for (const counter of ACCOUNT_COUNTERS) m.hsetnx(key, counter, '0');
          if (d.parentId) m.sadd(redisKeys.children(root, d.parentId), d.accountId);
        });
        if (applied) await notify({ type: 'account', accountId: d.accountId, root });
        return;
      }
      case 'account.updated': {
        const fields = encodeAccountSettings(e.data.patch);
        const applied = await once(root, e.id, (m) => {
          if (Object.keys(fields).length) m.hset(redisKeys.account(root, e.data.accountId), fields);
        });
        if (applied) await notify({ type: 'account', accountId: e.data.accountId, root });
        return;
      }
      case 'account.disabled': {
        const applied = await once(root, e.id, (m) => m.hset(redisKeys.account(root, e.data.accountId), encodeAccountDisabled(e.data.reason)));
        if (applied) await notify({ type: 'account', accountId: e.data.accountId, root });
        return;
      }
      case 'apikey.created': {
        const d = e.data;
        const record = encodeApiKey(d, { root, path: e.accountPath, createdAt: e.time });
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
        await redis.hset(redisKeys.apiKey(e.data.hash), encodeApiKeyRevoked(e.time));
        await once(root, e.id, (m) => m.hset(redisKeys.keyMeta(root, e.data.keyId), encodeApiKeyRevoked(e.time)));
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
        const next =
          e.type === 'upstream.key.added'
            ? { ...e.data, status: 'active' as const, reason: '', changedAt: e.time }
            : // A health change of a key removed since (a replay, or a node that had not heard yet) revives nothing.
              withUpstreamStatus(await redis.hget(redisKeys.upstreamKeys(), field), e.type === 'upstream.key.disabled' ? 'disabled' : 'active', e.data.reason, e.time);
        if (!next) return;
        await redis.hset(redisKeys.upstreamKeys(), field, encodeUpstreamKey(next));
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
