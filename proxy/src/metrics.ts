import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ProxyMetrics {
  registry: Registry;
  /** Per-request recorders. Each keeps its labelled children: prom-client would otherwise
   *  sort and hash a label object on every call, several times per request. */
  request(endpoint: string, status: number): void;
  latency(endpoint: string, stream: boolean, seconds: number): void;
  ttft(endpoint: string, seconds: number): void;
  attempt(outcome: string): void;
  poolKeys: Gauge<'state'>;
  spoolBytes: Gauge;
  spoolCorruptLines: Counter;
  eventsFailed: Counter;
  unhandledRejections: Counter;
}

/** A labelled child per distinct label values, made on first use. */
function children<T>(make: (values: string[]) => T): (...values: string[]) => T {
  const made = new Map<string, T>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = made.get(key);
    if (!child) {
      child = make(values);
      made.set(key, child);
    }
    return child;
  };
}

export function createMetrics(): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'yugong_proxy_' });
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  const requests = new Counter({ name: 'yugong_proxy_requests_total', help: 'Client requests by endpoint and HTTP status', labelNames: ['endpoint', 'status'], registers: [registry] });
  const latency = new Histogram({ name: 'yugong_proxy_request_seconds', help: 'Client request latency', labelNames: ['endpoint', 'stream'], buckets, registers: [registry] });
  const ttft = new Histogram({ name: 'yugong_proxy_ttft_seconds', help: 'Time to first token of streams', labelNames: ['endpoint'], buckets, registers: [registry] });
  const attempts = new Counter({ name: 'yugong_proxy_upstream_attempts_total', help: 'Upstream attempts by outcome', labelNames: ['outcome'], registers: [registry] });
  const requestOf = children(([endpoint, status]) => requests.labels({ endpoint, status }));
  const latencyOf = children(([endpoint, stream]) => latency.labels({ endpoint, stream }));
  const ttftOf = children(([endpoint]) => ttft.labels({ endpoint }));
  const attemptOf = children(([outcome]) => attempts.labels({ outcome }));
  return {
    registry,
    request: (endpoint, status) => requestOf(endpoint, String(status)).inc(),
    latency: (endpoint, stream, seconds) => latencyOf(endpoint, String(stream)).observe(seconds),
    ttft: (endpoint, seconds) => ttftOf(endpoint).observe(seconds),
    attempt: (outcome) => attemptOf(outcome).inc(),
    poolKeys: new Gauge({ name: 'yugong_proxy_pool_keys', help: 'Upstream keys by state', labelNames: ['state'], registers: [registry] }),
    spoolBytes: new Gauge({ name: 'yugong_proxy_spool_bytes', help: 'Bytes of journaled events Kafka has not acknowledged (the local spool)', registers: [registry] }),
    spoolCorruptLines: new Counter({ name: 'yugong_proxy_spool_corrupt_lines_total', help: 'Journal lines that were not events (a torn write) and were set aside', registers: [registry] }),
    eventsFailed: new Counter({ name: 'yugong_proxy_events_failed_total', help: 'Usage events that could be neither sent nor spooled', registers: [registry] }),
    unhandledRejections: new Counter({ name: 'yugong_proxy_unhandled_rejections_total', help: 'Promise rejections no code awaited (each is a bug; the process kept serving)', registers: [registry] }),
  };
}
