import { cidrContains, parseCidr, type ClientKey } from '@yugong/schemas';
import { modelAllowed } from '@yugong/schemas';
import type { KeySettings, ServiceError } from './service.js';

/** A key's restrictions; null in a field means unrestricted (expiry in ms since the epoch). */
export type KeyLimits = Pick<ClientKey, 'models' | 'rpm' | 'tpm' | 'ipAllowlist' | 'origins' | 'expiresAt'>;

function modelCovered(allowed: readonly string[], entry: string): boolean {
  if (!entry.endsWith('*')) return modelAllowed(allowed, entry);
  const prefix = entry.slice(0, -1);
  return allowed.some((a) => a === '*' || (a.endsWith('*') && prefix.startsWith(a.slice(0, -1))));
}

function rangeCovered(allowed: readonly string[], entry: string): boolean {
  const inner = parseCidr(entry);
  if (!inner) return false;
  return allowed.some((a) => {
    const outer = parseCidr(a);
    return outer !== null && outer.family === inner.family && outer.bits <= inner.bits && cidrContains(outer, inner);
  });
}

type Field = 'models' | 'rpm' | 'tpm' | 'ip_allowlist' | 'origins' | 'expires_at';
type Bounded = { ok: true; settings: KeySettings } | ServiceError;

const beyond = (param: Field, what: string): ServiceError => ({
  ok: false,
  status: 403,
  code: 'key_limits_exceeded',
  param,
  message: `A key can create keys only within its own limits: ${what}. Leave '${param}' out to inherit this key's own.`,
});

/**
 * The settings of a key that `creator` asks for, bounded by the creator's own limits: what
 * the request leaves open inherits the creator's restriction, and what would reach further
 * is refused. A key can therefore never mint a key that does more than it may itself.
 */
export function boundKeySettings(creator: KeyLimits, asked: KeySettings): Bounded {
  const s: KeySettings = { ...asked, limits: { ...asked.limits } };
  if (creator.models) {
    const wider = s.models?.find((m) => !modelCovered(creator.models ?? [], m));
    if (wider !== undefined) return beyond('models', `this key may not use '${wider}'`);
    s.models ??= creator.models;
  }
  for (const [field, own] of [
    ['rpm', creator.rpm],
    ['tpm', creator.tpm],
  ] as const) {
    if (own === null) continue;
    const want = s.limits[field];
    if (want !== null && want > own) return beyond(field, `'${field}' ${want} is above this key's ${own}`);
    s.limits[field] = want ?? own;
  }
  if (creator.ipAllowlist) {
    const wider = s.ipAllowlist?.find((r) => !rangeCovered(creator.ipAllowlist ?? [], r));
    if (wider !== undefined) return beyond('ip_allowlist', `'${wider}' is outside this key's IP allowlist`);
    s.ipAllowlist ??= creator.ipAllowlist;
  }
  if (creator.origins) {
    const wider = s.origins?.find((o) => !(creator.origins ?? []).includes(o));
    if (wider !== undefined) return beyond('origins', `the origin '${wider}' is not among this key's`);
    s.origins ??= creator.origins;
  }
  if (creator.expiresAt !== null) {
    const own = new Date(creator.expiresAt).toISOString();
    if (s.expiresAt !== null && Date.parse(s.expiresAt) > creator.expiresAt) return beyond('expires_at', `it would expire after this key (${own})`);
    s.expiresAt ??= own;
  }
  return { ok: true, settings: s };
}

/** A key whose reach is within `creator`'s: one that `creator` could have created itself. */
export function keyWithin(creator: KeyLimits, target: KeyLimits): boolean {
  const asked: KeySettings = {
    name: '',
    models: target.models,
    limits: { rpm: target.rpm, tpm: target.tpm },
    ipAllowlist: target.ipAllowlist,
    origins: target.origins,
    expiresAt: target.expiresAt === null ? null : new Date(target.expiresAt).toISOString(),
  };
  const r = boundKeySettings(creator, asked);
  if (!r.ok) return false;
  // Inheriting would have narrowed the target: it reaches where the creator does not.
  return JSON.stringify(r.settings) === JSON.stringify(asked);
}
