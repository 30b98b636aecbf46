import { Kafka, logLevel, type Producer } from 'kafkajs';
import { pino, type Logger } from 'pino';
import { connectRedis, guardProcess, producerOptions, type RedisClient } from '@yugong/schemas';
import { loadConfig, type ProxyConfig } from './config.js';

export interface ProcessDeps {
  config: ProxyConfig;
  log: Logger;
  redis: RedisClient;
  subscriber: RedisClient;
  producer: Producer;
}

export interface RunningService {
  /** Stops taking work and sends what is buffered. */
  close(): Promise<void>;
  onRejection?(): void;
}

/**
 * One role's process (data plane or control plane): configuration, logging, connections,
 * then the role's service; SIGINT/SIGTERM drain it and exit, an uncaught exception drains and
 * exits for a restart.
 */
export async function runProcess(role: 'proxy' | 'control', start: (deps: ProcessDeps) => Promise<RunningService>): Promise<void> {
  const config = loadConfig();
  const log = pino({ name: role, level: config.logLevel, redact: { paths: ['*.authorization', '*.key', '*.secret', 'req.headers.authorization'], censor: '[redacted]' } });
  const kafka = new Kafka({
    clientId: `yugong-${role}-${config.nodeId}`,
    brokers: config.kafkaBrokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    requestTimeout: 5000,
  });
  const producer = kafka.producer(producerOptions);
  await producer.connect();
  // Admission scripts issued in the same tick share one write: fewer syscalls under load.
  const redis = connectRedis(config.redisUrl, { enableAutoPipelining: true });
  const subscriber = connectRedis(config.redisUrl);
  const service = await start({ config, log, redis, subscriber, producer });

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining');
    await service.close();
    await producer.disconnect().catch(() => undefined);
    redis.disconnect();
    subscriber.disconnect();
    process.exit(0);
  }
  guardProcess(
    log,
    () => service.close().then(() => producer.disconnect()),
    () => service.onRejection?.(),
  );
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
