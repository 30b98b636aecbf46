#!/usr/bin/env node
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { startLedgerService } from './service.js';

const config = loadConfig();
const log = pino({ name: 'ledger-consumer', level: config.logLevel });
const service = await startLedgerService(config, log);
log.info({ url: service.url }, 'ledger-consumer listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping');
  await service.stop();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
