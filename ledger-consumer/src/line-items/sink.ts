import type { ClickHouseClient } from '@clickhouse/client';
import {
  creditColumns, lineItemColumns, sqlString, sqlStringSet, toClickHouseDateTime, toCreditRow, toLineItemRow, type EventOf, type EventType, type YugongEvent,
} from '@yugong/schemas';
import type { LedgerMetrics } from '../metrics.js';
import type { ReplicaSet } from './replicas.js';

/** 18.16's max_query_size is 256 KiB: presence checks go in slices well below it. */
const PRESENCE_SLICE = 1000;

export interface LineItemSink {
  write(events: YugongEvent[]): Promise<void>;
}

/** A table that holds one row per event of one type. */
interface Target<T extends EventType> {
  type: T;
  table: string;
  columns: readonly string[];
  toRow(e: EventOf<T>): Record<string, unknown>;
  /** A condition that narrows the presence lookup to the primary-key range of the slice. */
  range(slice: EventOf<T>[]): string;
}

const roots = (slice: YugongEvent[]) => sqlStringSet([...new Set(slice.map((e) => e.accountPath[0] ?? ''))]);

const lineItems: Target<'usage.recorded'> = {
  type: 'usage.recorded',
  table: 'line_items',
  columns: lineItemColumns,
  toRow: toLineItemRow,
  range(slice) {
    const times = slice.map((e) => Date.parse(e.time));
    const from = toClickHouseDateTime(new Date(Math.min(...times)));
    const to = toClickHouseDateTime(new Date(Math.max(...times)));
    return `root_account_id IN ${roots(slice)} AND time >= ${sqlString(from)} AND time <= ${sqlString(to)}`;
  },
};

const credits: Target<'credit.granted'> = {
  type: 'credit.granted',
  table: 'credits',
  columns: creditColumns,
  toRow: toCreditRow,
  range: (slice) => `root_account_id IN ${roots(slice)} AND account_id IN ${sqlStringSet(slice.map((e) => e.data.accountId))}`,
};

/**
 * Writes one row per usage event (line_items) and per top-up (credits), exactly once.
 * Rollup views fire on every insert, so duplicates must never reach a table: drop repeats
 * within the batch, then drop the ids ClickHouse already holds (looked up inside the
 * primary-key range of the batch, so the lookup is cheap), then insert. ClickHouse itself is
 * the seen-set, so a crash between the insert and the offset commit cannot insert twice.
 *
 * With several replicas of one shard, a write that fails on one is made again at once on the
 * next, with the same events. A replica that stored the rows but died before the others
 * fetched them hides them from that second presence check; the second insert is then the
 * same block, which ReplicatedMergeTree drops by its checksum in ZooKeeper (and so do the
 * rollups' replicated tables). Later writes stay on the replica that answered.
 */
export function createLineItemSink(replicas: ReplicaSet, metrics: LedgerMetrics): LineItemSink {
  async function alreadyStored<T extends EventType>(ch: ClickHouseClient, target: Target<T>, events: EventOf<T>[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (let i = 0; i < events.length; i += PRESENCE_SLICE) {
      const slice = events.slice(i, i + PRESENCE_SLICE);
      const rs = await ch.query({
        query: `SELECT event_id FROM ${target.table} WHERE ${target.range(slice)} AND event_id IN ${sqlStringSet(slice.map((e) => e.id))}`,
        format: 'JSONEachRow',
      });
      for (const row of await rs.json<{ event_id: string }>()) stored.add(row.event_id);
    }
    return stored;
  }

  async function writeOnce<T extends EventType>(ch: ClickHouseClient, target: Target<T>, events: YugongEvent[]): Promise<number> {
    const seen = new Set<string>();
    const unique: EventOf<T>[] = [];
    for (const e of events) {
      if (e.type !== target.type) continue;
      if (seen.has(e.id)) {
        metrics.duplicatesDropped.inc({ where: 'batch' });
        continue;
      }
      seen.add(e.id);
      unique.push(e as EventOf<T>);
    }
    if (unique.length === 0) return 0;
    const stored = await alreadyStored(ch, target, unique);
    if (stored.size) metrics.duplicatesDropped.inc({ where: 'clickhouse' }, stored.size);
    const rows = unique.filter((e) => !stored.has(e.id)).map((e) => target.toRow(e));
    if (rows.length === 0) return 0;
    await ch.insert({ table: target.table, values: rows, format: 'JSONEachRow', columns: [...target.columns] as [string, ...string[]] });
    return rows.length;
  }

  return {
    write: (events) => replicas.run('line items', async (ch) => {
      metrics.lineItemsInserted.inc(await writeOnce(ch, lineItems, events));
      await writeOnce(ch, credits, events);
    }),
  };
}
