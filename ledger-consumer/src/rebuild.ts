import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { redisKeys, topics, unpackEvents, type YugongEvent } from '@yugong/schemas';
import { createBalanceApplier } from './balances/apply.js';

export interface RebuildOptions {
  kafka: Kafka;
  /** The live keyspace (compared against, and swapped with). */
  live: Redis;
  /** The same server, another logical database: flushed, then rebuilt. */
  target: Redis;
  /** The balances consumer group whose committed offsets the rebuild replays up to. */
  group: string;
  dedupeTtlSeconds: number;
  /** Refuse while the group has members (it would move on while the rebuild replays). */
  requireStoppedGroup?: boolean;
}

export interface AccountDrift {
  accountId: string;
  field: 'credited' | 'spent' | 'requests';
  live: string;
  rebuilt: string;
}

export type RebuildResult = { ok: true; events: number; accounts: number; drifts: AccountDrift[] } | { ok: false; reason: string };

const REPLAYED = [topics.accounts, topics.usage, topics.control];

/**
 * Recomputes every balance projection from the event log into a fresh keyspace: the topics
 * are replayed from their beginning up to the offsets the balances group has committed (where
 * the live ledger will resume), through the same applier. The result is compared with the
 * live keyspace; swap() then exchanges the two (Redis SWAPDB), so the ledger resumes on top
 * of the rebuilt balances. The topics must keep their events (retention.ms = -1).
 */
export async function rebuild(opts: RebuildOptions): Promise<RebuildResult> {
  const admin = opts.kafka.admin();
  await admin.connect();
  let until: Map<string, number>;
  try {
    if (opts.requireStoppedGroup !== false) {
      const { groups } = await admin.describeGroups([opts.group]);
      const members = groups[0]?.members.length ?? 0;
      if (members > 0) return { ok: false, reason: `the consumer group ${opts.group} has ${members} running member(s): stop the ledger first` };
    }
    until = new Map();
    for (const topic of REPLAYED) {
      const [committed] = await admin.fetchOffsets({ groupId: opts.group, topics: [topic] });
      for (const p of committed?.partitions ?? []) if (Number(p.offset) > 0) until.set(`${topic}:${p.partition}`, Number(p.offset));
    }
  } finally {
    await admin.disconnect();
  }
  if (until.size === 0) return { ok: false, reason: `the consumer group ${opts.group} has committed nothing: there is nothing to rebuild up to` };

  const liveDb = opts.live.options.db ?? 0;
  if ((opts.target.options.db ?? 0) === liveDb) return { ok: false, reason: 'the target database is the live one' };
  await opts.target.flushdb();
  const applier = createBalanceApplier(opts.target, opts.dedupeTtlSeconds);

  const groupId = `yugong-rebuild-${randomUUID()}`;
  const consumer = opts.kafka.consumer({ groupId, maxWaitTimeInMs: 100, maxBytesPerPartition: 8 * 1024 * 1024 });
  let events = 0;
  const remaining = new Set(until.keys());
  await consumer.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      const finish = () => {
        if (remaining.size === 0) resolve();
      };
      void (async () => {
        for (const topic of REPLAYED) await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
            const key = `${batch.topic}:${batch.partition}`;
            const end = until.get(key) ?? 0;
            const chunk: YugongEvent[] = [];
            for (const m of batch.messages) {
              if (Number(m.offset) >= end) break;
              // Invalid events went to the dead-letter topic the first time too.
              for (const { decoded } of unpackEvents(m.value ?? Buffer.alloc(0))) if (decoded.ok) chunk.push(decoded.value);
              resolveOffset(m.offset);
            }
            await applier.apply(chunk);
            events += chunk.length;
            await heartbeat();
            const last = batch.messages.at(-1);
            if (!last || Number(last.offset) + 1 >= end) {
              remaining.delete(key);
              consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
              finish();
            }
          },
        });
        // Partitions with nothing committed were never part of `until`; an empty log finishes at once.
        finish();
      })().catch(reject);
    });
  } finally {
    await consumer.disconnect();
    const cleanup = opts.kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }

  const ids = Object.keys(await opts.target.hgetall(redisKeys.accountRoots())).sort();
  const roots = await opts.target.hgetall(redisKeys.accountRoots());
  const drifts: AccountDrift[] = [];
  for (const id of ids) {
    const key = redisKeys.account(roots[id] ?? id, id);
    const [a, b] = await Promise.all([opts.live.hmget(key, 'credited', 'spent', 'requests'), opts.target.hmget(key, 'credited', 'spent', 'requests')]);
    (['credited', 'spent', 'requests'] as const).forEach((field, i) => {
      const live = a[i] ?? '0';
      const rebuilt = b[i] ?? '0';
      if (live !== rebuilt) drifts.push({ accountId: id, field, live, rebuilt });
    });
  }
  return { ok: true, events, accounts: ids.length, drifts };
}

/** Makes the rebuilt keyspace the live one (and keeps the old one in the target database). */
export async function swap(live: Redis, target: Redis): Promise<void> {
  await live.call('SWAPDB', String(live.options.db ?? 0), String(target.options.db ?? 0));
}
