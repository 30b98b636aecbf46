import { createServer, type Server } from 'node:http';
import { capConnectionsPerAddress } from './http/connections.js';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { createAuthenticator, decodeNotice, decodeUpstreamKey, encodeNotice, FailedAuthLimiter, makeEvent, redisKeys, type RedisClient } from '@yugong/schemas';
import { createAdmissionScripts } from './admission/admit.js';
import { createAdmitter, DEFAULT_LEASES } from './admission/leases.js';
import { sendApiError } from './admin/inputs.js';
import { adminRouter } from './admin/router.js';
import { AccountsService, upstreamKeyId } from './admin/service.js';
import { Projections } from './auth/projections.js';
import type { ProxyConfig } from './config.js';
import { createEventSink, type EventSink } from './events/sink.js';
import { isApiPath } from './http/endpoints.js';
import { clientErrors, sendError } from './errors.js';
import { createApiHandler } from './http/handler.js';
import { createMetrics, type ProxyMetrics } from './metrics.js';
import { decryptSecret, encryptSecret } from './pool/crypto.js';
import { UpstreamPool } from './pool/pool.js';
import { startProber, type Prober } from './pool/probe.js';
import { PriceBook } from './prices.js';
import { selfServiceRouter } from './self-service/router.js';
import { createForwarder } from './upstream/forward.js';

export interface ProxyDeps {
  config: ProxyConfig;
  /** Commands. */
  redis: RedisClient;
  /** A second connection, used only to subscribe to projection changes. */
  subscriber: RedisClient;
  producer: Producer;
  /** For the usage history of /dashboard/billing/usage; that endpoint answers 503 without it. */
  clickhouse?: ClickHouseClient | null;
  log: Logger;
}

export interface Proxy {
  server: Server;
  pool: UpstreamPool;
  sink: EventSink;
  metrics: ProxyMetrics;
  service: AccountsService;
  prober: Prober;
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, lets in-flight requests finish up to the grace period, flushes events. */
  close(): Promise<void>;
}

function ignoreSocketError(): void {
  // The client is gone; the request's own close handling records the outcome.
}

