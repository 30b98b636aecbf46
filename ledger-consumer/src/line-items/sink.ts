import type { ClickHouseClient } from '@clickhouse/client';
import { lineItemColumns, sqlString, sqlStringArray, toClickHouseDateTime, toLineItemRow, type EventOf, type YugongEvent } from '@yugong/schemas';
import type { LedgerMetrics } from '../metrics.js';

/** 18.16's max_query_size is 256 KiB: presence checks go in slices well below it. */
const PRESENCE_SLICE = 1000;

export interface LineItemSink {
  write(events: YugongEvent[]): Promise<void>;
}

/**
 * Writes one line item per usage event, exactly once. Rollup views fire on every insert, so
 * duplicates must never reach the table: drop repeats within the batch, then drop the ids
 * ClickHouse already holds (looked up inside the primary-key range of the batch, so the
 * lookup is cheap), then insert. ClickHouse itself is the seen-set, so a crash between the
 * insert and the offset commit cannot insert the same event twice.
 */
export function createLineItemSink(ch: ClickHouseClient, metrics: LedgerMetrics): LineItemSink {
  async function alreadyStored(events: EventOf<'usage.recorded'>[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (let i = 0; i < events.length; i += PRESENCE_SLICE) {
      const slice = events.slice(i, i + PRESENCE_SLICE);
      const roots = [...new Set(slice.map((e) => e.accountPath[0] ?? ''))];
      const times = slice.map((e) => Date.parse(e.time));
      const from = toClickHouseDateTime(new Date(Math.min(...times)));
      const to = toClickHouseDateTime(new Date(Math.max(...times)));
      const rs = await ch.query({
        query: `SELECT event_id FROM line_items
          WHERE root_account_id IN (${roots.map(sqlString).join(', ')})
            AND time >= ${sqlString(from)} AND time <= ${sqlString(to)}
            AND event_id IN ${sqlStringArray(slice.map((e) => e.id)).replace(/^\[/, '(').replace(/\]$/, ')')}`,
        format: 'JSONEachRow',
      });
      for (const row of await rs.json<{ event_id: string }>()) stored.add(row.event_id);
    }
    return stored;
  }

  return {
    async write(events) {
      const seen = new Set<string>();
      const unique: EventOf<'usage.recorded'>[] = [];
      for (const e of events) {
        if (e.type !== 'usage.recorded') continue;
        if (seen.has(e.id)) {
          metrics.duplicatesDropped.inc({ where: 'batch' });
          continue;
        }
        seen.add(e.id);
        unique.push(e);
      }
      if (unique.length === 0) return;
      const stored = await alreadyStored(unique);
      if (stored.size) metrics.duplicatesDropped.inc({ where: 'clickhouse' }, stored.size);
      const rows = unique.filter((e) => !stored.has(e.id)).map(toLineItemRow);
      if (rows.length === 0) return;
      await ch.insert({ table: 'line_items', values: rows, format: 'JSONEachRow', columns: [...lineItemColumns] as [string, ...string[]] });
      metrics.lineItemsInserted.inc(rows.length);
    },
  };
}
