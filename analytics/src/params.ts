import { accountId as accountIdSchema } from '@yugong/schemas';

export type Param<T> = { ok: true; value: T } | { ok: false; param: string; message: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A UTC day "YYYY-MM-DD" that really exists (2026-02-30 does not). */
export function parseDay(param: string, text: unknown): Param<Date> {
  if (typeof text !== 'string' || !DATE.test(text)) return { ok: false, param, message: `'${param}' must be a date as YYYY-MM-DD` };
  const d = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) return { ok: false, param, message: `'${param}' is not a real date: ${text}` };
  return { ok: true, value: d };
}

/** [from, to] inclusive days; at most `maxDays` long and never reversed. */
export function parseRange(query: Record<string, unknown>, maxDays = 3660): Param<{ from: Date; to: Date }> {
  const from = parseDay('from', query.from);
  if (!from.ok) return from;
  const to = parseDay('to', query.to);
  if (!to.ok) return to;
  if (to.value < from.value) return { ok: false, param: 'to', message: "'to' is before 'from'" };
  if ((to.value.getTime() - from.value.getTime()) / 86_400_000 > maxDays) return { ok: false, param: 'to', message: `the range is longer than ${maxDays} days` };
  return { ok: true, value: { from: from.value, to: to.value } };
}

export function parseAccount(text: unknown): Param<string> {
  const r = accountIdSchema.safeParse(text);
  return r.success ? { ok: true, value: r.data } : { ok: false, param: 'account_id', message: "'account_id' must be an account id (a-z 0-9 _ -)" };
}
