import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack, waitFor, type Node, type Stack } from './harness.js';
import { silentWav } from '@yugong/metering';

const MULTIPART_ROUTES = ['/v1/audio/transcriptions', '/v1/audio/translations', '/v1/images/edits', '/v1/images/variations'];
const MAX_BODY = 2 * 1024 * 1024;

/** The body that ended a node: a file part with no closing boundary. */
const TRUNCATED = '--bx\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFFxxxx';

function part(boundary: string, name: string, value: string | Buffer, filename?: string): Buffer {
  const disposition = `form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}`;
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${filename ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`),
    Buffer.from(value),
    Buffer.from('\r\n'),
  ]);
}

function form(boundary: string, parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]);
}

/** Every broken multipart body a client can send, with what the gateway must answer. */
function hostileBodies(): { name: string; contentType: string; body: Buffer; status: number; code: string }[] {
  const wav = silentWav(1000);
  const manyFields = Array.from({ length: 200 }, (_, i) => part('bx', `f${i}`, 'x'));
  return [
    { name: 'truncated before the closing boundary', contentType: 'multipart/form-data; boundary=bx', body: Buffer.from(TRUNCATED), status: 400, code: 'invalid_multipart_body' },
    { name: 'truncated inside a part header', contentType: 'multipart/form-data; boundary=bx', body: Buffer.from('--bx\r\nContent-Disposition: form-da'), status: 400, code: 'invalid_multipart_body' },
    {
      name: 'a boundary that is not the declared one',
      contentType: 'multipart/form-data; boundary=bx',
      body: form('by', [part('by', 'model', 'whisper-1'), part('by', 'file', wav, 'a.wav')]),
      status: 400,
      code: 'invalid_multipart_body',
    },
    { name: 'no boundary at all', contentType: 'multipart/form-data', body: form('bx', [part('bx', 'file', wav, 'a.wav')]), status: 400, code: 'invalid_content_type' },
    { name: 'JSON sent as the form', contentType: 'application/json', body: Buffer.from('{"model":"whisper-1","file":"a.wav"}'), status: 400, code: 'invalid_content_type' },
    { name: 'plain text', contentType: 'text/plain', body: Buffer.from('hello'), status: 400, code: 'invalid_content_type' },
    { name: 'more parts than any client sends', contentType: 'multipart/form-data; boundary=bx', body: form('bx', manyFields), status: 400, code: 'invalid_multipart_body' },
    {
      name: 'a field larger than a form field may be',
      contentType: 'multipart/form-data; boundary=bx',
      body: form('bx', [part('bx', 'prompt', 'p'.repeat(1024 * 1024 + 10))]),
      status: 400,
      code: 'invalid_multipart_body',
    },
    {
      name: 'a body over the size limit',
      contentType: 'multipart/form-data; boundary=bx',
      body: form('bx', [part('bx', 'model', 'whisper-1'), part('bx', 'file', Buffer.alloc(MAX_BODY + 1), 'a.wav')]),
      status: 413,
      code: 'request_too_large',
    },
    { name: 'garbage bytes', contentType: 'multipart/form-data; boundary=bx', body: Buffer.from([0xff, 0x00, 0x2d, 0x2d, 0x62, 0x78, 0x0d, 0xfe]), status: 400, code: 'invalid_multipart_body' },
  ];
}

/** Sends the headers and part of a declared body, then drops the connection mid-file. */
function abortMidFile(url: string, path: string, key: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const file = part('bx', 'file', Buffer.alloc(64 * 1024, 1), 'a.wav');
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname, () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: multipart/form-data; boundary=bx\r\nContent-Length: ${file.length * 4}\r\n\r\n`);
      s.write(file.subarray(0, file.length / 2), () => setTimeout(() => s.destroy(), 50));
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
}

async function send(url: string, path: string, key: string, contentType: string, body: Buffer) {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, body });
  return { status: r.status, json: (await r.json()) as { error?: { type: string; code: string; message: string } } };
}

