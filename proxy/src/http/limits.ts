import { isIPv4 } from 'node:net';

/** null allows every model; entries are exact names or prefixes ending in "*". */
export function modelAllowed(list: readonly string[] | null, model: string): boolean {
  if (!list) return true;
  return list.some((m) => m === '*' || m === model || (m.endsWith('*') && model.startsWith(m.slice(0, -1))));
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

/** Strips the IPv4-mapped IPv6 prefix Node reports for IPv4 clients on dual-stack sockets. */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** null allows every address; entries are addresses or IPv4 CIDR ranges (10.0.0.0/8). */
export function ipAllowed(list: readonly string[] | null, ip: string): boolean {
  if (!list) return true;
  return list.some((entry) => {
    const [net, bits] = entry.split('/');
    if (bits === undefined) return normalizeIp(net) === ip;
    if (!net || !isIPv4(net) || !isIPv4(ip)) return false;
    const b = Number(bits);
    if (!Number.isInteger(b) || b < 0 || b > 32) return false;
    const mask = b === 0 ? 0 : (~0 << (32 - b)) >>> 0;
    return (ipv4ToInt(net) & mask) === (ipv4ToInt(ip) & mask);
  });
}
