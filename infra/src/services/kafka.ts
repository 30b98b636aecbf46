import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { Profile } from '../profile.js';
import { realSystem } from '../system.js';
import { serviceDir, type ServiceDef } from './service.js';

/** Apache Kafka in KRaft mode (broker and controller in one process), from Maven's jars. */
export function kafkaService(profile: Profile, java: string, libs: string): ServiceDef {
  const d = serviceDir(profile, 'kafka');
  const config = join(d.dir, 'server.properties');
  const log4j = join(d.dir, 'log4j.properties');
  const p = profile.ports;
  const broker = `127.0.0.1:${p.kafka}`;
  const classpath = `${libs}/*`;
  const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath];
  return {
    name: 'kafka',
    ports: [
      { name: 'kafka', port: p.kafka },
      { name: 'kafka controller', port: p.kafkaController },
    ],
    markers: [config],
    logFile: d.logFile,
    pidFile: d.pidFile,
    prepare() {
      mkdirSync(d.data, { recursive: true });
      writeFileSync(
        config,
        [
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${p.kafkaController}`,
          `listeners=PLAINTEXT://127.0.0.1:${p.kafka},CONTROLLER://127.0.0.1:${p.kafkaController}`,
          `advertised.listeners=PLAINTEXT://${broker}`,
          'controller.listener.names=CONTROLLER',
          'inter.broker.listener.name=PLAINTEXT',
          'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
          `log.dirs=${d.data}`,
          'num.partitions=3',
          // Single broker: every internal topic has one replica; fewer offsets partitions start faster.
          'offsets.topic.replication.factor=1',
          'offsets.topic.num.partitions=5',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'transaction.state.log.num.partitions=5',
          'group.initial.rebalance.delay.ms=0',
          'auto.create.topics.enable=false',
          'log.retention.hours=168',
          '',
        ].join('\n'),
      );
      writeFileSync(
        log4j,
        [
          'log4j.rootLogger=WARN, stdout',
          'log4j.logger.kafka.server.KafkaRaftServer=INFO',
          'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
          'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
          'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
          '',
        ].join('\n'),
      );
      if (!existsSync(join(d.data, 'meta.properties'))) {
        formatStorage(java, jvm, newClusterId(), config);
      }
    },
    command: () => ({ command: java, args: [...jvm, 'kafka.Kafka', config] }),
    async healthy() {
      const admin = new Kafka({ clientId: 'yugong-infra-health', brokers: [broker], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length > 0 && cluster.controller !== null;
      } catch {
        return false;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    healthTimeoutMs: 90_000,
    address: `kafka://${broker}`,
  };
}

/**
 * A random cluster id as Kafka makes them (16 bytes, base64url). One in 64 would start with
 * '-', which the storage tool reads as an option (Kafka's own Uuid.randomUuid skips those too).
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function formatStorage(java: string, jvm: string[], clusterId: string, config: string): void {
  // Synchronous on purpose: the broker must not start before its storage is formatted.
  const { status, output } = realSystem.run(java, [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', config]);
  if (status !== 0) throw new Error(`kafka storage format failed:\n${output.slice(-2000)}`);
}
