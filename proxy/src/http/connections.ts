import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { cidrContains, formatIp, parseIp, type Cidr } from '@yugong/schemas';

/**
 * Caps the connections one address may hold open, so one client's idle or slow sockets
 * cannot take the file descriptors and memory other clients need. A trusted proxy carries
 * many clients on its connections and is not capped; behind it the per-client limits are
 * the authentication limiter and the rate limits.
 */
export function capConnectionsPerAddress(server: Server, max: number, trusted: readonly Cidr[]): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    // An error on a socket the server has not yet wrapped would otherwise go unheard.
    socket.on('error', ignore);
    const ip = parseIp(socket.remoteAddress ?? '');
    if (!ip || trusted.some((r) => cidrContains(r, ip))) return;
    const address = formatIp(ip);
    const count = (open.get(address) ?? 0) + 1;
    if (count > max) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

function ignore(): void {
  // The HTTP server reports what matters about a broken socket to the request using it.
}
