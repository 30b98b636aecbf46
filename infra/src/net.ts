import { createServer, connect } from 'node:net';

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Sends one request over TCP and resolves with the first reply line, or with everything the
 * server sent once it closes (ZooKeeper's four-letter words end without a newline).
 */
function ask(port: number, request: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    const done = (reply: string) => {
      clearTimeout(timer);
      socket.end();
      resolve(reply);
    };
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      const end = buffer.indexOf('\r\n');
      if (end >= 0) done(buffer.slice(0, end));
    });
    socket.once('end', () => done(buffer));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** One inline Redis command; its first reply line. */
export const redisInline = (port: number, command: string, timeoutMs = 1000) => ask(port, `${command}\r\n`, timeoutMs);

/** One of ZooKeeper's four-letter commands, e.g. `srvr`; its whole answer. */
export const zookeeperCommand = (port: number, command: string, timeoutMs = 1000) => ask(port, command, timeoutMs);
