/**
 * Money is an integer number of nano-USD (1e-9 USD). OpenAI's "$X per 1M tokens" is exactly
 * X*1000 nano-USD per token, so token costs need no rounding; multipliers are integer
 * parts-per-million and are rounded half up once, at the end.
 */
export const NANO_PER_USD = 1_000_000_000n;
export const PPM = 1_000_000n;

export type Nano = bigint;

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * Scales a decimal string (no exponent) by 10^scale into an integer, rounding half up
 * (away from zero) on digits beyond the scale. Exact: never goes through a float.
 */
export function scaleDecimal(text: string, scale: number): bigint {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new RangeError(`not a decimal number: ${JSON.stringify(text)}`);
  const negative = m[1] === '-';
  const whole = m[2] ?? '0';
  const fraction = m[3] ?? '';
  const kept = fraction.slice(0, scale).padEnd(scale, '0');
  let value = BigInt(whole) * 10n ** BigInt(scale) + BigInt(kept || '0');
  const next = fraction.charCodeAt(scale);
  if (!Number.isNaN(next) && next >= 53 /* '5' */) value += 1n;
  return negative ? -value : value;
}

/** A JS number written as the shortest decimal that round-trips, without exponent. */
export function numberToDecimal(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
  const text = String(value);
  if (!/e/i.test(text)) return text;
  // Exponent form only appears for tiny or huge values; toFixed(20) is exact enough for
  // prices (they have at most a handful of significant digits) and never loses the sign.
  return value.toFixed(20).replace(/\.?0+$/, '');
}

/** "12.345" USD → nano-USD. Rejects more than nine decimals rather than rounding money. */
export function parseUsd(text: string): Nano {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new RangeError(`not a USD amount: ${JSON.stringify(text)}`);
  if ((m[3] ?? '').length > 9) throw new RangeError(`USD amount has more than 9 decimals: ${text}`);
  return scaleDecimal(text, 9);
}

/** nano-USD → "12.345000000" style decimal, trimmed to `decimals` places (rounded half up). */
export function formatUsd(nano: Nano, decimals = 9): string {
  if (decimals < 0 || decimals > 9) throw new RangeError('decimals must be 0..9');
  const negative = nano < 0n;
  let abs = negative ? -nano : nano;
  const drop = 10n ** BigInt(9 - decimals);
  abs = (abs + drop / 2n) / drop;
  const unit = 10n ** BigInt(decimals);
  const whole = abs / unit;
  const frac = (abs % unit).toString().padStart(decimals, '0');
  return `${negative && abs !== 0n ? '-' : ''}${whole}${decimals > 0 ? `.${frac}` : ''}`;
}

/** Integer division rounding half up (away from zero for negatives, symmetric). */
export function divRoundHalfUp(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const abs = negative ? -numerator : numerator;
  const q = (abs + denominator / 2n) / denominator;
  return negative ? -q : q;
}

/** amount × (ppm / 1e6), rounded half up once. */
export function applyPpm(amount: Nano, ppm: number | bigint): Nano {
  const p = BigInt(ppm);
  if (p < 0n) throw new RangeError('a multiplier cannot be negative');
  return divRoundHalfUp(amount * p, PPM);
}

/** "1.5" → 1_500_000 ppm, exact; rejects more than six decimals. */
export function parseMultiplier(text: string): number {
  const m = DECIMAL.exec(text.trim());
  if (!m || m[1] === '-') throw new RangeError(`not a multiplier: ${JSON.stringify(text)}`);
  if ((m[3] ?? '').length > 6) throw new RangeError(`multiplier has more than 6 decimals: ${text}`);
  const ppm = scaleDecimal(text, 6);
  if (ppm > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('multiplier too large');
  return Number(ppm);
}

/** OpenAI's billing endpoints speak in cents (floats); this is the only place a float appears. */
export function nanoToCents(nano: Nano): number {
  return Number(nano) / 1e7;
}

/**
 * What each account of a path pays for a request of list price `list`: the root pays list ×
 * its multiplier, each child its parent's price × its own multiplier. Every account's cost
 * is computed from the list price and the product of multipliers and rounded once, so
 * rounding never compounds down the tree.
 */
export function costsForPath(list: Nano, multipliersPpm: readonly number[]): Nano[] {
  const costs: Nano[] = [];
  let numerator = list;
  let denominator = 1n;
  for (const ppm of multipliersPpm) {
    if (!Number.isInteger(ppm) || ppm <= 0) throw new RangeError(`multiplier must be a positive integer ppm, got ${ppm}`);
    numerator *= BigInt(ppm);
    denominator *= PPM;
    costs.push(divRoundHalfUp(numerator, denominator));
  }
  return costs;
}
