#!/usr/bin/env node
/** `yugong-reconcile [account …]`: prints each account's drift; exits 1 when any is not 0. */
import { createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { formatUsd } from '@yugong/schemas';
import { loadConfig } from './config.js';
import { reconcile } from './reconcile.js';

const config = loadConfig();
const redis = new Redis(config.redisUrl);
const clickhouse = createClient({ url: config.clickhouseUrl, database: config.clickhouseDatabase });
try {
  const rows = await reconcile(redis, clickhouse, process.argv.length > 2 ? process.argv.slice(2) : undefined);
  console.log(['account', 'spent (Redis, USD)', 'line items (ClickHouse, USD)', 'credited (USD)', 'drift (nano-USD)'].join('\t'));
  for (const r of rows) console.log([r.accountId, formatUsd(r.redisSpentNano), formatUsd(r.lineItemsNano), formatUsd(r.creditedNano), r.drift.toString()].join('\t'));
  const drifting = rows.filter((r) => r.drift !== 0n);
  console.log(`\n${rows.length} accounts, ${drifting.length} with drift, total drift ${drifting.reduce((s, r) => s + r.drift, 0n)} nano-USD`);
  process.exitCode = drifting.length ? 1 : 0;
} finally {
  redis.disconnect();
  await clickhouse.close();
}
