import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { createAuthenticator, encodeNotice, FailedAuthLimiter, makeEvent, redisKeys, type RedisClient } from '@yugong/schemas';
import { createAdmissionScripts } from './admission/admit.js';
import { createAdmitter, DEFAULT_LEASES } from './admission/leases.js';
import { Projections } from './auth/projections.js';
import type { ProxyConfig } from './config.js';
import { mountControlApi } from './control/routes.js';
import { accountsServiceFor } from './control/service.js';
import { isApiPath } from './endpoints/index.js';
import { clientErrors, sendError } from './errors.js';
import { createExpressApp } from './express-app.js';
import { followChanges } from './events/notices.js';
import { createEventSink, type EventSink } from './events/sink.js';
import { capConnectionsPerAddress } from './http/connections.js';
import { createApiHandler } from './http/handler.js';
import { createMetrics, type ProxyMetrics } from './metrics.js';
import { encryptSecret, upstreamKeyId } from './pool/crypto.js';
import { createUpstreamLoader } from './pool/load.js';
import { UpstreamPool } from './pool/pool.js';
import { startProber, type Prober } from './pool/probe.js';
import { PriceBook } from './prices.js';
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
  const sink = createEventSink({
    producer,
    spoolDir: config.spoolDir,
    owner: config.nodeId,
    spoolMaxBytes: config.spoolMaxBytes,
    log,
    onSpoolChange: (b) => metrics.spoolBytes.set(b),
    onCorruptLine: () => metrics.spoolCorruptLines.inc(),
  });
  const projections = new Projections(redis);
  const prices = new PriceBook(redis);
  await prices.load(sink, config.nodeId);
  const pool = new UpstreamPool((change) => {
    void redis.publish(redisKeys.changes(), encodeNotice({ type: 'upstream-health', from: config.nodeId, change })).catch(() => undefined);
  });
  const admitter = createAdmitter({ scripts: createAdmissionScripts(redis, config.redisReplicas, log), nodeId: config.nodeId, leases: { ...DEFAULT_LEASES, windowMs: config.admissionLeaseMs }, log });

  const loadUpstream = createUpstreamLoader({
    redis,
    pool,
    secretKey: config.secretKey,
    poolIds: config.poolIds,
    log,
    onLoaded(keys) {
      metrics.poolKeys.set({ state: 'active' }, keys.filter((k) => k.status === 'active').length);
      metrics.poolKeys.set({ state: 'disabled' }, keys.filter((k) => k.status !== 'active').length);
    },
  });
  await followChanges(subscriber, {
    notice(n) {
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
    },
    resync() {
      projections.forgetAll();
      admitter.forgetAll();
    },
  });
  await loadUpstream();

  // Keys from the configuration join the pool now and are published for the other nodes.
  for (const seed of config.upstreams) {
    const id = upstreamKeyId(seed.baseUrl, seed.key);
    if (pool.get(id)) continue;
    pool.upsert({ id, poolId: seed.poolId, baseUrl: seed.baseUrl, organization: seed.organization, models: seed.models, weight: seed.weight, secret: seed.key, status: 'active', reason: '' });
    await sink.emit(
      makeEvent('upstream.key.added', {
        id: `upstream:${id}:added`,
        source: config.nodeId,
        accountPath: [],
        data: {
          keyId: id,
          poolId: seed.poolId,
          baseUrl: seed.baseUrl,
          organization: seed.organization,
          models: seed.models,
          weight: seed.weight,
          encryptedKey: encryptSecret(config.secretKey, seed.key),
        },
      }),
    );
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
    pool,
    redis,
    log,
    intervalMs: config.probeIntervalMs,
    onWorking: async (keyId) => {
      pool.upsert({ ...(pool.get(keyId) as NonNullable<ReturnType<typeof pool.get>>), status: 'active', reason: '' });
      await sink.emit(
        makeEvent('upstream.key.enabled', { id: `upstream:${keyId}:enabled:${Date.now()}`, source: config.nodeId, accountPath: [], data: { keyId, reason: 'probe: the key answers again' } }),
      );
    },
  });

  let draining = false;
  let inFlight = 0;
  let closing: Promise<void> | null = null;
  const auth = createAuthenticator({ reader: projections, limiter: new FailedAuthLimiter(redis), trustedProxies: config.trustedProxies, publicUrl: config.publicUrl });
  const handle = createApiHandler({
    config,
    redis,
    clickhouse: deps.clickhouse ?? null,
    auth,
    admitter,
    forwarder,
    prices,
    sink,
    metrics,
    log,
    draining: () => draining,
  });

  const app = createExpressApp(config.publicUrl, log, (app) => {
    app.get('/readyz', async (_req, res) => {
      const redisOk = await redis.ping().then(
        () => true,
        () => false,
      );
      const ready = !draining && redisOk && sink.accepting();
      res
        .status(ready ? 200 : 503)
        .json({ status: ready ? 'ready' : 'not_ready', redis: redisOk, spool_bytes: sink.spoolBytes(), draining, upstream_keys: pool.all().filter((k) => k.status === 'active').length });
    });
    app.get('/metrics', async (_req, res) => {
      res.set('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
    });
    if (config.controlApi) {
      mountControlApi(app, {
        service: accountsServiceFor(redis, sink, config, log),
        auth,
        adminToken: config.adminToken,
        allowPrivateUpstreams: config.allowPrivateUpstreams,
        hooks: { upstreamKeys: () => pool.all(), upstreamChanged: loadUpstream, pricesPublished: async (version) => void (await prices.reload(version)) },
      });
    }
  });

  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestBodyTimeoutMs,
      // Node checks both timeouts on this interval: a slow client is cut within a second of its deadline.
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
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
    },
  );
  // Longer than the 60 s idle timeout of common load balancers, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  capConnectionsPerAddress(server, config.maxConnectionsPerIp, config.trustedProxies);

  return {
    server,
    pool,
    sink,
    metrics,
    prober,
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
