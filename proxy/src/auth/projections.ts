import { decodeClientKey, readAccountViews, redisKeys, type AccessReader, type AccountView, type ClientKey, type RedisClient } from '@yugong/schemas';

export type { AccountView, ClientKey } from '@yugong/schemas';

const POSITIVE_TTL_MS = 60_000;
/** A key created a moment ago must work within a second, so misses are cached briefly. */
const NEGATIVE_TTL_MS = 500;

interface Entry<T> {
  value: T | null;
  until: number;
}

/** Entries a projection keeps at most: past it, expired ones go, then the oldest. */
const MAX_ENTRIES = 50_000;

/** Keeps a map keyed by what clients send within MAX_ENTRIES (garbage keys are cached too, briefly). */
function bounded<T>(map: Map<string, Entry<T>>, now: number): void {
  if (map.size < MAX_ENTRIES) return;
  for (const [k, e] of map) if (e.until <= now) map.delete(k);
  for (const k of map.keys()) {
    if (map.size < MAX_ENTRIES * 0.9) break;
    map.delete(k);
  }
}

/**
 * The proxy's in-memory view of client keys and accounts. Entries are dropped when the
 * ledger announces a change on the changes channel (so a revoke reaches every node within
 * a second), and expire anyway after a minute in case a notice was missed.
 */
export class Projections implements AccessReader {
  private readonly keys = new Map<string, Entry<ClientKey>>();
  private readonly accounts = new Map<string, Entry<AccountView>>();

  constructor(private readonly redis: RedisClient) {}

  async clientKey(hash: string, now = Date.now()): Promise<ClientKey | null> {
    const hit = this.keys.get(hash);
    if (hit && hit.until > now) return hit.value;
    const value = decodeClientKey(await this.redis.hgetall(redisKeys.apiKey(hash)));
    bounded(this.keys, now);
    this.keys.set(hash, { value, until: now + (value ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
    return value;
  }

  async path(root: string, ids: readonly string[], now = Date.now()): Promise<AccountView[] | null> {
    const missing = ids.filter((id) => {
      const hit = this.accounts.get(id);
      return !hit || hit.until <= now;
    });
    if (missing.length) {
      const views = await readAccountViews(this.redis, root, missing);
      bounded(this.accounts, now);
      missing.forEach((id, i) => {
        const value = views[i] ?? null;
        this.accounts.set(id, { value, until: now + (value ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
      });
    }
    const out: AccountView[] = [];
    for (const id of ids) {
      const v = this.accounts.get(id)?.value;
      if (!v) return null;
      out.push(v);
    }
    return out;
  }

  /** Returns the id of the key forgotten, when it was known here. */
  forgetKey(hash: string): string | null {
    const id = this.keys.get(hash)?.value?.keyId ?? null;
    this.keys.delete(hash);
    return id;
  }

  forgetAccount(id: string): void {
    this.accounts.delete(id);
  }

  /** After a lost subscription nothing cached can be trusted. */
  forgetAll(): void {
    this.keys.clear();
    this.accounts.clear();
  }
}
