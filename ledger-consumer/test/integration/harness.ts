import { randomUUID } from 'node:crypto';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { pino } from 'pino';
import { endpointsFromEnv, waitFor } from '@yugong/infra';
import { partitionKeyFor, topicFor, type YugongEvent } from '@yugong/schemas';
import { loadConfig } from '../../src/config.js';
import type { Ledger } from '../../src/ledger.js';
import type { LedgerMetrics } from '../../src/metrics.js';
import { startLedgerService } from '../../src/service.js';

export interface Harness {
  kafka: Kafka;
  redis: Redis;
  clickhouse: ClickHouseClient;
  producer: Producer;
  ledger: Ledger;
  metrics: LedgerMetrics;
  database: string;
  groupSuffix: string;
  send(events: YugongEvent[]): Promise<void>;
  waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** A ledger on the real stack with its own consumer groups and ClickHouse database. */
export async function startHarness(): Promise<Harness> {
  const endpoints = endpointsFromEnv();
  const database = `yg_ledger_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = createClient({ url: endpoints.clickhouseUrl });
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await admin.close();
  const kafka = new Kafka({ clientId: 'ledger-test', brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
  const redis = new Redis(endpoints.redisUrl);
  const clickhouse = createClient({ url: endpoints.clickhouseUrl, database });
  const groupSuffix = `-${randomUUID()}`;
  // The wiring the ledger's entry point runs; only the configuration is the test's.
  const service = await startLedgerService(
    loadConfig({
      YUGONG_KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      YUGONG_REDIS_URL: endpoints.redisUrl,
      YUGONG_CLICKHOUSE_URL: endpoints.clickhouseUrl,
      YUGONG_CLICKHOUSE_DATABASE: database,
      YUGONG_CLICKHOUSE_BATCH_MAX_WAIT_MS: '100',
      YUGONG_GROUP_SUFFIX: groupSuffix,
      YUGONG_LEDGER_PORT: '0',
    }),
    pino({ level: 'silent' }),
  );
  const { ledger, metrics } = service;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    kafka,
    redis,
    clickhouse,
    producer,
    ledger,
    metrics,
    database,
    groupSuffix,
    async send(events) {
      for (const e of events) {
        await producer.send({ topic: topicFor(e.type), acks: -1, messages: [{ key: partitionKeyFor(e), value: JSON.stringify(e) }] });
      }
    },
    waitFor,

    async close() {
      await service.stop();
      await producer.disconnect();
      await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await clickhouse.close();
      redis.disconnect();
    },
  };
}
