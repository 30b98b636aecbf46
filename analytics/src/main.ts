#!/usr/bin/env node
import { pino } from 'pino';
import { guardProcess } from '@yugong/schemas';
import { loadConfig } from './config.js';
import { startAnalyticsService } from './service.js';

const config = loadConfig();
const log = pino({ name: 'analytics', level: config.logLevel });
const service = await startAnalyticsService(config, log);
log.info({ url: service.url }, 'analytics listening');
const stop = () => void service.close().then(() => process.exit(0));
guardProcess(log, () => new Promise<void>((resolve) => service.server.close(() => resolve())));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
