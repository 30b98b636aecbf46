import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../profile.js';
import { redisInline } from '../net.js';
import { serviceDir, serviceFiles, type ServiceDef } from './service.js';

/** A node of a Redis Cluster: its own name, port and folder; failover after `nodeTimeoutMs` without it. */
export interface ClusterNode {
  name: string;
  port: number;
  nodeTimeoutMs: number;
}

export function redisService(profile: Profile, binary = 'redis-server', clusterNode?: ClusterNode): ServiceDef {
  const name = clusterNode?.name ?? 'redis';
  const d = serviceDir(profile, name);
  const config = join(d.dir, 'redis.conf');
  const port = clusterNode?.port ?? profile.ports.redis;
  const cluster = clusterNode
    ? ['cluster-enabled yes', `cluster-config-file ${join(d.data, 'nodes.conf')}`, `cluster-node-timeout ${clusterNode.nodeTimeoutMs}`, 'cluster-require-full-coverage no']
    : [];
  return {
    name,
    ports: [{ name: 'redis', port }],
    ...serviceFiles(d, [config, `127.0.0.1:${port}`]),
    prepare() {
      mkdirSync(d.data, { recursive: true });
      writeFileSync(
        config,
        [
          'bind 127.0.0.1',
          `port ${port}`,
          'protected-mode yes',
          `dir ${d.data}`,
          'daemonize no',
          'logfile ""',
          'save ""',
          // Balances and holds live here: the dev stack keeps an append-only file; tests need no durability.
          `appendonly ${profile.durable ? 'yes' : 'no'}`,
          'appendfsync everysec',
          'maxmemory-policy noeviction',
          ...cluster,
          '',
        ].join('\n'),
      );
    },
    // redis-server rewrites its process title to "redis-server 127.0.0.1:<port>", so the
    // marker is the port it binds rather than the config path.
    command: () => ({ command: binary, args: [config] }),
    async healthy() {
      try {
        return (await redisInline(port, 'PING')) === '+PONG';
      } catch {
        return false;
      }
    },
    healthTimeoutMs: 20_000,
    address: `redis://127.0.0.1:${port}`,
  };
}
