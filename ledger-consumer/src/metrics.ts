import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface LedgerMetrics {
  registry: Registry;
  applied: Counter<'group'>;
  deadLettered: Counter<'group'>;
  applySeconds: Histogram<'group'>;
  lineItemsInserted: Counter;
  duplicatesDropped: Counter<'where'>;
  lag: Gauge<'group' | 'topic' | 'partition'>;
  eventAge: Histogram<'group'>;
}

export function createMetrics(): LedgerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'yugong_ledger_' });
  return {
    registry,
    applied: new Counter({ name: 'yugong_ledger_events_applied_total', help: 'Events applied, by consumer group', labelNames: ['group'], registers: [registry] }),
    deadLettered: new Counter({ name: 'yugong_ledger_dead_lettered_total', help: 'Invalid events sent to the dead-letter topic', labelNames: ['group'], registers: [registry] }),
    applySeconds: new Histogram({
      name: 'yugong_ledger_apply_seconds',
      help: 'Time to apply one chunk of events',
      labelNames: ['group'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    lineItemsInserted: new Counter({ name: 'yugong_ledger_line_items_inserted_total', help: 'Line items written to ClickHouse', registers: [registry] }),
    duplicatesDropped: new Counter({ name: 'yugong_ledger_duplicates_dropped_total', help: 'Duplicate events not written again', labelNames: ['where'], registers: [registry] }),
    lag: new Gauge({ name: 'yugong_ledger_consumer_lag', help: 'Messages behind the end of the partition after the last batch', labelNames: ['group', 'topic', 'partition'], registers: [registry] }),
    eventAge: new Histogram({
      name: 'yugong_ledger_event_age_seconds',
      help: 'From the event (the proxy answering) to its apply',
      labelNames: ['group'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers: [registry],
    }),
  };
}
