import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { InfraError } from './errors.js';
import { isOurs, killByPidFile, readPid, startDetached, stopByPidFile, tail } from './proc.js';
import type { Profile } from './profile.js';
import { kafkaService, newClusterId } from './services/kafka.js';
import { wipeServices } from './stack.js';
import type { ServiceDef } from './services/service.js';
import { ensureInstalled, realSystem, type SystemProbe } from './system.js';

export interface KafkaCluster {
  brokers: string[];
  /** The broker id (1-based) that leads a partition now. */
  leaderOf(topic: string, partition: number): Promise<number>;
  kill(id: number): Promise<void>;
  restart(id: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `count` KRaft brokers, each also a controller of the quorum, as local processes on
 * consecutive ports from `basePort` (brokers) and `basePort + 100` (controllers). Topics made
 * on it default to `count` replicas, of which 2 must acknowledge a write (acks=all).
 */
export async function startKafkaCluster(profile: Profile, opts: { basePort: number; count?: number; fresh?: boolean; sys?: SystemProbe; log?: (line: string) => void }): Promise<KafkaCluster> {
  const installed = ensureInstalled(profile.home, opts.sys ?? realSystem);
  const count = opts.count ?? 3;
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  const voters = ids.map((id) => `${id}@127.0.0.1:${opts.basePort + 100 + id - 1}`).join(',');
  const clusterId = newClusterId();
  const defs = new Map<number, ServiceDef>(
    ids.map((id) => [
      id,
      kafkaService(profile, installed.java, installed.kafkaLibs, {
        id,
        port: opts.basePort + id - 1,
        controllerPort: opts.basePort + 100 + id - 1,
        voters,
        clusterId,
        replicationFactor: count,
        minInsyncReplicas: Math.min(2, count),
      }),
    ]),
  );
  const brokers = ids.map((id) => `127.0.0.1:${opts.basePort + id - 1}`);
  const log = opts.log ?? (() => undefined);
  if (opts.fresh) await wipeServices(profile, [...defs.values()], 20_000);

  // A broker is healthy only once a majority of the controllers run: start all, then wait.
  const launch = (def: ServiceDef) => {
    def.prepare();
    const { command, args, env } = def.command();
    startDetached({ command, args, env, logFile: def.logFile, pidFile: def.pidFile });
  };
  const healthy = async (defsToWait: ServiceDef[]) => {
    const deadline = Date.now() + 120_000;
    for (const def of defsToWait) {
      while (!(await def.healthy())) {
        if (Date.now() > deadline) throw new InfraError('UNHEALTHY', `${def.name} did not become healthy within 120 s. Last lines of ${def.logFile}:\n${tail(def.logFile)}`);
        await sleep(300);
      }
      log(`[infra] ${def.name.padEnd(10)} ${def.address.padEnd(28)} log: ${def.logFile}`);
    }
  };
  for (const def of defs.values()) {
    const pid = readPid(def.pidFile);
    if (pid === null || !isOurs(pid, def.markers)) launch(def);
  }
  await healthy([...defs.values()]);

  const admin = async <T>(use: (a: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> => {
    const a = new Kafka({ clientId: 'yugong-infra-cluster', brokers, logLevel: logLevel.NOTHING }).admin();
    await a.connect();
    try {
      return await use(a);
    } finally {
      await a.disconnect();
    }
  };
  return {
    brokers,
    leaderOf: (topic, partition) =>
      admin(async (a) => {
        const meta = await a.fetchTopicMetadata({ topics: [topic] });
        const p = meta.topics[0]?.partitions.find((x) => x.partitionId === partition);
        if (!p) throw new InfraError('UNHEALTHY', `no partition ${topic}/${partition}`);
        return p.leader;
      }),
    async kill(id) {
      const def = defs.get(id);
      if (def) await killByPidFile(def.pidFile, def.markers);
    },
    async restart(id) {
      const def = defs.get(id);
      if (!def) return;
      launch(def);
      await healthy([def]);
    },
    async stop() {
      for (const def of defs.values()) await stopByPidFile(def.pidFile, def.markers, 20_000);
    },
  };
}
