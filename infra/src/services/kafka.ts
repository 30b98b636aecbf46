import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { Profile } from '../profile.js';
import { realSystem } from '../system.js';
import { serviceDir, serviceFiles, writeLog4j, type ServiceDef } from './service.js';

/** A broker of a KRaft cluster: its id, ports, every controller of the quorum and the shared cluster id. */
export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
  /** `id@host:port` of every controller, comma-separated. */
  voters: string;
  clusterId: string;
  /** How many brokers hold each partition (internal topics too), and how many must acknowledge a write. */
  replicationFactor: number;
  minInsyncReplicas: number;
}

/** Apache Kafka in KRaft mode (broker and controller in one process), from Maven's jars; one of a cluster with `node`. */
export function kafkaService(profile: Profile, java: string, libs: string, node?: KafkaNode): ServiceDef {
  const d = serviceDir(profile, node ? `kafka-${node.id}` : 'kafka');
  const config = join(d.dir, 'server.properties');
  const log4j = join(d.dir, 'log4j.properties');
  const p = node ? { kafka: node.port, kafkaController: node.controllerPort } : profile.ports;
  const broker = `127.0.0.1:${p.kafka}`;
  const rf = node?.replicationFactor ?? 1;
  const classpath = `${libs}/*`;
  const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath];
  return {
    name: node ? `kafka-${node.id}` : 'kafka',
    ports: [
      { name: 'kafka', port: p.kafka },
      { name: 'kafka controller', port: p.kafkaController },
    ],
    ...serviceFiles(d, [config]),
    prepare() {
      mkdirSync(d.data, { recursive: true });
      writeFileSync(
        config,
        [
          'process.roles=broker,controller',
          `node.id=${node?.id ?? 1}`,
          `controller.quorum.voters=${node?.voters ?? `1@127.0.0.1:${p.kafkaController}`}`,
          `listeners=PLAINTEXT://127.0.0.1:${p.kafka},CONTROLLER://127.0.0.1:${p.kafkaController}`,
          `advertised.listeners=PLAINTEXT://${broker}`,
          'controller.listener.names=CONTROLLER',
          'inter.broker.listener.name=PLAINTEXT',
          'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
          `log.dirs=${d.data}`,
          'num.partitions=3',
          // A single broker's internal topics have one replica; fewer offsets partitions start faster.
          `offsets.topic.replication.factor=${rf}`,
          'offsets.topic.num.partitions=5',
          `transaction.state.log.replication.factor=${rf}`,
          `transaction.state.log.min.isr=${node?.minInsyncReplicas ?? 1}`,
          `default.replication.factor=${rf}`,
          `min.insync.replicas=${node?.minInsyncReplicas ?? 1}`,
          'transaction.state.log.num.partitions=5',
          'group.initial.rebalance.delay.ms=0',
          'auto.create.topics.enable=false',
          'log.retention.hours=168',
          '',
        ].join('\n'),
      );
      writeLog4j(log4j, ['log4j.logger.kafka.server.KafkaRaftServer=INFO']);
      if (!existsSync(join(d.data, 'meta.properties'))) {
        formatStorage(java, jvm, node?.clusterId ?? newClusterId(), config);
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
