import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '@clickhouse/client';
import { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { clickhouseLogging, clickhouseSettings, connectRedis, kafkaLogging } from '@yugong/schemas';
import type { LedgerConfig } from './config.js';
import type { StartOffsets } from './consumer-loop.js';
import { startLedger, type Ledger } from './ledger.js';
import { createMetrics, type LedgerMetrics } from './metrics.js';

export interface LedgerService {
  ledger: Ledger;
  metrics: LedgerMetrics;
  /** Health and metrics: `/healthz`, `/metrics`. */
  url: string;
  server: Server;
  stop(): Promise<void>;
}

/**
 * The ledger consumer from its configuration: what `ledger-consumer/dist/src/main.js` runs
 * (npm start, compose, Kubernetes) and what the test harnesses run. `startAt` (tests only)
 * starts new consumer groups at given offsets instead of the topics' beginnings.
 */
export async function startLedgerService(config: LedgerConfig & { startAt?: StartOffsets }, log: Logger): Promise<LedgerService> {
  const metrics = createMetrics();
  const kafka = new Kafka({ clientId: 'yugong-ledger', brokers: config.kafkaBrokers, ...kafkaLogging(log) });
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
  const ledger = await startLedger({ config, kafka, redis, clickhouse, log, metrics, fault, startAt: config.startAt });
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const url = `http://${config.host}:${(server.address() as AddressInfo).port}`;
  let stopping: Promise<void> | null = null;
  return {
    ledger,
    metrics,
    url,
    server,
    stop: () =>
      (stopping ??= (async () => {
        ready = false;
        await ledger.stop().catch((err: unknown) => log.error({ err }, 'stop failed'));
        redis.disconnect();
        await Promise.all(clickhouse.map((ch) => ch.close()));
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })()),
  };
}
