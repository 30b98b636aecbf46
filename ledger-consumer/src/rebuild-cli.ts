#!/usr/bin/env node
/**
 * `yugong-rebuild [--db N] [--swap] [--group ID]`: recomputes Redis balances from the event
 * log into logical database N (default 1), prints every account whose credited, spent or
 * request count differ from the live ones, and with --swap makes the rebuilt database live.
 * Stop the ledger consumer first; start it again afterwards.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from './config.js';
import { isClusterUrl } from '@yugong/schemas';
import { BALANCES_GROUP } from './ledger.js';
import { rebuild, swap } from './rebuild.js';

const config = loadConfig();
const { values } = parseArgs({ options: { db: { type: 'string', default: '1' }, swap: { type: 'boolean', default: false }, group: { type: 'string' } } });
const db = Number(values.db);
if (!Number.isInteger(db) || db < 0 || db > 15) {
  console.error('--db must be a Redis database number (0-15) other than the live one');
  process.exit(2);
}
// A cluster has one database; a rebuild there needs a second cluster to write into.
if (isClusterUrl(config.redisUrl)) {
  console.error('yugong-rebuild writes into a second database of one Redis server; on a Redis Cluster, restore the balances from a snapshot and let the ledger catch up instead');
  process.exit(2);
}
const live = new Redis(config.redisUrl);
const target = new Redis(config.redisUrl, { db });
const kafka = new Kafka({ clientId: 'yugong-rebuild', brokers: config.kafkaBrokers, logLevel: logLevel.WARN });
try {
  const r = await rebuild({ kafka, live, target, group: values.group ?? BALANCES_GROUP + config.groupSuffix, dedupeTtlSeconds: config.dedupeTtlSeconds });
  if (!r.ok) {
    console.error(`rebuild refused: ${r.reason}`);
    process.exitCode = 2;
  } else {
    console.log(['account', 'field', 'live', 'rebuilt'].join('\t'));
    for (const d of r.drifts) console.log([d.accountId, d.field, d.live, d.rebuilt].join('\t'));
    console.log(`\n${r.events} events replayed into database ${db}; ${r.accounts} accounts, ${new Set(r.drifts.map((d) => d.accountId)).size} differ from the live ones`);
    if (values.swap) {
      await swap(live, target);
      console.log(`swapped: the rebuilt balances are live; the previous ones are in database ${db}`);
    }
    process.exitCode = r.drifts.length && !values.swap ? 1 : 0;
  }
} finally {
  live.disconnect();
  target.disconnect();
}
