import { accountId as accountIdSchema } from '@yugong/schemas';

export type Param<T> = { ok: true; value: T } | { ok: false; param: string; message: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** A UTC day "YYYY-MM-DD" that really exists (2026-02-30 does not). */
export function parseDay(param: string, text: unknown): Param<Date> {
  if (typeof text !== 'string' || !DATE.test(text)) return { ok: false, param, message: `'${param}' must be a date as YYYY-MM-DD` };
  const d = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) return { ok: false, param, message: `'${param}' is not a real date: ${text}` };
  return { ok: true, value: d };
}

/** [from, to] inclusive UTC days; at most `maxDays` long and never reversed. */
export function parseRange(query: Record<string, unknown>, maxDays = 3660): Param<{ from: Date; to: Date }> {
  const from = parseDay('from', query.from);
  if (!from.ok) return from;
  const to = parseDay('to', query.to);
  if (!to.ok) return to;
  if (to.value < from.value) return { ok: false, param: 'to', message: "'to' is before 'from'" };
  if ((to.value.getTime() - from.value.getTime()) / DAY_MS + 1 > maxDays) return { ok: false, param: 'to', message: `the range is longer than ${maxDays} days` };
  return { ok: true, value: { from: from.value, to: to.value } };
}

export function parseAccount(text: unknown, param = 'account_id'): Param<string | null> {
  if (text === undefined) return { ok: true, value: null };
  const r = accountIdSchema.safeParse(text);
  return r.success ? { ok: true, value: r.data } : { ok: false, param, message: `'${param}' must be an account id (segments of a-z, 0-9, _ and -, joined by '.')` };
}

export function parseChoice<T extends string>(param: string, text: unknown, choices: readonly T[], fallback: T): Param<T> {
  if (text === undefined) return { ok: true, value: fallback };
  return typeof text === 'string' && (choices as readonly string[]).includes(text) ? { ok: true, value: text as T } : { ok: false, param, message: `'${param}' must be one of: ${choices.join(', ')}` };
}

export function parseLimit(text: unknown, fallback: number, max: number): Param<number> {
  if (text === undefined) return { ok: true, value: fallback };
  const n = typeof text === 'string' && /^\d{1,7}$/.test(text) ? Number(text) : NaN;
  return n >= 1 && n <= max ? { ok: true, value: n } : { ok: false, param: 'limit', message: `'limit' must be an integer from 1 to ${max}` };
}

/** Optional filters: a model name, a key id, a status; anything else in them is refused. */
export function parseFilter(param: string, text: unknown, pattern: RegExp): Param<string | null> {
  if (text === undefined) return { ok: true, value: null };
  return typeof text === 'string' && pattern.test(text) ? { ok: true, value: text } : { ok: false, param, message: `'${param}' is not a valid value` };
}

export const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
export const KEY_ID = /^key_[A-Za-z0-9_-]{1,64}$/;

/** Keyset cursor over (time, event_id), newest first: opaque to clients, checked strictly. */
export interface Cursor {
  time: number;
  eventId: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.time, c.eventId])).toString('base64url');
}

export function parseCursor(text: unknown): Param<Cursor | null> {
  if (text === undefined) return { ok: true, value: null };
  const bad = { ok: false as const, param: 'cursor', message: "'cursor' must be the next_cursor of a previous page" };
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]{1,400}$/.test(text)) return bad;
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 2) return bad;
    const [time, eventId] = v as unknown[];
    if (!Number.isSafeInteger(time) || (time as number) < 0 || typeof eventId !== 'string' || !/^[A-Za-z0-9:_.-]{1,200}$/.test(eventId)) return bad;
    return { ok: true, value: { time: time as number, eventId } };
  } catch {
    return bad;
  }
}
