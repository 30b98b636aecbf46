import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { InfraError } from './errors.js';

export type ProfileName = 'dev' | 'test';

export interface Ports {
  redis: number;
  clickhouseHttp: number;
  clickhouseTcp: number;
  clickhouseInterserver: number;
  kafka: number;
  kafkaController: number;
}

export interface Profile {
  name: ProfileName;
  /** Shared by all profiles: downloaded Kafka jars. */
  home: string;
  /** Everything this profile writes: configs, data, logs, PID files. Git-ignored. */
  dir: string;
  ports: Ports;
  /** The test stack trades durability for speed; the dev stack keeps Redis' AOF. */
  durable: boolean;
}

export interface Endpoints {
  kafkaBrokers: string[];
  redisUrl: string;
  clickhouseUrl: string;
}

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

const defaults: Record<ProfileName, Ports> = {
  dev: { redis: 16379, clickhouseHttp: 18123, clickhouseTcp: 19000, clickhouseInterserver: 19009, kafka: 19092, kafkaController: 19093 },
  test: { redis: 26379, clickhouseHttp: 28123, clickhouseTcp: 29000, clickhouseInterserver: 29009, kafka: 29092, kafkaController: 29093 },
};

const envNames: Record<keyof Ports, string> = {
  redis: 'REDIS_PORT',
  clickhouseHttp: 'CLICKHOUSE_HTTP_PORT',
  clickhouseTcp: 'CLICKHOUSE_TCP_PORT',
  clickhouseInterserver: 'CLICKHOUSE_INTERSERVER_PORT',
  kafka: 'KAFKA_PORT',
  kafkaController: 'KAFKA_CONTROLLER_PORT',
};

/** Ports come from YUGONG_<PROFILE>_<NAME> (e.g. YUGONG_TEST_REDIS_PORT), else the defaults. */
export function loadProfile(name: ProfileName, env: NodeJS.ProcessEnv = process.env): Profile {
  const ports = { ...defaults[name] };
  for (const key of Object.keys(envNames) as (keyof Ports)[]) {
    const variable = `YUGONG_${name.toUpperCase()}_${envNames[key]}`;
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    const port = Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InfraError('BAD_CONFIG', `${variable}=${raw} is not a port number (1-65535)`);
    }
    ports[key] = port;
  }
  const home = env.YUGONG_HOME ? env.YUGONG_HOME : join(repoRoot, '.yugong');
  return { name, home, dir: join(home, name), ports, durable: name === 'dev' };
}

export function endpointsOf(profile: Profile): Endpoints {
  return {
    kafkaBrokers: [`127.0.0.1:${profile.ports.kafka}`],
    redisUrl: `redis://127.0.0.1:${profile.ports.redis}`,
    clickhouseUrl: `http://127.0.0.1:${profile.ports.clickhouseHttp}`,
  };
}

/** The variables every Yugong process reads its infrastructure from. */
export function endpointsToEnv(e: Endpoints): Record<string, string> {
  return {
    YUGONG_KAFKA_BROKERS: e.kafkaBrokers.join(','),
    YUGONG_REDIS_URL: e.redisUrl,
    YUGONG_CLICKHOUSE_URL: e.clickhouseUrl,
  };
}

export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): Endpoints {
  const missing = ['YUGONG_KAFKA_BROKERS', 'YUGONG_REDIS_URL', 'YUGONG_CLICKHOUSE_URL'].filter((v) => !env[v]);
  if (missing.length) {
    throw new InfraError('BAD_CONFIG', `YUGONG_INFRA=external needs ${missing.join(', ')} in the environment`);
  }
  return {
    kafkaBrokers: (env.YUGONG_KAFKA_BROKERS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    redisUrl: env.YUGONG_REDIS_URL ?? '',
    clickhouseUrl: env.YUGONG_CLICKHOUSE_URL ?? '',
  };
}
