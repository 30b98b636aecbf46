import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import type { TestStack } from './test-stack.js';

/**
 * The same three servers from a reachable Docker engine (YUGONG_INFRA=containers). Images
 * match what the local stack runs: Kafka 3.9 in KRaft mode, Redis 7, and ClickHouse (a
 * modern server here; the local stack covers 18.16).
 */
export async function startContainers(): Promise<TestStack> {
  const started: StartedTestContainer[] = [];
  try {
    const redis = await new GenericContainer('redis:7.0').withExposedPorts(6379).withWaitStrategy(Wait.forLogMessage('Ready to accept connections')).start();
    started.push(redis);
    const clickhouse = await new GenericContainer('clickhouse/clickhouse-server:24.8')
      .withExposedPorts(8123)
      .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1' })
      .withWaitStrategy(Wait.forHttp('/ping', 8123))
      .start();
    started.push(clickhouse);
    // Kafka must advertise the port the host sees, which is only known after mapping, so a
    // fixed host port is taken and advertised.
    const kafkaHostPort = 39092;
    const kafka = await new GenericContainer('apache/kafka:3.9.1')
      .withExposedPorts({ container: 9092, host: kafkaHostPort })
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093',
        KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${kafkaHostPort}`,
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
        KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .start();
    started.push(kafka);
    return {
      endpoints: {
        kafkaBrokers: [`127.0.0.1:${kafkaHostPort}`],
        redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
        clickhouseUrl: `http://${clickhouse.getHost()}:${clickhouse.getMappedPort(8123)}`,
      },
      release: async () => {
        for (const c of started.reverse()) await c.stop();
      },
    };
  } catch (err) {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    throw err;
  }
}
