#!/usr/bin/env node
import { createClient } from '@clickhouse/client';
import { pino } from 'pino';
import { createAnalyticsApp } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig();
const log = pino({ name: 'analytics', level: config.logLevel });
const clickhouse = createClient({ url: config.clickhouseUrl, database: config.clickhouseDatabase });
const server = createAnalyticsApp({ config, clickhouse, log }).listen(config.port, config.host, () => log.info({ port: config.port }, 'analytics listening'));
const stop = () => {
  server.close();
  void clickhouse.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
