import { z } from 'zod';
import { parseEnv, parseTrustedProxies, redisUrl, type Cidr } from '@yugong/schemas';

const schema = z.object({
  YUGONG_CLICKHOUSE_URL: z.string().url('YUGONG_CLICKHOUSE_URL must be an http(s):// URL'),
  YUGONG_CLICKHOUSE_USER: z.string().min(1).default('default'),
  YUGONG_CLICKHOUSE_PASSWORD: z.string().default(''),
  YUGONG_REDIS_URL: redisUrl,
  YUGONG_CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('default'),
  YUGONG_ANALYTICS_PORT: z.coerce.number().int().min(0).max(65535).default(18081),
  YUGONG_ANALYTICS_HOST: z.string().default('127.0.0.1'),
  YUGONG_PROXY_URL: z.string().url('YUGONG_PROXY_URL must be an http(s):// URL').regex(/^https?:\/\//, 'YUGONG_PROXY_URL must be an http(s):// URL').default('http://127.0.0.1:18080'),
  /** The ledger consumer's health and metrics address, for the operator overview's consumer lag. */
  YUGONG_LEDGER_URL: z.string().url('YUGONG_LEDGER_URL must be an http(s):// URL').optional(),
  YUGONG_ADMIN_TOKEN: z.string().min(24, 'YUGONG_ADMIN_TOKEN must be at least 24 characters'),
  YUGONG_TRUSTED_PROXIES: z.string().default('').transform((v, ctx) => {
    try {
      return parseTrustedProxies(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
  YUGONG_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface AnalyticsConfig {
  clickhouseUrl: string;
  clickhouseDatabase: string;
  /** A read-only user is enough (and recommended): analytics only reads. */
  clickhouseUser: string;
  clickhousePassword: string;
  redisUrl: string;
  port: number;
  host: string;
  adminToken: string;
  /** The proxy as browsers reach it: the web pages call its account and billing APIs. */
  proxyUrl: string;
  logLevel: string;
  /** Load balancers whose X-Forwarded-For is believed. */
  trustedProxies: Cidr[];
  ledgerUrl: string | null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AnalyticsConfig {
  const c = parseEnv(schema, env);
  return {
    clickhouseUrl: c.YUGONG_CLICKHOUSE_URL, clickhouseDatabase: c.YUGONG_CLICKHOUSE_DATABASE, clickhouseUser: c.YUGONG_CLICKHOUSE_USER,
    clickhousePassword: c.YUGONG_CLICKHOUSE_PASSWORD, redisUrl: c.YUGONG_REDIS_URL, port: c.YUGONG_ANALYTICS_PORT, host: c.YUGONG_ANALYTICS_HOST, adminToken: c.YUGONG_ADMIN_TOKEN, proxyUrl: c.YUGONG_PROXY_URL.replace(/\/+$/, ''), logLevel: c.YUGONG_LOG_LEVEL, trustedProxies: c.YUGONG_TRUSTED_PROXIES, ledgerUrl: c.YUGONG_LEDGER_URL?.replace(/\/+$/, '') ?? null,
  };
}
