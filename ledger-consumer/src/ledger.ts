import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { confirmReplicated, ensureTopics, migrate, producerOptions, retry, topics, type RedisClient } from '@yugong/schemas';
import { createBalanceApplier } from './balances/apply.js';
import { startLoop, type FaultPoint, type RunningLoop, type StartOffsets } from './consumer-loop.js';
import { DEFAULT_SESSION_TIMEOUT_MS, type LedgerConfig } from './config.js';
import { createReplicaSet } from './line-items/replicas.js';
import { createLineItemSink } from './line-items/sink.js';
import type { LedgerMetrics } from './metrics.js';

export const BALANCES_GROUP = 'yugong-ledger-balances';
export const LINE_ITEMS_GROUP = 'yugong-ledger-line-items';

export type LedgerGroup = 'balances' | 'line-items';

export interface Ledger {
  /** The consumer groups this process runs; independent, so a ClickHouse outage never stalls balances. */
  loops: RunningLoop[];
  stop(): Promise<void>;
}

export interface LedgerDeps {
  config: Pick<LedgerConfig, 'dedupeTtlSeconds' | 'clickhouseMaxWaitMs' | 'groupSuffix'> &
    Partial<Pick<LedgerConfig, 'sessionTimeoutMs' | 'groups' | 'redisReplicas' | 'kafkaReplicationFactor' | 'clickhouseCluster'>>;
  kafka: Kafka;
  redis: RedisClient;
  /** The replicas of the ClickHouse shard (one server unless it is replicated), tried in order. */
  clickhouse: ClickHouseClient[];
  log: Logger;
  metrics: LedgerMetrics;
  fault?: (point: FaultPoint) => void;
  /** Where new groups start instead of each topic's beginning (test stacks that need only their own events). */
  startAt?: StartOffsets;
}

/** Creates topics and tables if missing, then starts both consumer groups. */
export async function startLedger(deps: LedgerDeps): Promise<Ledger> {
  const admin = deps.kafka.admin();
  await admin.connect();
  try {
    // A cluster that has just started may not have told every broker of a new topic yet.
    const created = await retry(() => ensureTopics(admin, deps.config.kafkaReplicationFactor ?? 1), {
      attempts: 10,
      delayMs: 1000,
      retriable: (err) => (err as { retriable?: boolean }).retriable === true,
      onRetry: (err, attempt) => deps.log.warn({ err: (err as Error).message, attempt }, 'topics not ready; trying again'),
    });
    if (created.length) deps.log.info({ created }, 'created topics');
  } finally {
    await admin.disconnect();
  }
  const replicas = createReplicaSet(deps.clickhouse, deps.log);
  const cluster = deps.config.clickhouseCluster ?? undefined;
  const report = await replicas.run('migrations', (ch) => migrate(ch, undefined, { cluster }));
  deps.log.info({ applied: report.applied, server: report.serverVersion }, 'clickhouse migrations');

  const dlq = deps.kafka.producer(producerOptions);
  await dlq.connect();
  const applier = createBalanceApplier(deps.redis, deps.config.dedupeTtlSeconds);
  const sink = createLineItemSink(replicas, deps.metrics, { feed: cluster !== undefined });
  const suffix = deps.config.groupSuffix;
  // A member that died holds its partitions until its session times out.
  const session = deps.config.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  const membership = { sessionTimeout: session, heartbeatInterval: Math.min(3000, Math.floor(session / 3)) };
  const groups = deps.config.groups ?? ['balances', 'line-items'];
  const loops: RunningLoop[] = [];
  if (groups.includes('balances'))
    loops.push(
      await startLoop({
        kafka: deps.kafka,
        groupId: BALANCES_GROUP + suffix,
        topics: [topics.accounts, topics.usage, topics.control],
        // Offsets are committed only after the replicas hold the batch: a primary that fails
        // before that takes writes along, and the batch is applied again on its successor.
        handle: async (events) => {
          await applier.apply(events);
          await confirmReplicated(deps.redis, deps.config.redisReplicas ?? 0);
        },
        chunkSize: 500,
        concurrency: 6,
        // Redis answers in milliseconds, a failover in seconds: longer is a hung dependency, retried from the commit.
        handleTimeoutMs: 15_000,
        dlq,
        log: deps.log,
        metrics: deps.metrics,
        fault: deps.fault,
        startAt: deps.startAt,
        consumerConfig: { ...membership, maxWaitTimeInMs: 50, maxBytesPerPartition: 8 * 1024 * 1024, maxBytes: 48 * 1024 * 1024 },
      }),
    );
  if (groups.includes('line-items'))
    loops.push(
      await startLoop({
        kafka: deps.kafka,
        groupId: LINE_ITEMS_GROUP + suffix,
        // Top-ups travel on the accounts topic; the rest of it is skipped here.
        topics: [topics.usage, topics.accounts],
        handle: (events) => sink.write(events),
        chunkSize: 5000,
        dlq,
        log: deps.log,
        metrics: deps.metrics,
        fault: deps.fault,
        startAt: deps.startAt,
        // Batches by time and size: a fetch waits for 256 KiB or the deadline, whichever first.
        consumerConfig: { ...membership, maxWaitTimeInMs: deps.config.clickhouseMaxWaitMs, minBytes: 256 * 1024, maxBytesPerPartition: 8 * 1024 * 1024 },
      }),
    );
  return {
    loops,
    async stop() {
      await Promise.all(loops.map((l) => l.stop()));
      await dlq.disconnect();
    },
  };
}
