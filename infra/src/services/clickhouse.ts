import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../profile.js';
import { serviceDir, serviceFiles, type ServiceDef } from './service.js';

/** The read-only user analysts and Grafana use; it can only SELECT. */
export const READONLY_USER = 'yugong_reader';

/**
 * A replica of a one-shard cluster: its own name and ports, the ZooKeeper that coordinates
 * the cluster, and every replica's native port (the cluster definition that ON CLUSTER DDL uses).
 */
export interface ClickHouseReplica {
  name: string;
  ports: Pick<Profile['ports'], 'clickhouseHttp' | 'clickhouseTcp' | 'clickhouseInterserver'>;
  zookeeperPort: number;
  cluster: string;
  replicaTcpPorts: number[];
}

function replicaConfig(r: ClickHouseReplica): string {
  return `
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <zookeeper><node><host>127.0.0.1</host><port>${r.zookeeperPort}</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
  <macros><shard>01</shard><replica>${r.name}</replica></macros>
  <remote_servers><${r.cluster}><shard><internal_replication>true</internal_replication>
    ${r.replicaTcpPorts.map((port) => `<replica><host>127.0.0.1</host><port>${port}</port></replica>`).join('\n    ')}
  </shard></${r.cluster}></remote_servers>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>`;
}

export function clickhouseService(profile: Profile, binary = 'clickhouse-server', replica?: ClickHouseReplica): ServiceDef {
  const name = replica?.name ?? 'clickhouse';
  const d = serviceDir(profile, name);
  const config = join(d.dir, 'config.xml');
  const users = join(d.dir, 'users.xml');
  const p = replica?.ports ?? profile.ports;
  const url = `http://127.0.0.1:${p.clickhouseHttp}`;
  return {
    name,
    ports: [
      { name: 'clickhouse http', port: p.clickhouseHttp },
      { name: 'clickhouse tcp', port: p.clickhouseTcp },
      { name: 'clickhouse interserver', port: p.clickhouseInterserver },
    ],
    ...serviceFiles(d, [config]),
    prepare() {
      for (const sub of ['', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(d.data, sub), { recursive: true });
      // Written for 18.16 (Debian's server); modern servers read the same keys.
      writeFileSync(
        config,
        `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${p.clickhouseHttp}</http_port>
  <tcp_port>${p.clickhouseTcp}</tcp_port>
  <interserver_http_port>${p.clickhouseInterserver}</interserver_http_port>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${d.data}/</path>
  <tmp_path>${join(d.data, 'tmp')}/</tmp_path>
  <user_files_path>${join(d.data, 'user_files')}/</user_files_path>
  <format_schema_path>${join(d.data, 'format_schemas')}/</format_schema_path>
  <users_config>${users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>${replica ? replicaConfig(replica) : ''}
</yandex>
`,
      );
      writeFileSync(
        users,
        `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>4000000000</max_memory_usage><load_balancing>random</load_balancing></default>
    <readonly><readonly>2</readonly><max_memory_usage>2000000000</max_memory_usage><max_execution_time>60</max_execution_time></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <${READONLY_USER}>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
    </${READONLY_USER}>
  </users>
  <quotas>
    <default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default>
  </quotas>
</yandex>
`,
      );
    },
    command: () => ({ command: binary, args: [`--config-file=${config}`] }),
    async healthy() {
      try {
        const res = await fetch(`${url}/?query=SELECT%201`, { signal: AbortSignal.timeout(2000) });
        return res.ok && (await res.text()).trim() === '1';
      } catch {
        return false;
      }
    },
    healthTimeoutMs: 60_000,
    address: url,
  };
}
