export { loadConfig, type LedgerConfig } from './config.js';
export { startLedger, BALANCES_GROUP, LINE_ITEMS_GROUP, type Ledger, type LedgerDeps, type LedgerGroup } from './ledger.js';
export { startLoop, type LoopOptions, type RunningLoop, type StartOffsets } from './consumer-loop.js';
export { createBalanceApplier, type BalanceApplier } from './balances/apply.js';
export { createLineItemSink, type LineItemSink } from './line-items/sink.js';
export { createReplicaSet, type ReplicaSet } from './line-items/replicas.js';
export { createMetrics, type LedgerMetrics } from './metrics.js';
export { reconcile, type Drift } from './reconcile.js';
export { rebuild, swap, type RebuildResult, type AccountDrift } from './rebuild.js';
