import { endpoints, requestStatuses, SCHEMA_VERSION, usageSources } from './enums.js';
import type { EventOf } from './events.js';
import { ACCOUNT_ID, isoTime } from './ids.js';

/**
 * A hand-written check of usage.recorded events, the bulk of the ledger's input: the same
 * rules as the zod schemas in events.ts, without building a copy of the event. It may only
 * be stricter than zod, never looser (a property test holds it to that, and another pins its
 * field lists to the schemas' own): whatever it does not accept goes through zod, which then
 * decides and names the problem.
 */

type Obj = Record<string, unknown>;

const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const NANO = /^-?\d{1,30}$/;

export const fastPathFields = {
  envelope: ['id', 'type', 'time', 'source', 'accountPath', 'schemaVersion', 'data'],
  usage: [
    'requestId',
    'apiKeyId',
    'endpoint',
    'model',
    'status',
    'httpStatus',
    'errorCode',
    'stream',
    'tokens',
    'images',
    'imageSize',
    'imageQuality',
    'audioMs',
    'speechCharacters',
    'usageSource',
    'costs',
    'listCostNano',
    'priceVersion',
    'holdId',
    'attempts',
    'upstreamKeyId',
    'upstreamOrg',
    'latencyMs',
    'ttftMs',
  ],
  tokens: ['prompt', 'cached', 'completion', 'reasoning', 'audioPrompt', 'audioCompletion', 'imagePrompt', 'imageCompletion'],
  attempt: ['upstreamKeyId', 'status', 'outcome', 'latencyMs', 'errorCode'],
} as const;

// Built on first use: events.ts imports this module before its own lists exist.
let sets: { endpoints: Set<unknown>; statuses: Set<unknown>; sources: Set<unknown>; outcomes: Set<unknown> } | null = null;
const lists = () =>
  (sets ??= {
    endpoints: new Set(endpoints),
    statuses: new Set(requestStatuses),
    sources: new Set(usageSources),
    outcomes: new Set(['ok', 'retryable', 'fatal', 'timeout', 'connect_error', 'cut']),
  });

const str = (v: unknown, min: number, max: number): boolean => typeof v === 'string' && v.length >= min && v.length <= max;
const strOrNull = (v: unknown, max: number): boolean => v === null || str(v, 0, max);
const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const httpStatus = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 599;
const matches = (v: unknown, re: RegExp): boolean => typeof v === 'string' && re.test(v);

/** Every index, holes included (Array.prototype.every skips holes). */
function each(a: unknown[], ok: (v: unknown) => boolean): boolean {
  for (let i = 0; i < a.length; i++) if (!ok(a[i])) return false;
  return true;
}

/** A plain object with exactly these keys. */
function exactly(v: unknown, keys: readonly string[]): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    n++;
  }
  if (n !== keys.length) return false;
  for (const k of keys) if (!Object.hasOwn(v, k)) return false;
  return true;
}

function tokens(v: unknown): boolean {
  if (!exactly(v, fastPathFields.tokens)) return false;
  for (const k of fastPathFields.tokens) if (!nonNeg(v[k])) return false;
  return true;
}

function attempt(v: unknown): boolean {
  return exactly(v, fastPathFields.attempt) && str(v.upstreamKeyId, 0, 64) && httpStatus(v.status) && lists().outcomes.has(v.outcome) && nonNeg(v.latencyMs) && strOrNull(v.errorCode, 100);
}

function usage(d: unknown, pathLength: number): boolean {
  if (!exactly(d, fastPathFields.usage)) return false;
  const costs = d.costs;
  const attempts = d.attempts;
  const l = lists();
  return (
    str(d.requestId, 1, 100) &&
    matches(d.apiKeyId, KEY_ID) &&
    l.endpoints.has(d.endpoint) &&
    str(d.model, 1, 200) &&
    l.statuses.has(d.status) &&
    httpStatus(d.httpStatus) &&
    strOrNull(d.errorCode, 100) &&
    typeof d.stream === 'boolean' &&
    tokens(d.tokens) &&
    nonNeg(d.images) &&
    strOrNull(d.imageSize, 20) &&
    strOrNull(d.imageQuality, 20) &&
    nonNeg(d.audioMs) &&
    nonNeg(d.speechCharacters) &&
    l.sources.has(d.usageSource) &&
    Array.isArray(costs) &&
    costs.length >= 1 &&
    costs.length <= 32 &&
    costs.length === pathLength &&
    each(costs, (c) => matches(c, NANO)) &&
    matches(d.listCostNano, NANO) &&
    str(d.priceVersion, 1, 100) &&
    strOrNull(d.holdId, 100) &&
    Array.isArray(attempts) &&
    attempts.length <= 20 &&
    each(attempts, attempt) &&
    strOrNull(d.upstreamKeyId, 64) &&
    strOrNull(d.upstreamOrg, 100) &&
    nonNeg(d.latencyMs) &&
    (d.ttftMs === null || nonNeg(d.ttftMs))
  );
}

/** True only for a usage.recorded event that the zod schemas accept as it is. */
export function isValidUsageEvent(e: unknown): e is EventOf<'usage.recorded'> {
  if (!exactly(e, fastPathFields.envelope) || e.type !== 'usage.recorded' || e.schemaVersion !== SCHEMA_VERSION) return false;
  const path = e.accountPath;
  return (
    str(e.id, 1, 200) &&
    str(e.source, 1, 100) &&
    Array.isArray(path) &&
    path.length <= 32 &&
    each(path, (a) => matches(a, ACCOUNT_ID)) &&
    usage(e.data, path.length) &&
    typeof e.time === 'string' &&
    isoTime.safeParse(e.time).success
  );
}
