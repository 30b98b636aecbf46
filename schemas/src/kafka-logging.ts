import { logLevel, type logCreator } from 'kafkajs';
import type { StructuredLog } from './clickhouse/logging.js';

/**
 * kafkajs' own messages (a lost broker, a rebalance) as structured lines of the service's
 * logger instead of its JSON on stdout; warnings and errors only.
 */
export function kafkaLogging(log: StructuredLog): { logLevel: logLevel; logCreator: logCreator } {
  const creator: logCreator =
    () =>
    ({ level, log: { message, timestamp: _t, logger: _l, ...fields } }) => {
      const line = { component: 'kafkajs', ...fields };
      if (level === logLevel.ERROR || level === logLevel.NOTHING) log.error(line, message);
      else if (level === logLevel.WARN) log.warn(line, message);
      else if (level === logLevel.INFO) log.info(line, message);
      else log.debug(line, message);
    };
  return { logLevel: logLevel.WARN, logCreator: creator };
}
