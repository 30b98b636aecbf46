#!/usr/bin/env node
import { createServer } from 'node:http';
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { startLedger } from './ledger.js';
import { createMetrics } from './metrics.js';
import { clickhouseLogging, clickhouseSettings, connectRedis } from '@yugong/schemas';

const config = loadConfig();
const log = pino({ name: 'ledger-consumer', level: config.logLevel });
const metrics = createMetrics();
const kafka = new Kafka({ clientId: 'yugong-ledger', brokers: config.kafkaBrokers, logLevel: logLevel.WARN });
const redis = connectRedis(config.redisUrl, { maxRetriesPerRequest: 3 });
const clickhouse = config.clickhouseUrls.map((url) => createClient({ url, database: config.clickhouseDatabase, clickhouse_settings: clickhouseSettings, log: clickhouseLogging(log) }));

// The crash tests' hook: die without any cleanup at the n-th pass of one point.
let passes = 0;
const killAt = config.killAt;
const fault = killAt
  ? (point: string) => {
      if (point === killAt.point && ++passes === killAt.nth) process.kill(process.pid, 'SIGKILL');
    }
  : undefined;
const ledger = await startLedger({ config, kafka, redis, clickhouse, log, metrics, fault });
let ready = true;

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ok' : 'stopping' }));
  } else if (req.url === '/metrics') {
    void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
  } else {
    res.writeHead(404).end();
  }
});
server.listen(config.port, config.host, () => log.info({ port: config.port }, 'ledger-consumer listening'));

async function shutdown(signal: string, code = 0): Promise<void> {
  if (!ready) return;
  ready = false;
  log.info({ signal }, 'stopping');
  await ledger.stop().catch((err: unknown) => log.error({ err }, 'stop failed'));
  redis.disconnect();
  await Promise.all(clickhouse.map((ch) => ch.close()));
  server.close();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
