import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '@clickhouse/client';
import type { Logger } from 'pino';
import { clickhouseLogging, clickhouseSettings, connectRedis } from '@yugong/schemas';
import { createAnalyticsApp } from './app.js';
import type { AnalyticsConfig } from './config.js';

export interface AnalyticsService {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * The analytics service from its configuration: what `analytics/dist/src/main.js` runs (npm
 * start, compose, Kubernetes) and what the integration suites run.
 */
export async function startAnalyticsService(config: AnalyticsConfig, log: Logger): Promise<AnalyticsService> {
  const clickhouse = createClient({
    url: config.clickhouseUrl,
    database: config.clickhouseDatabase,
    username: config.clickhouseUser,
    password: config.clickhousePassword,
    clickhouse_settings: clickhouseSettings,
    log: clickhouseLogging(log),
  });
  const redis = connectRedis(config.redisUrl);
  const app = createAnalyticsApp({ config, clickhouse, redis, log });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  let closing: Promise<void> | null = null;
  return {
    server,
    url: `http://${config.host}:${(server.address() as AddressInfo).port}`,
    close: () =>
      (closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        redis.disconnect();
        await clickhouse.close();
      })()),
  };
}
