#!/usr/bin/env node
import { createClient } from '@clickhouse/client';
import { pino } from 'pino';
import { clickhouseLogging, clickhouseSettings, connectRedis, guardProcess } from '@yugong/schemas';
import { createAnalyticsApp } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig();
const log = pino({ name: 'analytics', level: config.logLevel });
const clickhouse = createClient({
  url: config.clickhouseUrl,
  database: config.clickhouseDatabase,
  username: config.clickhouseUser,
  password: config.clickhousePassword,
  clickhouse_settings: clickhouseSettings,
  log: clickhouseLogging(log),
});
const redis = connectRedis(config.redisUrl);
const server = createAnalyticsApp({ config, clickhouse, redis, log }).listen(config.port, config.host, () => log.info({ port: config.port }, 'analytics listening'));
const stop = () => {
  server.close();
  redis.disconnect();
  void clickhouse.close().then(() => process.exit(0));
};
guardProcess(log, () => new Promise<void>((resolve) => server.close(() => resolve())));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
