#!/usr/bin/env node
import { createClient } from '@clickhouse/client';
import { loadTokenizers } from '@yugong/metering';
import { clickhouseLogging, clickhouseSettings } from '@yugong/schemas';
import { createProxy } from './app.js';
import { runProcess } from './process.js';

/** The data plane: a proxy node (and, unless YUGONG_CONTROL_API=off, the control plane's APIs with it). */
await runProcess('proxy', async ({ config, log, redis, subscriber, producer }) => {
  loadTokenizers();
  const clickhouse = config.clickhouseUrl
    ? createClient({ url: config.clickhouseUrl, database: config.clickhouseDatabase, clickhouse_settings: clickhouseSettings, log: clickhouseLogging(log) })
    : null;
  const proxy = await createProxy({ config, redis, subscriber, producer, clickhouse, log });
  const url = await proxy.listen();
  log.info({ url: `${url}/v1`, node: config.nodeId, upstream_keys: proxy.pool.all().length, control_api: config.controlApi }, 'proxy listening');
  return { close: () => proxy.close(), onRejection: () => proxy.metrics.unhandledRejections.inc() };
});
