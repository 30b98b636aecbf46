import { z } from 'zod';
import { parseEnv, portVariable, sharedEnv } from '@yugong/schemas';
import type { FaultPoint } from './consumer-loop.js';
import type { LedgerGroup } from './ledger.js';

/**
 * A ledger that lost Kafka comes back as a new group member, and a restarted coordinator keeps
 * the lost member until its session ends: this is how long balances wait after an outage
 * (kafkajs cannot rejoin with the old member id). 10 s is Kafka's own default before 3.0.
 */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;

const schema = z
  .object({
    YUGONG_KAFKA_BROKERS: sharedEnv.YUGONG_KAFKA_BROKERS,
    YUGONG_REDIS_URL: sharedEnv.YUGONG_REDIS_URL,
    YUGONG_REDIS_REPLICAS: sharedEnv.YUGONG_REDIS_REPLICAS,
    /** Brokers that hold each partition of the topics the ledger creates (3 on a production cluster, with min.insync.replicas=2). */
    YUGONG_KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(7).default(1),
    /** One server, or every replica of a replicated shard, comma-separated: the sink writes to one and fails over to the next. */
    YUGONG_CLICKHOUSE_URL: z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().url('YUGONG_CLICKHOUSE_URL must list http(s):// URLs')).min(1, 'YUGONG_CLICKHOUSE_URL is required')),
    /** The cluster (remote_servers) whose replicas the migrations make every table on, replicated. */
    YUGONG_CLICKHOUSE_CLUSTER: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    YUGONG_CLICKHOUSE_DATABASE: sharedEnv.YUGONG_CLICKHOUSE_DATABASE,
    YUGONG_LEDGER_PORT: portVariable(18082),
    YUGONG_LEDGER_HOST: z.string().default('127.0.0.1'),
    YUGONG_LOG_LEVEL: sharedEnv.YUGONG_LOG_LEVEL,
    /** How long "this event was applied" markers live: well beyond Kafka's retention. */
    YUGONG_DEDUPE_TTL_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
    YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS: z.coerce.number().int().min(10).max(60_000).default(500),
    /** A suffix for consumer group ids, so tests can run isolated groups on one cluster. */
    YUGONG_GROUP_SUFFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/)
      .default(''),
    /** How long a consumer that stopped heartbeating keeps its partitions (the broker allows 6 s and up). */
    YUGONG_KAFKA_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6000).max(300_000).default(DEFAULT_SESSION_TIMEOUT_MS),
    /** Which consumer groups this process runs (both by default; one each scales them apart). */
    YUGONG_LEDGER_GROUPS: z
      .string()
      .regex(/^(balances|line-items)(,(balances|line-items))?$/, 'YUGONG_LEDGER_GROUPS must list balances and/or line-items')
      .default('balances,line-items'),
    /** Crash tests only: "point:n" kills the process with SIGKILL at the n-th pass of that point. */
    YUGONG_FAULT_KILL_AT: z
      .string()
      .regex(/^(handled|resolved|committed):[1-9]\d{0,5}$/, 'YUGONG_FAULT_KILL_AT must be handled|resolved|committed:<n>')
      .optional(),
  })
  .transform((c) => ({
    kafkaBrokers: c.YUGONG_KAFKA_BROKERS,
    redisUrl: c.YUGONG_REDIS_URL,
    clickhouseUrls: c.YUGONG_CLICKHOUSE_URL,
    clickhouseCluster: c.YUGONG_CLICKHOUSE_CLUSTER ?? null,
    clickhouseDatabase: c.YUGONG_CLICKHOUSE_DATABASE,
    port: c.YUGONG_LEDGER_PORT,
    host: c.YUGONG_LEDGER_HOST,
    logLevel: c.YUGONG_LOG_LEVEL,
    dedupeTtlSeconds: c.YUGONG_DEDUPE_TTL_DAYS * 86_400,
    clickhouseMaxWaitMs: c.YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS,
    groupSuffix: c.YUGONG_GROUP_SUFFIX,
    /** Replicas that hold a batch before its offsets are committed. */
    redisReplicas: c.YUGONG_REDIS_REPLICAS,
    kafkaReplicationFactor: c.YUGONG_KAFKA_REPLICATION_FACTOR,
    sessionTimeoutMs: c.YUGONG_KAFKA_SESSION_TIMEOUT_MS,
    groups: [...new Set(c.YUGONG_LEDGER_GROUPS.split(','))] as LedgerGroup[],
    killAt: c.YUGONG_FAULT_KILL_AT ? { point: c.YUGONG_FAULT_KILL_AT.split(':')[0] as FaultPoint, nth: Number(c.YUGONG_FAULT_KILL_AT.split(':')[1]) } : null,
  }));

export type LedgerConfig = z.output<typeof schema>;

/** Parsed and validated once, at start; a bad variable stops the process with its name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LedgerConfig {
  return parseEnv(schema, env);
}
