import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zookeeperCommand } from '../net.js';
import type { Profile } from '../profile.js';
import { serviceDir, serviceFiles, writeLog4j, type ServiceDef } from './service.js';

/**
 * One Apache ZooKeeper server for replicated ClickHouse. Its jar comes with Kafka 3.9's
 * classpath from Maven Central (zookeeper 3.8), so nothing more is fetched.
 */
export function zookeeperService(profile: Profile, java: string, libs: string, opts: { name: string; port: number }): ServiceDef {
  const d = serviceDir(profile, opts.name);
  const config = join(d.dir, 'zoo.cfg');
  const log4j = join(d.dir, 'log4j.properties');
  return {
    name: opts.name,
    ports: [{ name: 'zookeeper', port: opts.port }],
    ...serviceFiles(d, [config]),
    prepare() {
      mkdirSync(d.data, { recursive: true });
      writeFileSync(
        config,
        [
          // A short tick: a replica that dies loses its session (and its claim on parts) in seconds.
          'tickTime=500',
          'initLimit=10',
          'syncLimit=5',
          `dataDir=${d.data}`,
          `clientPort=${opts.port}`,
          'clientPortAddress=127.0.0.1',
          'admin.enableServer=false',
          '4lw.commands.whitelist=srvr',
          'maxClientCnxns=0',
          '',
        ].join('\n'),
      );
      writeLog4j(log4j);
    },
    command: () => ({
      command: java,
      args: ['-Xms64m', '-Xmx256m', `-Dlog4j.configuration=file:${log4j}`, '-cp', `${libs}/*`, 'org.apache.zookeeper.server.ZooKeeperServerMain', config],
    }),
    // `ruok` answers before the server serves, and a ClickHouse 18.16 that meets a ZooKeeper
    // not yet serving crashes: `srvr` reports a mode only once it serves.
    healthy: async () => (await zookeeperCommand(opts.port, 'srvr', 1000).catch(() => '')).includes('Mode: standalone'),
    healthTimeoutMs: 60_000,
    address: `zookeeper://127.0.0.1:${opts.port}`,
  };
}
