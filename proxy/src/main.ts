#!/usr/bin/env node
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { clickhouseLogging, clickhouseSettings, connectRedis, guardProcess, loadTokenizers } from '@yugong/schemas';
import { createProxy } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig();
loadTokenizers();
const log = pino({ name: 'proxy', level: config.logLevel, redact: { paths: ['*.authorization', '*.key', '*.secret', 'req.headers.authorization'], censor: '[redacted]' } });
const kafka = new Kafka({ clientId: `yugong-proxy-${config.nodeId}`, brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 }, requestTimeout: 5000 });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
await producer.connect();
// Admission scripts issued in the same tick share one write: fewer syscalls under load.
const redis = connectRedis(config.redisUrl, { enableAutoPipelining: true });
const subscriber = connectRedis(config.redisUrl);
const clickhouse = config.clickhouseUrl ? createClient({ url: config.clickhouseUrl, database: config.clickhouseDatabase, clickhouse_settings: clickhouseSettings, log: clickhouseLogging(log) }) : null;
const proxy = await createProxy({ config, redis, subscriber, producer, clickhouse, log });
const url = await proxy.listen();
log.info({ url: `${url}/v1`, node: config.nodeId, upstream_keys: proxy.pool.all().length }, 'proxy listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'draining');
  await proxy.close();
  await producer.disconnect().catch(() => undefined);
  redis.disconnect();
  subscriber.disconnect();
  process.exit(0);
}
guardProcess(log, () => proxy.close().then(() => producer.disconnect()), () => proxy.metrics.unhandledRejections.inc());
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
