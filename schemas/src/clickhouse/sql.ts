/**
 * The one place ClickHouse literals are built. 18.16 has no query parameters, so user values
 * enter SQL only through these functions; identifiers come only from code (enums).
 */
const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

export function sqlString(value: string): string {
  return `'${value.replace(/[\\'\n\r\t\0\b\f]/g, (c) => ESCAPES[c] ?? c)}'`;
}

export function sqlInt(value: number | bigint): string {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
  return BigInt(value).toString();
}

/** A UTC DateTime literal; ClickHouse's DateTime has second precision. */
export function sqlDateTime(value: Date): string {
  if (Number.isNaN(value.getTime())) throw new RangeError('invalid date');
  return `toDateTime(${sqlString(toClickHouseDateTime(value))}, 'UTC')`;
}

export function sqlDate(value: Date): string {
  return `toDate(${sqlString(value.toISOString().slice(0, 10))})`;
}

/** The right-hand side of `x IN …`: a tuple of string literals. */
export function sqlStringSet(values: readonly string[]): string {
  return `(${values.map(sqlString).join(', ')})`;
}

/** "YYYY-MM-DD hh:mm:ss" in UTC, the form ClickHouse parses in JSONEachRow and literals. */
export function toClickHouseDateTime(value: Date): string {
  return value.toISOString().slice(0, 19).replace('T', ' ');
}

/** Identifiers only from a fixed list known to the code, never from user input. */
export function sqlIdentifier<T extends string>(value: T, allowed: readonly T[]): string {
  if (!allowed.includes(value)) throw new RangeError(`identifier not allowed: ${value}`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new RangeError(`bad identifier: ${value}`);
  return value;
}

/**
 * Settings every Yugong client sends with its queries. Servers since 25.x write 64-bit
 * integers in JSON as bare numbers (18.16 quoted them), which JavaScript would round above
 * 2^53: quoted, money and counters arrive as strings and are read exactly on every version.
 */
export const clickhouseSettings = { output_format_json_quote_64bit_integers: 1 } as const;
