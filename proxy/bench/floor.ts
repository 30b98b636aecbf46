#!/usr/bin/env node
/**
 * The floor: the least a proxy can do. node:http in, undici Pool out, the body and the
 * response passed through untouched, the upstream key swapped in. No auth, no billing.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = new URL(process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:18090/v1');
const key = process.env.FLOOR_KEY ?? 'sk-bench';
const pool = new Pool(upstream.origin, { connections: 256 });
const base = upstream.pathname.replace(/\/+$/, '');

createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    const up = await pool.request({
      method: req.method as 'POST',
      path: base + (req.url ?? '/').replace(/^\/v1/, ''),
      headers: { authorization: `Bearer ${key}`, 'content-type': req.headers['content-type'] ?? 'application/json' },
      body: Buffer.concat(chunks),
    });
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
    for await (const c of up.body) {
      if (!res.write(c)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  } catch {
    res.writeHead(502).end();
  }
}).listen(Number(process.env.FLOOR_PORT ?? 18095), '127.0.0.1');
