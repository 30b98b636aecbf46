import type { Account } from './api.js';
import { currentLang } from './i18n.js';

/**
 * Numbers in the reader's locale. The language picks the words; the number and date style
 * follows the browser's own locale when it matches the language, so an en-GB reader sees
 * 23/11/2026 and a zh-CN reader sees 2026/11/23. Times are in the browser's time zone.
 */
function locale(): string {
  const lang = currentLang();
  const browser = navigator.language;
  return browser.toLowerCase().startsWith(lang === 'zh-CN' ? 'zh' : 'en') ? browser : lang;
}

/** Nano-USD as an exact decimal string: money is never a float, not even on screen. */
export function nanoToDecimal(nano: string | bigint): string {
  const n = BigInt(nano);
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/**
 * A dollar or more: cents, and up to four decimals so a balance is not rounded up to a
 * figure it does not have; below a dollar: four significant digits, so one request's cost
 * of a few millionths of a dollar is still visible.
 */
export function money(nano: string | bigint): string {
  const n = BigInt(nano);
  const abs = n < 0n ? -n : n;
  const digits: Intl.NumberFormatOptions = abs >= 1_000_000_000n || abs === 0n ? { minimumFractionDigits: 2, maximumFractionDigits: 4 } : { maximumSignificantDigits: 4 };
  // Truncated, never rounded up: a balance is not shown as more than it is.
  const fmt = new Intl.NumberFormat(locale(), { style: 'currency', currency: 'USD', roundingMode: 'trunc', ...digits });
  // Intl formats decimal strings exactly (no float on the way).
  return fmt.format(nanoToDecimal(nano) as unknown as number);
}

export function usdToNano(text: string): bigint {
  const m = /^(\d{1,12})(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) return 0n;
  return BigInt(m[1] ?? '0') * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

export function num(n: number | string): string {
  return new Intl.NumberFormat(locale()).format(Number(n));
}

/** ClickHouse DateTime text ("2026-11-23 08:05:00") is UTC. */
export function utc(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

export function dateTime(d: Date | string): string {
  const date = typeof d === 'string' ? (d.includes('T') ? new Date(d) : utc(d)) : d;
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'medium' }).format(date);
}

export function shortDay(day: string): string {
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(utc(`${day} 00:00:00`));
}

/** YYYY-MM-DD of a moment, in UTC (the analytics API's days). */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** YYYY-MM-DD of a moment in the browser's time zone (for date inputs). */
export function localDay(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** What an account may still spend: its credits and credit line (quota), less spending and open holds. */
export function availableNano(a: Account): bigint {
  return BigInt(a.credited_nano) + usdToNano(a.credit_limit_usd) - BigInt(a.spent_nano) - BigInt(a.held_nano) - BigInt(a.leased_nano ?? '0');
}
