import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { UpstreamPool } from './pool.js';
import type { RedisClient } from '@yugong/schemas';

/** Reasons a probe may lift: the key itself was refused and may have been fixed (rotated, topped up). */
const PROBED_REASONS = new Set(['invalid_api_key', 'insufficient_quota']);

export interface Prober {
  /** Probes every disabled key once; returns the ids found working again. */
  runOnce(): Promise<string[]>;
  stop(): void;
}

/**
 * What proves a disabled key works again. A key refused as invalid is asked upstream's
 * cheapest authenticated endpoint (GET /models). A key without quota is not proven by that:
 * OpenAI lists models for a key with no quota left. It is asked the cheapest request OpenAI
 * bills (one token of embeddings, 2 × 10⁻⁸ USD), which answers 429 insufficient_quota until the
 * organization has quota again.
 */
function proofOf(reason: string): { method: 'GET' | 'POST'; path: string; body?: string } {
  return reason === 'insufficient_quota' ? { method: 'POST', path: '/embeddings', body: JSON.stringify({ model: 'text-embedding-3-small', input: 'a' }) } : { method: 'GET', path: '/models' };
}

/**
 * Probes each disabled key every `YUGONG_PROBE_INTERVAL_MS` (see proofOf). A short Redis lock
 * per key makes one node probe it per interval, however many run.
 */
export function startProber(deps: { pool: UpstreamPool; redis: RedisClient; log: Logger; intervalMs: number; onWorking(keyId: string): Promise<void> }): Prober {
  async function probe(id: string): Promise<boolean> {
    const key = deps.pool.get(id);
    if (!key) return false;
    const url = new URL(key.baseUrl);
    const client = new Pool(url.origin, { connections: 1 });
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${key.secret}` };
      if (key.organization) headers['openai-organization'] = key.organization;
      const proof = proofOf(key.reason);
      if (proof.body) headers['content-type'] = 'application/json';
      const res = await client.request({ method: proof.method, path: `${url.pathname.replace(/\/+$/, '')}${proof.path}`, headers, body: proof.body, headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    } finally {
      await client.close();
    }
  }

  async function runOnce(): Promise<string[]> {
    const working: string[] = [];
    for (const k of deps.pool.all()) {
      if (k.status !== 'disabled' || !PROBED_REASONS.has(k.reason)) continue;
      const lock = await deps.redis.set(`yg:probe:${k.id}`, '1', 'PX', Math.max(1000, deps.intervalMs - 100), 'NX');
      if (lock !== 'OK') continue;
      if (await probe(k.id)) {
        deps.log.info({ keyId: k.id }, 'disabled upstream key works again: re-enabling');
        await deps.onWorking(k.id);
        working.push(k.id);
      }
    }
    return working;
  }

  const timer = setInterval(() => {
    void runOnce().catch((err: unknown) => deps.log.error({ err: (err as Error).message }, 'probe failed'));
  }, deps.intervalMs);
  timer.unref();
  return { runOnce, stop: () => clearInterval(timer) };
}
