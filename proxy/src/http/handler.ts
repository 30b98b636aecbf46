import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import { corsAllowed, isDenial, type Authenticator } from '@yugong/schemas';
import { apiSuffix, billingRoute, meteredEndpoints, modelsRoute, type MeteredEndpoint, type ReadRoute } from '../endpoints/index.js';
import { clientErrors } from '../errors.js';
import { openCall } from './call.js';
import { serveMetered, type MeteredDeps } from './metered.js';

export interface HandlerDeps extends MeteredDeps {
  clickhouse: ClickHouseClient | null;
  auth: Authenticator;
  draining(): boolean;
}

type Route = { kind: 'metered'; endpoint: MeteredEndpoint } | { kind: 'read'; route: ReadRoute };

/**
 * The data plane's one entry: find the route, refuse what this node cannot serve now,
 * authenticate, then answer a free read (models, billing) or run a metered request.
 */
export function createApiHandler(deps: HandlerDeps) {
  const { metrics } = deps;
  const metered = new Map<string, Route>(meteredEndpoints.map((endpoint) => [endpoint.suffix, { kind: 'metered', endpoint }]));
  const reads = [modelsRoute(deps.prices), billingRoute(deps.redis, deps.clickhouse)].map((route) => ({ kind: 'read' as const, route }));

  function findRoute(suffix: string): Route | undefined {
    return metered.get(suffix) ?? reads.find((r) => r.route.matches(suffix));
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> {
    const call = openCall(req, res, metrics);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...call.headers,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'),
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const suffix = apiSuffix(path);
    const route = findRoute(suffix);
    call.label = route?.kind === 'metered' ? route.endpoint.name : (route?.route.label ?? 'unknown');
    if (!route) return call.fail(clientErrors.notFound(req.method ?? 'GET', path));
    if (req.method !== (route.kind === 'metered' ? route.endpoint.method : 'GET')) return call.fail(clientErrors.methodNotAllowed(req.method ?? '', path));
    if (deps.draining()) return call.fail(clientErrors.overloaded());
    if (!deps.sink.accepting()) return call.fail(clientErrors.spoolFull());

    const caller = await deps.auth.authenticate(req);
    if (isDenial(caller)) {
      // A page on an origin the key refuses must not read even the refusal.
      if (!corsAllowed(caller)) delete call.headers['access-control-allow-origin'];
      return call.fail(caller);
    }
    if (route.kind === 'metered') return serveMetered(deps, call, route.endpoint, caller, suffix + query);
    req.resume();
    const answer = await route.route.answer({ suffix, query: new URLSearchParams(query), key: caller.key, accounts: caller.accounts });
    if ('type' in answer) return call.fail(answer);
    call.json(answer.status, answer.body);
  };
}
