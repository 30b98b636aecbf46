import { killByPidFile, stopByPidFile } from './proc.js';
import type { Profile } from './profile.js';
import { clickhouseService } from './services/clickhouse.js';
import type { ServiceDef } from './services/service.js';
import { zookeeperService } from './services/zookeeper.js';
import { startService, wipeServices } from './stack.js';
import { ensureInstalled, realSystem, type SystemProbe } from './system.js';

export interface ClickHouseCluster {
  /** The cluster's name in every replica's remote_servers (what ON CLUSTER names). */
  name: string;
  /** Each replica's HTTP URL, in order. */
  urls: string[];
  zookeeper: string;
  /** Ends replica `i` (0-based) with SIGKILL, as a crash would. */
  kill(i: number): Promise<void>;
  /** Starts replica `i` again on its data: it fetches from the others what it missed. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One shard of `replicas` ClickHouse servers (Debian's) with ReplicatedMergeTree coordinated by
 * one ZooKeeper (Maven's jar): ZooKeeper on `basePort`, replica i's HTTP, native and interserver
 * ports on basePort + 10 + i, + 20 + i and + 30 + i.
 */
export async function startClickHouseCluster(
  profile: Profile,
  opts: { basePort: number; replicas?: number; name?: string; fresh?: boolean; sys?: SystemProbe; log?: (line: string) => void },
): Promise<ClickHouseCluster> {
  const installed = ensureInstalled(profile.home, opts.sys ?? realSystem);
  const name = opts.name ?? 'yugong';
  const count = opts.replicas ?? 2;
  const index = Array.from({ length: count }, (_, i) => i);
  const zookeeper = zookeeperService(profile, installed.java, installed.kafkaLibs, { name: 'zookeeper', port: opts.basePort });
  const replicas = index.map((i) =>
    clickhouseService(profile, 'clickhouse-server', {
      name: `clickhouse-${i + 1}`,
      ports: { clickhouseHttp: opts.basePort + 10 + i, clickhouseTcp: opts.basePort + 20 + i, clickhouseInterserver: opts.basePort + 30 + i },
      zookeeperPort: opts.basePort,
      cluster: name,
      replicaTcpPorts: index.map((j) => opts.basePort + 20 + j),
    }),
  );
  const all: ServiceDef[] = [zookeeper, ...replicas];
  const log = opts.log ?? (() => undefined);
  if (opts.fresh) await wipeServices(profile, all, 20_000);
  for (const def of all) await startService(def, log);
  const replica = (i: number) => {
    const def = replicas[i];
    if (!def) throw new RangeError(`no replica ${i} of ${count}`);
    return def;
  };
  return {
    name,
    urls: replicas.map((def) => def.address),
    zookeeper: zookeeper.address,
    kill: (i) => killByPidFile(replica(i).pidFile, replica(i).markers),
    restart: async (i) => void (await startService(replica(i), log)),
    async stop() {
      for (const def of [...all].reverse()) await stopByPidFile(def.pidFile, def.markers, 20_000);
    },
  };
}
