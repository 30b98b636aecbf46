import { z } from 'zod';
import { httpUrl, parseEnv, portVariable, sharedEnv } from '@yugong/schemas';

const schema = z
  .object({
    YUGONG_CLICKHOUSE_URL: httpUrl('YUGONG_CLICKHOUSE_URL'),
    YUGONG_CLICKHOUSE_USER: z.string().min(1).default('default'),
    YUGONG_CLICKHOUSE_PASSWORD: z.string().default(''),
    YUGONG_CLICKHOUSE_DATABASE: sharedEnv.YUGONG_CLICKHOUSE_DATABASE,
    YUGONG_REDIS_URL: sharedEnv.YUGONG_REDIS_URL,
    YUGONG_ANALYTICS_PORT: portVariable(18081),
    YUGONG_ANALYTICS_HOST: z.string().default('127.0.0.1'),
    YUGONG_PROXY_URL: httpUrl('YUGONG_PROXY_URL').default('http://127.0.0.1:18080'),
    YUGONG_LEDGER_URL: httpUrl('YUGONG_LEDGER_URL').optional(),
    YUGONG_ADMIN_TOKEN: sharedEnv.YUGONG_ADMIN_TOKEN,
    YUGONG_TRUSTED_PROXIES: sharedEnv.YUGONG_TRUSTED_PROXIES,
    YUGONG_LOG_LEVEL: sharedEnv.YUGONG_LOG_LEVEL,
  })
  .transform((c) => ({
    clickhouseUrl: c.YUGONG_CLICKHOUSE_URL,
    clickhouseDatabase: c.YUGONG_CLICKHOUSE_DATABASE,
    /** A read-only user is enough (and recommended): analytics only reads. */
    clickhouseUser: c.YUGONG_CLICKHOUSE_USER,
    clickhousePassword: c.YUGONG_CLICKHOUSE_PASSWORD,
    redisUrl: c.YUGONG_REDIS_URL,
    port: c.YUGONG_ANALYTICS_PORT,
    host: c.YUGONG_ANALYTICS_HOST,
    adminToken: c.YUGONG_ADMIN_TOKEN,
    /** The proxy as browsers reach it: the web pages call its account and billing APIs. */
    proxyUrl: c.YUGONG_PROXY_URL,
    logLevel: c.YUGONG_LOG_LEVEL,
    /** Load balancers whose X-Forwarded-For is believed. */
    trustedProxies: c.YUGONG_TRUSTED_PROXIES,
    /** The ledger consumer's health and metrics address, for the operator overview's consumer lag. */
    ledgerUrl: c.YUGONG_LEDGER_URL ?? null,
  }));

export type AnalyticsConfig = z.output<typeof schema>;

/** Parsed and validated once, at start; a bad variable stops the process with its name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AnalyticsConfig {
  return parseEnv(schema, env);
}