export async function createProxy(deps: ProxyDeps): Promise<Proxy> {
  const { config, redis, subscriber, producer, log } = deps;
  const metrics = createMetrics();
  const sink = createEventSink({ producer, spoolDir: config.spoolDir, spoolMaxBytes: config.spoolMaxBytes, log, onSpoolChange: (b) => metrics.spoolBytes.set(b) });
  const projections = new Projections(redis);
  const prices = new PriceBook(redis);
  await prices.load(sink, config.nodeId);
  const pool = new UpstreamPool((change) => {
    void redis.publish(redisKeys.changes(), encodeNotice({ type: 'upstream-health', from: config.nodeId, change })).catch(() => undefined);
  });
  const service = new AccountsService(redis, sink, config.nodeId, config.secretKey);
  const admitter = createAdmitter({ scripts: createAdmissionScripts(redis, config.redisReplicas, log), nodeId: config.nodeId, leases: { ...DEFAULT_LEASES, windowMs: config.admissionLeaseMs }, log });

  async function loadUpstream(only?: string): Promise<void> {
    const entries = only
      ? [[only, await redis.hget(redisKeys.upstreamKeys(), only)] as const]
      : Object.entries(await redis.hgetall(redisKeys.upstreamKeys()));
    for (const [id, raw] of entries) {
      const p = decodeUpstreamKey(raw);
      if (!p) {
        pool.remove(id);
        continue;
      }
      if (config.poolIds && !config.poolIds.includes(p.poolId)) continue;
      let secret: string;
      try {
        secret = decryptSecret(config.secretKey, p.encryptedKey);
      } catch {
        log.error({ keyId: id }, 'cannot decrypt upstream key: was YUGONG_SECRET_KEY changed?');
        continue;
      }
      pool.upsert({ id, poolId: p.poolId, baseUrl: p.baseUrl, organization: p.organization, models: p.models, weight: p.weight, secret, status: p.status === 'active' ? 'active' : 'disabled', reason: p.reason });
    }
    const keys = pool.all();
    metrics.poolKeys.set({ state: 'active' }, keys.filter((k) => k.status === 'active').length);
    metrics.poolKeys.set({ state: 'disabled' }, keys.filter((k) => k.status !== 'active').length);
  }

  subscriber.on('message', (_channel: string, message: string) => {
    const n = decodeNotice(message);
    if (!n) return;
    if (n.type === 'apikey') {
      // A key this node has not read lately has no lease here either.
      const keyId = projections.forgetKey(n.hash);
      if (keyId) admitter.forgetKey(keyId);
    } else if (n.type === 'account') {
      projections.forgetAccount(n.accountId);
      admitter.forgetAccount(n.accountId);
    } else if (n.type === 'upstream') void loadUpstream(n.keyId).catch((err: unknown) => log.error({ err }, 'upstream reload failed'));
    else if (n.type === 'prices') void prices.reload(n.version).catch((err: unknown) => log.error({ err }, 'price reload failed'));
    else if (n.type === 'upstream-health' && n.from !== config.nodeId) pool.applyRemote(n.change);
  });
  // A lost subscription may have missed notices: forget everything cached when it comes back.
  subscriber.on('ready', () => {
    projections.forgetAll();
    admitter.forgetAll();
  });
  await subscriber.subscribe(redisKeys.changes());
  await loadUpstream();

  // Keys from the configuration join the pool now and are published for the other nodes.
  for (const seed of config.upstreams) {
    const id = upstreamKeyId(seed.baseUrl, seed.key);
    if (pool.get(id)) continue;
    pool.upsert({ id, poolId: seed.poolId, baseUrl: seed.baseUrl, organization: seed.organization, models: seed.models, weight: seed.weight, secret: seed.key, status: 'active', reason: '' });
    await sink.emit(makeEvent('upstream.key.added', {
      id: `upstream:${id}:added`, source: config.nodeId, accountPath: [],
      data: { keyId: id, poolId: seed.poolId, baseUrl: seed.baseUrl, organization: seed.organization, models: seed.models, weight: seed.weight, encryptedKey: encryptSecret(config.secretKey, seed.key) },
    }));
  }

  const forwarder = createForwarder(
    pool,
    { maxAttempts: config.maxAttempts, headersTimeoutMs: config.upstreamHeadersTimeoutMs, baseDelayMs: 50, maxDelayMs: 2_000, maxCooldownWaitMs: 10_000 },
    {
      onDisable(key, reason) {
        log.warn({ keyId: key.id, reason }, 'upstream key disabled');
        void sink.emit(makeEvent('upstream.key.disabled', { id: `upstream:${key.id}:disabled:${Date.now()}`, source: config.nodeId, accountPath: [], data: { keyId: key.id, reason } }));
      },
    },
  );

  const prober = startProber({
    pool, redis, log, intervalMs: config.probeIntervalMs,
    onWorking: async (keyId) => {
      pool.upsert({ ...(pool.get(keyId) as NonNullable<ReturnType<typeof pool.get>>), status: 'active', reason: '' });
      await sink.emit(makeEvent('upstream.key.enabled', { id: `upstream:${keyId}:enabled:${Date.now()}`, source: config.nodeId, accountPath: [], data: { keyId, reason: 'probe: the key answers again' } }));
    },
  });

  let draining = false;
  let inFlight = 0;
  let closing: Promise<void> | null = null;
  const auth = createAuthenticator({ reader: projections, limiter: new FailedAuthLimiter(redis), trustedProxies: config.trustedProxies, publicUrl: config.publicUrl });
  const handle = createApiHandler({
    config, redis, clickhouse: deps.clickhouse ?? null, auth, admitter, forwarder, prices, sink, metrics, log, draining: () => draining,
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const redisOk = await redis.ping().then(() => true, () => false);
    const ready = !draining && redisOk && sink.accepting();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', redis: redisOk, spool_bytes: sink.spoolBytes(), draining, upstream_keys: pool.all().filter((k) => k.status === 'active').length });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use('/admin/v1', adminRouter(service, pool, prices, config.adminToken, (keyId) => loadUpstream(keyId)));
  app.use('/account/v1', selfServiceRouter(service, auth));
  app.use((req: Request, res: Response) => sendApiError(res, 404, 'unknown_url', `Invalid URL (${req.method} ${req.path}). The OpenAI API is under ${config.publicUrl}/v1.`));
  app.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return sendApiError(res, 400, null, 'We could not parse the JSON body of your request.');
    if (err.type === 'entity.too.large') return sendApiError(res, 413, 'request_too_large', 'The request body is too large.');
    // Express's own refusals of what a client sent (a malformed %-escape in the path, an unsupported charset).
    if (err.status !== undefined && err.status >= 400 && err.status < 500) return sendApiError(res, err.status, 'invalid_request', `The request could not be read: ${err.message}`);
    log.error({ err: err.message }, 'admin request failed');
    sendApiError(res, 500, null, 'The gateway had an error while processing your request.', null, 'server_error');
  });

  const server = createServer({
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestBodyTimeoutMs,
    // Node checks both timeouts on this interval: a slow client is cut within a second of its deadline.
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (!isApiPath(path)) {
      app(req, res);
      return;
    }
    inFlight++;
    res.once('close', () => inFlight--);
    // A write after the peer reset the socket is reported as an 'error' event; unheard, it would end the process.
    res.on('error', ignoreSocketError);
    handle(req, res, path, q >= 0 ? url.slice(q) : '').catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'request failed');
      sendError(res, clientErrors.internal());
    });
  });
  // Longer than the 60 s idle timeout of common load balancers, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  capConnectionsPerAddress(server, config.maxConnectionsPerIp, config.trustedProxies);

  return {
    server, pool, sink, metrics, service, prober,
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const a = server.address() as AddressInfo;
          resolve(`http://${host}:${a.port}`);
        });
      });
    },
    close() {
      closing ??= (async () => {
        draining = true;
        prober.stop();
        server.close();
        server.closeIdleConnections();
        const deadline = Date.now() + config.shutdownGraceMs;
        while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        server.closeAllConnections();
        // Before the sink closes: what the leases did not use goes back while Redis is reachable.
        await admitter.close();
        await sink.close();
        await forwarder.close();
      })();
      return closing;
    },
  };
}
