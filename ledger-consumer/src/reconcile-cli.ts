#!/usr/bin/env node
/** `yugong-reconcile [account …]`: prints each account's drift; exits 1 when any is not 0. */
import { createClient } from '@clickhouse/client';
import { destination, pino } from 'pino';
import { clickhouseLogging, clickhouseSettings, connectRedis, formatUsd } from '@yugong/schemas';
import { loadConfig } from './config.js';
import { createReplicaSet } from './line-items/replicas.js';
import { reconcile } from './reconcile.js';

const config = loadConfig();
const redis = connectRedis(config.redisUrl);
const log = pino({ level: 'warn' }, destination(2));
const clickhouse = config.clickhouseUrls.map((url) => createClient({ url, database: config.clickhouseDatabase, clickhouse_settings: clickhouseSettings, log: clickhouseLogging(log) }));
try {
  const accounts = process.argv.length > 2 ? process.argv.slice(2) : undefined;
  const rows = await createReplicaSet(clickhouse, log).run('reconcile', (ch) => reconcile(redis, ch, accounts));
  console.log(['account', 'spent (Redis, USD)', 'line items (ClickHouse, USD)', 'drift (nano-USD)', 'credited (Redis, USD)', 'credits (ClickHouse, USD)', 'credit drift (nano-USD)'].join('\t'));
  for (const r of rows) {
    console.log(
      [r.accountId, formatUsd(r.redisSpentNano), formatUsd(r.lineItemsNano), r.drift.toString(), formatUsd(r.creditedNano), formatUsd(r.creditsTableNano), r.creditDrift.toString()].join('\t'),
    );
  }
  const drifting = rows.filter((r) => r.drift !== 0n || r.creditDrift !== 0n);
  const total = (f: (r: (typeof rows)[number]) => bigint) => drifting.reduce((s, r) => s + f(r), 0n);
  console.log(`\n${rows.length} accounts, ${drifting.length} with drift, total drift ${total((r) => r.drift)} nano-USD spent, ${total((r) => r.creditDrift)} nano-USD credited`);
  process.exitCode = drifting.length ? 1 : 0;
} finally {
  redis.disconnect();
  await Promise.all(clickhouse.map((ch) => ch.close()));
}
