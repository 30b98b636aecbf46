import { createClient } from '@clickhouse/client';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { pino, type Logger } from 'pino';
import { loadTokenizers } from '@yugong/metering';
import { clickhouseLogging, clickhouseSettings, connectRedis, producerOptions, type RedisClient } from '@yugong/schemas';
import { createProxy, type Proxy as ProxyNode } from './app.js';
import type { ProxyConfig } from './config.js';
import { createControlPlane, type ControlPlane } from './control/plane.js';

/** A role's connections, made the one way every deployment and every test makes them. */
export interface Connections {
  redis: RedisClient;
  subscriber: RedisClient;
  producer: Producer;
  close(): Promise<void>;
}

export interface Service<T> {
  /** The running role (the node or the control plane). */
  role: T;
  url: string;
  connections: Connections;
  /** Drains the role, then closes its connections. */
  close(): Promise<void>;
}

/** The one logger of a role: keys and secrets are redacted wherever a log line carries them. */
export function roleLogger(role: 'proxy' | 'control', level: string): Logger {
  return pino({ name: role, level, redact: { paths: ['*.authorization', '*.key', '*.secret', 'req.headers.authorization'], censor: '[redacted]' } });
}

async function connect(role: 'proxy' | 'control', config: ProxyConfig): Promise<Connections> {
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
  // Every command on this connection must therefore work auto-pipelined (ioredis drops the
  // name of a generic `call`/`callBuffer` there): the integration suites run on this client.
  const redis = connectRedis(config.redisUrl, { enableAutoPipelining: true });
  const subscriber = connectRedis(config.redisUrl);
  return {
    redis,
    subscriber,
    producer,
    async close() {
      await producer.disconnect().catch(() => undefined);
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

function service<T extends { close(): Promise<void> }>(role: T, url: string, connections: Connections): Service<T> {
  let closing: Promise<void> | null = null;
  return {
    role,
    url,
    connections,
    close: () => (closing ??= role.close().then(() => connections.close())),
  };
}

/**
 * A proxy node from its configuration: what `proxy/dist/src/main.js` (npm start, compose,
 * Kubernetes) runs, and what the test harness runs. Listens on the configured address.
 */
export async function startProxyNode(config: ProxyConfig, log: Logger): Promise<Service<ProxyNode>> {
  loadTokenizers();
  const connections = await connect('proxy', config);
  const clickhouse = config.clickhouseUrl
    ? createClient({ url: config.clickhouseUrl, database: config.clickhouseDatabase, clickhouse_settings: clickhouseSettings, log: clickhouseLogging(log) })
    : null;
  const proxy = await createProxy({ config, ...connections, clickhouse, log });
  const url = await proxy.listen(config.port, config.host);
  return service(
    {
      ...proxy,
      close: async () => {
        await proxy.close();
        await clickhouse?.close();
      },
    },
    url,
    connections,
  );
}

/** The control plane as its own process (YUGONG_CONTROL_API=off on the nodes): `proxy/dist/src/control/main.js`. */
export async function startControlNode(config: ProxyConfig, log: Logger): Promise<Service<ControlPlane>> {
  const connections = await connect('control', config);
  const plane = await createControlPlane({ config, ...connections, log });
  const url = await plane.listen(config.controlPort, config.host);
  return service(plane, url, connections);
}
