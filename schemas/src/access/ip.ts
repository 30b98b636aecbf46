import { isIPv4, isIPv6 } from 'node:net';

/** An address as a number, so ranges of either family compare with one mask. */
export interface ParsedIp {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr extends ParsedIp {
  bits: number;
}

function v4ToBigint(ip: string): bigint {
  return ip.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** IPv4, IPv6 and IPv4-mapped IPv6 (`::ffff:1.2.3.4`, which is taken as the IPv4 address). */
export function parseIp(text: string): ParsedIp | null {
  const ip = text.trim();
  if (isIPv4(ip)) return { family: 4, value: v4ToBigint(ip) };
  if (!isIPv6(ip)) return null;
  const zoneless = ip.split('%')[0] ?? ip;
  let head = zoneless;
  let tailV4: bigint | null = null;
  const lastColon = zoneless.lastIndexOf(':');
  if (zoneless.includes('.', lastColon)) {
    tailV4 = v4ToBigint(zoneless.slice(lastColon + 1));
    head = `${zoneless.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const groupsOf = (s: string) => (s === '' ? [] : s.split(':'));
  const l = groupsOf(left);
  const r = right === undefined ? [] : groupsOf(right);
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  let value = groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** A range (`10.0.0.0/8`, `2001:db8::/32`) or a single address; null when it is neither. */
export function parseCidr(text: string): Cidr | null {
  const [net = '', bitsText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const ip = parseIp(net);
  if (!ip) return null;
  const width = ip.family === 4 ? 32 : 128;
  if (bitsText === undefined) return { ...ip, bits: width };
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  // A mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
  const mappedBits = ip.family === 4 && net.includes(':') ? bits - 96 : bits;
  if (mappedBits < 0 || mappedBits > width) return null;
  return { ...ip, bits: mappedBits };
}

function mask(family: 4 | 6, bits: number): bigint {
  const width = family === 4 ? 32 : 128;
  return bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

export function cidrContains(range: Cidr, ip: ParsedIp): boolean {
  if (range.family !== ip.family) return false;
  const m = mask(range.family, range.bits);
  return (range.value & m) === (ip.value & m);
}

/** Parses a list of ranges once; a bad entry makes the whole list null (callers refuse it). */
export function parseCidrList(entries: readonly string[]): Cidr[] | null {
  const out: Cidr[] = [];
  for (const e of entries) {
    const c = parseCidr(e);
    if (!c) return null;
    out.push(c);
  }
  return out;
}

/** null allows every address; entries are addresses or CIDR ranges of either family. */
export function ipAllowed(list: readonly string[] | null, ip: string): boolean {
  if (!list) return true;
  const parsed = parseIp(ip);
  if (!parsed) return false;
  return list.some((entry) => {
    const range = parseCidr(entry);
    return range !== null && cidrContains(range, parsed);
  });
}

/** The canonical text of an address: IPv4 dotted, IPv6 as Node prints it, mapped IPv4 unwrapped. */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip.value >> s) & 0xffffn).toString(16));
  // Collapse the longest run of zero groups, as RFC 5952 asks.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/**
 * The client's address. The socket's peer is the client unless it is a trusted proxy; then
 * X-Forwarded-For is read from the right, hop by hop, until an address that is not trusted:
 * what a client writes into the header itself stands left of that and is never believed.
 */
export function clientAddress(socketAddress: string | undefined, forwardedFor: string | string[] | undefined, trusted: readonly Cidr[]): string {
  // Without a balancer to believe, the peer is the client: no parsing on the hot path.
  if (trusted.length === 0 || forwardedFor === undefined) {
    const a = socketAddress ?? '';
    return a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
  }
  const peer = parseIp(socketAddress ?? '');
  if (!peer) return socketAddress ?? '';
  let client = peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = hops.length - 1; i >= 0 && trusted.some((r) => cidrContains(r, client)); i--) {
    const hop = parseIp(hops[i] ?? '');
    if (!hop) break;
    client = hop;
  }
  return formatIp(client);
}

/**
 * Whom failed attempts are counted against: an IPv4 address, or an IPv6 /64 (one subscriber
 * gets a whole /64 and could otherwise rotate through it).
 */
export function limiterSubject(ip: string): string {
  const parsed = parseIp(ip);
  if (!parsed) return ip;
  if (parsed.family === 4) return formatIp(parsed);
  return `${formatIp({ family: 6, value: parsed.value & mask(6, 64) })}/64`;
}

/** `YUGONG_TRUSTED_PROXIES`: comma-separated addresses or ranges; throws naming a bad entry. */
export function parseTrustedProxies(text: string): Cidr[] {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return entries.map((e) => {
    const c = parseCidr(e);
    if (!c) throw new Error(`YUGONG_TRUSTED_PROXIES: "${e}" is not an IP address or CIDR range`);
    return c;
  });
}

/** Where a server must not be sent on an operator's word alone: this host, private networks, link-local (cloud metadata), and the unspecified address. */
const PRIVATE_RANGES = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '::/128', '::1/128', 'fc00::/7', 'fe80::/10']
  .map(parseCidr)
  .filter((c): c is Cidr => c !== null);
const PRIVATE_NAMES = /(^|\.)(localhost|local|internal)$/i;

/**
 * Why an upstream base URL points inside the network (loopback, a private, link-local,
 * benchmark or reserved address such as the cloud metadata service at 169.254.169.254, NAT64
 * forms of them, or a name like localhost, *.internal or one with no dot), or null when it
 * does not. Names are judged as written, not resolved (a public name of a private address is
 * not caught here).
 */
export function privateTarget(baseUrl: string): string | null {
  let host: string;
  try {
    host = new URL(baseUrl).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return 'not a URL';
  }
  const ip = parseIp(host);
  // A name with no dot (metadata, redis) is one the local resolver completes: inside the network.
  if (!ip && (PRIVATE_NAMES.test(host.replace(/\.$/, '')) || !host.replace(/\.$/, '').includes('.'))) return `${host} names this network`;
  if (ip && PRIVATE_RANGES.some((r) => cidrContains(r, ip))) return `${host} is a loopback, private or link-local address`;
  return null;
}
