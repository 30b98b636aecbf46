/**
 * The variables more than one service reads, each declared once. A service's configuration is
 * one zod object of these and its own, transformed into the config it uses; its type is that
 * transform's output, so a field is named in one place.
 */
import { z } from 'zod';
import { parseTrustedProxies } from './access/ip.js';
import { redisReplicas, redisUrl } from './redis-client.js';

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export const sharedEnv = {
  YUGONG_KAFKA_BROKERS: z.string().min(1, 'YUGONG_KAFKA_BROKERS is required (host:port,…)').transform(list),
  YUGONG_REDIS_URL: redisUrl,
  /** Replicas that confirm a write (a hold, a lease, a ledger batch) before it counts. */
  YUGONG_REDIS_REPLICAS: redisReplicas,
  YUGONG_CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .default('default'),
  YUGONG_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  YUGONG_ADMIN_TOKEN: z.string().min(24, 'YUGONG_ADMIN_TOKEN must be at least 24 characters'),
  /** Load balancers whose X-Forwarded-For is believed (addresses or CIDR ranges, comma-separated). */
  YUGONG_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseTrustedProxies(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
};

/** A TCP port to listen on (0: any free one). */
export const portVariable = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A URL without its trailing slashes. */
export const httpUrl = (name: string) =>
  z
    .string()
    .url(`${name} must be an http(s):// URL`)
    .regex(/^https?:\/\//, `${name} must be an http(s):// URL`)
    .transform((v) => v.replace(/\/+$/, ''));
