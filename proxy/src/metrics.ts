import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ProxyMetrics {
  registry: Registry;
  requests: Counter<'endpoint' | 'status'>;
  latency: Histogram<'endpoint' | 'stream'>;
  ttft: Histogram<'endpoint'>;
  attempts: Counter<'outcome'>;
  poolKeys: Gauge<'state'>;
  spoolBytes: Gauge;
  eventsFailed: Counter;
}

export function createMetrics(): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'yugong_proxy_' });
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    registry,
    requests: new Counter({ name: 'yugong_proxy_requests_total', help: 'Client requests by endpoint and HTTP status', labelNames: ['endpoint', 'status'], registers: [registry] }),
    latency: new Histogram({ name: 'yugong_proxy_request_seconds', help: 'Client request latency', labelNames: ['endpoint', 'stream'], buckets, registers: [registry] }),
    ttft: new Histogram({ name: 'yugong_proxy_ttft_seconds', help: 'Time to first token of streams', labelNames: ['endpoint'], buckets, registers: [registry] }),
    attempts: new Counter({ name: 'yugong_proxy_upstream_attempts_total', help: 'Upstream attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    poolKeys: new Gauge({ name: 'yugong_proxy_pool_keys', help: 'Upstream keys by state', labelNames: ['state'], registers: [registry] }),
    spoolBytes: new Gauge({ name: 'yugong_proxy_spool_bytes', help: 'Bytes of events waiting in the local spool', registers: [registry] }),
    eventsFailed: new Counter({ name: 'yugong_proxy_events_failed_total', help: 'Usage events that could be neither sent nor spooled', registers: [registry] }),
  };
}
