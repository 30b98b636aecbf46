import { guardProcess } from '@yugong/schemas';
import type { Logger } from 'pino';
import { loadConfig, type ProxyConfig } from './config.js';
import { roleLogger } from './wiring.js';

export interface RunningService {
  /** Stops taking work, sends what is buffered, closes the connections. */
  close(): Promise<void>;
  onRejection?(): void;
}

/**
 * One role's process (data plane or control plane): configuration and logging, then the
 * role's service from its wiring function; SIGINT/SIGTERM drain it and exit, an uncaught
 * exception drains and exits for a restart.
 */
export async function runProcess(role: 'proxy' | 'control', start: (config: ProxyConfig, log: Logger) => Promise<RunningService>): Promise<void> {
  const config = loadConfig();
  const log = roleLogger(role, config.logLevel);
  const service = await start(config, log);

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining');
    await service.close();
    process.exit(0);
  }
  guardProcess(
    log,
    () => service.close(),
    () => service.onRejection?.(),
  );
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
