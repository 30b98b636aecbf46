import { ClickHouseLogLevel, type ErrorLogParams, type LogParams, type Logger, type WarnLogParams } from '@clickhouse/client';

/** The part of a pino logger the ClickHouse client's messages go to. */
export interface StructuredLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The ClickHouse client's own messages (a refused connection, a failed request) as structured
 * log lines of the service's logger, instead of the client's text on stderr. The client makes
 * its logger with `new LoggerClass()`, so the class closes over the service's logger.
 */
export function clickhouseLogging(log: StructuredLog): { LoggerClass: new () => Logger; level: ClickHouseLogLevel } {
  const fields = ({ module, args }: LogParams, err?: Error) => ({ component: 'clickhouse-client', module, ...args, ...(err ? { err: err.message } : {}) });
  class ServiceLogger implements Logger {
    trace(p: LogParams) {
      log.debug(fields(p), p.message);
    }
    debug(p: LogParams) {
      log.debug(fields(p), p.message);
    }
    info(p: LogParams) {
      log.info(fields(p), p.message);
    }
    warn(p: WarnLogParams) {
      log.warn(fields(p, p.err), p.message);
    }
    error(p: ErrorLogParams) {
      log.error(fields(p, p.err), p.message);
    }
  }
  return { LoggerClass: ServiceLogger, level: ClickHouseLogLevel.WARN };
}
