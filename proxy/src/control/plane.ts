import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { createAuthenticator, FailedAuthLimiter, type RedisClient } from '@yugong/schemas';
import { Projections } from '../auth/projections.js';
import type { ProxyConfig } from '../config.js';
import { createExpressApp } from '../express-app.js';
import { followChanges } from '../events/notices.js';
import { createEventSink } from '../events/sink.js';
import { createUpstreamLoader } from '../pool/load.js';
import { UpstreamPool } from '../pool/pool.js';
import { mountControlApi } from './routes.js';
import { accountsServiceFor } from './service.js';

export interface ControlPlaneDeps {
  config: ProxyConfig;
  redis: RedisClient;
  /** A second connection, for the change notices. */
  subscriber: RedisClient;
  producer: Producer;
  log: Logger;
}

export interface ControlPlane {
  server: Server;
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting and sends the events it has buffered or spooled. */
  close(): Promise<void>;
}

/**
 * The control plane as a process of its own: the admin and self-service APIs, without the
 * data plane's pool of connections, admission or metering. Its writes are events, as a
 * proxy node's are; it follows the change notices to show the upstream pool's health as the
 * nodes report it.
 */
export async function createControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  const { config, redis, log } = deps;
  const sink = createEventSink({ producer: deps.producer, spoolDir: config.spoolDir, owner: config.nodeId, spoolMaxBytes: config.spoolMaxBytes, log });
  const projections = new Projections(redis);
  const pool = new UpstreamPool(() => undefined);
  const loadUpstream = createUpstreamLoader({ redis, pool, secretKey: config.secretKey, poolIds: null, log });
  await followChanges(deps.subscriber, {
    notice(n) {
      if (n.type === 'apikey') projections.forgetKey(n.hash);
      else if (n.type === 'account') projections.forgetAccount(n.accountId);
      else if (n.type === 'upstream') void loadUpstream(n.keyId).catch((err: unknown) => log.error({ err }, 'upstream reload failed'));
      else if (n.type === 'upstream-health') pool.applyRemote(n.change);
    },
    resync: () => projections.forgetAll(),
  });
  await loadUpstream();

  const app = createExpressApp(config.publicUrl, log, (app) =>
    mountControlApi(app, {
      service: accountsServiceFor(redis, sink, config, log),
      auth: createAuthenticator({ reader: projections, limiter: new FailedAuthLimiter(redis), trustedProxies: config.trustedProxies, publicUrl: config.publicUrl }),
      adminToken: config.adminToken,
      allowPrivateUpstreams: config.allowPrivateUpstreams,
      hooks: { upstreamKeys: () => pool.all(), upstreamChanged: loadUpstream, pricesPublished: async () => undefined },
    }),
  );
  const server = createServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestBodyTimeoutMs }, app);
  server.keepAliveTimeout = 65_000;

  let closing: Promise<void> | null = null;
  return {
    server,
    listen(port = config.controlPort, host = config.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`));
      });
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await sink.close();
      })();
      return closing;
    },
  };
}
