import type { ClickHouseClient } from '@clickhouse/client';
import {
  LINE_ITEMS_FEED,
  creditColumns,
  lineItemColumns,
  sqlString,
  sqlStringSet,
  toClickHouseDateTime,
  toCreditRow,
  toLineItemRow,
  type EventOf,
  type EventType,
  type YugongEvent,
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
 * With several replicas of one shard (`feed`: the migrations made them with LINE_ITEMS_FEED),
 * the rows to write are decided once, on the replica that answers; their inserts that fail on
 * one replica are made again at once on the next with the same rows. A block a replica stored
 * before it died (whose rows the next may not have fetched yet) comes again as the same block,
 * which ReplicatedMergeTree drops by its checksum in ZooKeeper. The rollups are fed by a
 * second insert of the same rows into the Null feed table: it never drops a block, so each
 * rollup's view writes its block again, and each replicated rollup keeps it once by its own
 * checksum, even when the replica died between storing line_items and its rollups. Later
 * writes stay on the replica that answered.
 */
export function createLineItemSink(replicas: ReplicaSet, metrics: LedgerMetrics, opts: { feed?: boolean } = {}): LineItemSink {
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

  /** The rows of a target's events that no replica is known to hold, each event once. */
  async function rowsToWrite<T extends EventType>(ch: ClickHouseClient, target: Target<T>, events: YugongEvent[]): Promise<Record<string, unknown>[]> {
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
    if (unique.length === 0) return [];
    const stored = await alreadyStored(ch, target, unique);
    if (stored.size) metrics.duplicatesDropped.inc({ where: 'clickhouse' }, stored.size);
    return unique.filter((e) => !stored.has(e.id)).map((e) => target.toRow(e));
  }

  const insert = (ch: ClickHouseClient, table: string, columns: readonly string[], rows: Record<string, unknown>[]) =>
    rows.length ? ch.insert({ table, values: rows, format: 'JSONEachRow', columns: [...columns] as [string, ...string[]] }) : Promise.resolve();

  return {
    async write(events) {
      const [items, credited] = await replicas.run('line items: what is stored', async (ch) => [await rowsToWrite(ch, lineItems, events), await rowsToWrite(ch, credits, events)]);
      await replicas.run('line items: insert', async (ch) => {
        await insert(ch, lineItems.table, lineItems.columns, items);
        if (opts.feed) await insert(ch, LINE_ITEMS_FEED, lineItems.columns, items);
        await insert(ch, credits.table, credits.columns, credited);
      });
      metrics.lineItemsInserted.inc(items.length);
    },
  };
}
