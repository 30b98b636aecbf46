import type { Redis } from 'ioredis';
import { redisKeys } from '@yugong/schemas';

export interface ClientKey {
  keyId: string;
  accountId: string;
  root: string;
  /** root → … → the key's account. */
  path: string[];
  status: 'active' | 'revoked';
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  ipAllowlist: string[] | null;
  origins: string[] | null;
  expiresAt: number | null;
}

export interface AccountView {
  id: string;
  status: 'active' | 'disabled';
  multiplierPpm: number;
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  ipAllowlist: string[] | null;
  expiresAt: number | null;
}

const POSITIVE_TTL_MS = 60_000;
/** A key created a moment ago must work within a second, so misses are cached briefly. */
const NEGATIVE_TTL_MS = 500;

function num(v: string | undefined): number | null {
  return v === undefined || v === '' ? null : Number(v);
}
function list(v: string | undefined): string[] | null {
  return v ? (JSON.parse(v) as string[]) : null;
}
function time(v: string | undefined): number | null {
  return v ? Date.parse(v) : null;
}

interface Entry<T> {
  value: T | null;
  until: number;
}

/**
 * The proxy's in-memory view of client keys and accounts. Entries are dropped when the
 * ledger announces a change on the changes channel (so a revoke reaches every node within
 * a second), and expire anyway after a minute in case a notice was missed.
 */
export class Projections {
  private readonly keys = new Map<string, Entry<ClientKey>>();
  private readonly accounts = new Map<string, Entry<AccountView>>();

  constructor(private readonly redis: Redis) {}

  async clientKey(hash: string, now = Date.now()): Promise<ClientKey | null> {
    const hit = this.keys.get(hash);
    if (hit && hit.until > now) return hit.value;
    const h = await this.redis.hgetall(redisKeys.apiKey(hash));
    const value: ClientKey | null = h.keyId
      ? {
          keyId: h.keyId,
          accountId: h.accountId ?? '',
          root: h.root ?? '',
          path: list(h.path) ?? [],
          status: h.status === 'active' ? 'active' : 'revoked',
          models: list(h.models),
          rpm: num(h.rpm),
          tpm: num(h.tpm),
          ipAllowlist: list(h.ipAllowlist),
          origins: list(h.origins),
          expiresAt: time(h.expiresAt),
        }
      : null;
    this.keys.set(hash, { value, until: now + (value ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
    return value;
  }

  /** The accounts of a path, root first; null if one of them does not exist (yet). */
  async path(root: string, ids: string[], now = Date.now()): Promise<AccountView[] | null> {
    const out: AccountView[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const hit = this.accounts.get(id);
      if (!hit || hit.until <= now) missing.push(id);
    }
    if (missing.length) {
      const p = this.redis.pipeline();
      for (const id of missing) p.hmget(redisKeys.account(root, id), 'id', 'status', 'multiplierPpm', 'rpm', 'tpm', 'models', 'ipAllowlist', 'expiresAt');
      const results = (await p.exec()) ?? [];
      missing.forEach((id, i) => {
        const [err, fields] = results[i] ?? [];
        if (err) throw err;
        const [fid, status, ppm, rpm, tpm, models, ip, expires] = (fields as (string | null)[]).map((v) => v ?? undefined);
        const value: AccountView | null = fid
          ? { id, status: status === 'active' ? 'active' : 'disabled', multiplierPpm: Number(ppm ?? 1_000_000), rpm: num(rpm), tpm: num(tpm), models: list(models), ipAllowlist: list(ip), expiresAt: time(expires) }
          : null;
        this.accounts.set(id, { value, until: now + (value ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
      });
    }
    for (const id of ids) {
      const v = this.accounts.get(id)?.value;
      if (!v) return null;
      out.push(v);
    }
    return out;
  }

  forgetKey(hash: string): void {
    this.keys.delete(hash);
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
