import { hostname } from 'node:os';
import { z } from 'zod';
import { httpUrl, parseEnv, portVariable, privateTarget, sharedEnv } from '@yugong/schemas';

const upstreamSeed = z
  .object({
    baseUrl: z.string().url(),
    key: z.string().min(1),
    organization: z.string().nullable().default(null),
    models: z.array(z.string()).nullable().default(null),
    weight: z.number().int().min(1).max(1000).default(1),
    poolId: z.string().default('default'),
  })
  .strict();
export type UpstreamSeed = z.infer<typeof upstreamSeed>;

function parseSecret(text: string): Buffer | null {
  const hex = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : null;
  const b64 = hex ? null : Buffer.from(text, 'base64');
  const key = hex ?? b64;
  return key && key.length === 32 ? key : null;
}

const schema = z
  .object({
    YUGONG_KAFKA_BROKERS: sharedEnv.YUGONG_KAFKA_BROKERS,
    YUGONG_REDIS_URL: sharedEnv.YUGONG_REDIS_URL,
    YUGONG_REDIS_REPLICAS: sharedEnv.YUGONG_REDIS_REPLICAS,
    YUGONG_CLICKHOUSE_URL: httpUrl('YUGONG_CLICKHOUSE_URL').optional(),
    YUGONG_CLICKHOUSE_DATABASE: sharedEnv.YUGONG_CLICKHOUSE_DATABASE,
    YUGONG_PROXY_PORT: portVariable(18080),
    YUGONG_PROXY_HOST: z.string().default('127.0.0.1'),
    /** Whether a proxy node serves the control plane's APIs too (off: a data-plane node only; run control/main.js for them). */
    YUGONG_CONTROL_API: z.enum(['on', 'off']).default('on'),
    /** Where the control plane's own process listens. */
    YUGONG_CONTROL_PORT: portVariable(18085),
    /** The base URL clients should use; named in 401 messages. */
    YUGONG_PUBLIC_URL: httpUrl('YUGONG_PUBLIC_URL').optional(),
    YUGONG_ADMIN_TOKEN: sharedEnv.YUGONG_ADMIN_TOKEN,
    /** 32 bytes (hex or base64) encrypting upstream keys at rest. */
    YUGONG_SECRET_KEY: z
      .string()
      .min(32, 'YUGONG_SECRET_KEY must be 32 bytes as hex (64 chars) or base64 (44 chars)')
      .transform((v, ctx) => {
        const key = parseSecret(v);
        if (key) return key;
        ctx.addIssue({ code: 'custom', message: 'must decode to exactly 32 bytes (hex or base64)' });
        return z.NEVER;
      }),
    /** JSON array of upstream keys to add to the pool at start (if not there yet). */
    YUGONG_UPSTREAMS: z
      .string()
      .default('[]')
      .transform((v, ctx): UpstreamSeed[] => {
        let json: unknown;
        try {
          json = JSON.parse(v);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'not JSON (expected an array of {baseUrl, key, organization, models, weight})' });
          return z.NEVER;
        }
        const parsed = z.array(upstreamSeed).safeParse(json);
        if (parsed.success) return parsed.data;
        ctx.addIssue({ code: 'custom', message: `${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` });
        return z.NEVER;
      }),
    /** Upstreams on loopback, private or link-local addresses (a local model server, the demo's mock): refused unless allowed. */
    YUGONG_ALLOW_PRIVATE_UPSTREAMS: z.enum(['true', 'false']).default('false'),
    /** Serve only these upstream pools (comma-separated); all pools when unset. */
    YUGONG_POOL_IDS: z
      .string()
      .regex(/^[A-Za-z0-9_,-]*$/)
      .default(''),
    YUGONG_NODE_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .default(`${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)),
    YUGONG_LOG_LEVEL: sharedEnv.YUGONG_LOG_LEVEL,
    YUGONG_MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(32 * 1024 * 1024),
    /** Overall deadline of one client request across every upstream attempt. */
    YUGONG_REQUEST_DEADLINE_MS: z.coerce.number().int().min(1000).default(600_000),
    /** How long an upstream may take to start answering before the attempt is retried. */
    YUGONG_UPSTREAM_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
    YUGONG_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(4),
    /** Holds expire after this long if no settlement arrives (a crashed node's requests). */
    YUGONG_HOLD_TTL_MS: z.coerce
      .number()
      .int()
      .min(10_000)
      .default(15 * 60_000),
    /**
     * How long a node admits in memory under one lease of an account's funds and windows before
     * it gives back what it did not use; 0 decides every request in Redis.
     */
    YUGONG_ADMISSION_LEASE_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
    /** Completion tokens assumed for a hold when the request sets no max_tokens. */
    YUGONG_DEFAULT_HOLD_COMPLETION_TOKENS: z.coerce.number().int().min(1).default(1024),
    YUGONG_SPOOL_DIR: z.string().default('.yugong/spool'),
    YUGONG_SPOOL_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(512 * 1024 * 1024),
    /** How often keys disabled for invalid_api_key or insufficient_quota are probed. */
    YUGONG_PROBE_INTERVAL_MS: z.coerce.number().int().min(1000).default(300_000),
    YUGONG_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
    YUGONG_TRUSTED_PROXIES: sharedEnv.YUGONG_TRUSTED_PROXIES,
    /** How long a client may take to send a request's headers, and the whole request with its body. */
    YUGONG_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30_000),
    YUGONG_REQUEST_BODY_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
    /** Open connections one client address may hold (a trusted proxy's are not capped). */
    YUGONG_MAX_CONNECTIONS_PER_IP: z.coerce.number().int().min(1).default(256),
  })
  .superRefine((c, ctx) => {
    if (c.YUGONG_ALLOW_PRIVATE_UPSTREAMS === 'true') return;
    for (const u of c.YUGONG_UPSTREAMS) {
      const why = privateTarget(u.baseUrl);
      if (why) ctx.addIssue({ code: 'custom', path: ['YUGONG_UPSTREAMS'], message: `${why}; set YUGONG_ALLOW_PRIVATE_UPSTREAMS=true to allow it` });
    }
  })
  .transform((c) => ({
    kafkaBrokers: c.YUGONG_KAFKA_BROKERS,
    redisUrl: c.YUGONG_REDIS_URL,
    /** Replicas that hold an admission's hold or lease before the request goes upstream. */
    redisReplicas: c.YUGONG_REDIS_REPLICAS,
    clickhouseUrl: c.YUGONG_CLICKHOUSE_URL ?? null,
    clickhouseDatabase: c.YUGONG_CLICKHOUSE_DATABASE,
    port: c.YUGONG_PROXY_PORT,
    host: c.YUGONG_PROXY_HOST,
    controlApi: c.YUGONG_CONTROL_API === 'on',
    controlPort: c.YUGONG_CONTROL_PORT,
    publicUrl: c.YUGONG_PUBLIC_URL ?? `http://${c.YUGONG_PROXY_HOST}:${c.YUGONG_PROXY_PORT}`,
    adminToken: c.YUGONG_ADMIN_TOKEN,
    secretKey: c.YUGONG_SECRET_KEY,
    upstreams: c.YUGONG_UPSTREAMS,
    allowPrivateUpstreams: c.YUGONG_ALLOW_PRIVATE_UPSTREAMS === 'true',
    poolIds: c.YUGONG_POOL_IDS ? c.YUGONG_POOL_IDS.split(',').filter(Boolean) : null,
    nodeId: c.YUGONG_NODE_ID,
    logLevel: c.YUGONG_LOG_LEVEL,
    maxBodyBytes: c.YUGONG_MAX_BODY_BYTES,
    requestDeadlineMs: c.YUGONG_REQUEST_DEADLINE_MS,
    upstreamHeadersTimeoutMs: c.YUGONG_UPSTREAM_HEADERS_TIMEOUT_MS,
    maxAttempts: c.YUGONG_MAX_ATTEMPTS,
    holdTtlMs: c.YUGONG_HOLD_TTL_MS,
    admissionLeaseMs: c.YUGONG_ADMISSION_LEASE_MS,
    defaultHoldCompletionTokens: c.YUGONG_DEFAULT_HOLD_COMPLETION_TOKENS,
    spoolDir: c.YUGONG_SPOOL_DIR,
    spoolMaxBytes: c.YUGONG_SPOOL_MAX_BYTES,
    shutdownGraceMs: c.YUGONG_SHUTDOWN_GRACE_MS,
    probeIntervalMs: c.YUGONG_PROBE_INTERVAL_MS,
    trustedProxies: c.YUGONG_TRUSTED_PROXIES,
    headersTimeoutMs: c.YUGONG_HEADERS_TIMEOUT_MS,
    requestBodyTimeoutMs: c.YUGONG_REQUEST_BODY_TIMEOUT_MS,
    maxConnectionsPerIp: c.YUGONG_MAX_CONNECTIONS_PER_IP,
  }));

export type ProxyConfig = z.output<typeof schema>;

/** Parsed and validated once, at start; every problem is named with its variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  return parseEnv(schema, env);
}