describe('proxy: hostile uploads never end a node and are never billed', function () {
  this.timeout(120_000);
  let s: Stack;
  let node: Node;
  const faults: unknown[] = [];
  const onFault = (e: unknown) => faults.push(e);
  before(async () => {
    s = await startStack({ env: { YUGONG_MAX_BODY_BYTES: String(MAX_BODY) } });
    node = s.nodes[0] as Node;
    process.on('unhandledRejection', onFault);
    process.on('uncaughtExceptionMonitor', onFault);
  });
  after(async () => {
    process.off('unhandledRejection', onFault);
    process.off('uncaughtExceptionMonitor', onFault);
    await s.close();
  });

  it('answers every broken multipart body on every multipart route with an OpenAI-shaped 4xx, and bills nothing', async () => {
    const { key, accountId } = await s.fundedKey();
    for (const path of MULTIPART_ROUTES) {
      for (const b of hostileBodies()) {
        const r = await send(node.url, path, key, b.contentType, b.body);
        assert.equal(r.status, b.status, `${path}, ${b.name}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error?.type, 'invalid_request_error', `${path}, ${b.name}`);
        assert.equal(r.json.error?.code, b.code, `${path}, ${b.name}`);
      }
      await abortMidFile(node.url, path, key);
    }
    // The node still serves, and the one good request is the only one billed.
    const ok = await s.client(key).audio.transcriptions.create({ model: 'whisper-1', file: new File([silentWav(2000)], 'ok.wav', { type: 'audio/wav' }) });
    assert.equal(typeof ok.text, 'string');
    const h = await s.settled(accountId, 1);
    await new Promise((r) => setTimeout(r, 1500));
    const after = await s.account(accountId);
    assert.equal(after.requests, '1', 'only the good request was recorded');
    assert.equal(after.spent, h.spent);
    assert.equal(after.held, '0');
    assert.deepEqual(faults, [], 'client input caused an unhandled rejection or exception');
  });

  it('a node started as its own process survives the upload that used to end it', async () => {
    const { key } = await s.fundedKey();
    const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, [main], {
      env: { ...process.env, ...node.env, YUGONG_PROXY_PORT: '0', YUGONG_NODE_ID: `hostile-${process.pid}`, YUGONG_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'yg-hostile-')), YUGONG_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const url = await waitFor('the proxy process to listen', async () => /"url":"(http:\/\/[^"]+)\/v1"/.exec(out)?.[1] ?? null, 30_000);
      for (const path of MULTIPART_ROUTES) {
        const r = await send(url, path, key, 'multipart/form-data; boundary=bx', Buffer.from(TRUNCATED));
        assert.equal(r.status, 400, JSON.stringify(r.json));
        await abortMidFile(url, path, key);
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, `the proxy process ended:\n${out.slice(-2000)}`);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.doesNotMatch(out, /uncaught|unhandled/i);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});

describe('proxy: idle and slow connections cannot crowd out other clients', function () {
  this.timeout(60_000);
  const CAP = 50;
  let s: Stack;
  let node: Node;
  before(async () => {
    s = await startStack({ env: { YUGONG_MAX_CONNECTIONS_PER_IP: String(CAP), YUGONG_HEADERS_TIMEOUT_MS: '2000', YUGONG_REQUEST_BODY_TIMEOUT_MS: '3000' } });
    node = s.nodes[0] as Node;
  });
  after(() => s.close());

  it('caps one address at its connection limit, cuts slow senders at the body timeout, and serves others meanwhile', async () => {
    const { key } = await s.fundedKey();
    const { port } = new URL(node.url);
    // 500 sockets from another loopback address: half idle, half sending a body a byte at a time.
    const sockets: { socket: Socket; connectedAt: number; closedAt: number | null; answer: string; slow: boolean }[] = [];
    await Promise.all(
      Array.from(
        { length: 500 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const entry = { socket: connect({ port: Number(port), host: '127.0.0.1', localAddress: '127.0.0.2' }), connectedAt: 0, closedAt: null as number | null, answer: '', slow: i % 2 === 1 };
            sockets.push(entry);
            entry.socket.on('error', () => undefined);
            entry.socket.on('data', (c: Buffer) => (entry.answer += c.toString()));
            entry.socket.on('close', () => (entry.closedAt = Date.now()));
            entry.socket.on('connect', () => {
              entry.connectedAt = Date.now();
              if (entry.slow) entry.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
              resolve();
            });
            entry.socket.on('close', () => resolve());
          }),
      ),
    );
    const drip = setInterval(() => {
      for (const e of sockets) if (e.slow && e.closedAt === null) e.socket.write(' ');
    }, 250);
    try {
      // Meanwhile a client on 127.0.0.1 is served as usual.
      const client = s.client(key);
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now();
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }], max_tokens: 5 });
        assert.ok(r.choices[0]?.message.content);
        assert.ok(Date.now() - t0 < 1500, `a request took ${Date.now() - t0} ms while the other address held its sockets`);
      }
      await waitFor('the server to cut the slow senders', async () => (sockets.filter((e) => e.closedAt === null).length === 0 ? true : null), 15_000);
    } finally {
      clearInterval(drip);
      for (const e of sockets) e.socket.destroy();
    }
    // Refused over the cap: closed with no answer right after connecting, long before the 2 s headers timeout.
    const refusedAtOnce = sockets.filter((e) => e.closedAt !== null && e.closedAt - e.connectedAt < 1000 && e.answer === '').length;
    assert.ok(refusedAtOnce >= 500 - CAP, `only ${refusedAtOnce} of 500 sockets were refused over the cap of ${CAP}`);
    const slowCut = sockets.filter((e) => e.slow && e.answer.startsWith('HTTP/1.1 408'));
    assert.ok(slowCut.length >= 1, 'slow senders admitted under the cap are answered 408 at the body timeout');
    for (const e of slowCut) assert.ok((e.closedAt ?? 0) - e.connectedAt < 3000 + 3000, 'cut within the body timeout (and the 1 s check interval)');
  });
});
