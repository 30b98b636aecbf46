import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reconcile } from '@yugong/ledger-consumer';
import { startStack, waitFor, type Stack } from './harness.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const freePort = () => new Promise<number>((resolve) => {
  const srv = createServer().listen(0, '127.0.0.1', () => {
    const { port } = srv.address() as AddressInfo;
    srv.close(() => resolve(port));
  });
});

/**
 * Two proxy processes behind what a load balancer does (nginx' proxy_next_upstream error
 * http_503): a request that could not connect, or that a draining node refused with 503
 * shutting_down before doing anything, goes to the other node. Each node is stopped with
 * SIGTERM and started again, one at a time, under load.
 */
describe('a rolling restart of both proxy nodes (SIGTERM, one at a time) under load', function () {
  this.timeout(240_000);
  let s: Stack;
  const nodes: { port: number; child: ChildProcess | null }[] = [];
  before(async () => {
    s = await startStack();
    for (let i = 0; i < 2; i++) nodes.push({ port: await freePort(), child: null });
  });
  after(async () => {
    for (const n of nodes) n.child?.kill('SIGKILL');
    await s?.close();
  });

  const start = async (i: number) => {
    const n = nodes[i]!;
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, ...s.nodes[0]!.env, YUGONG_PROXY_PORT: String(n.port), YUGONG_NODE_ID: `rolling-${i}-${process.pid}-${Date.now()}`, YUGONG_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'yg-rolling-')), YUGONG_SHUTDOWN_GRACE_MS: '10000', YUGONG_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    n.child = child;
    await waitFor(`node ${i} ready`, async () => ((await fetch(`http://127.0.0.1:${n.port}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : null), 30_000);
  };
  const stop = async (i: number) => {
    const child = nodes[i]!.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    nodes[i]!.child = null;
  };

  it('no request fails that had not started streaming, and every answered request is billed once', async () => {
    await start(0);
    await start(1);
    const { key, accountId } = await s.fundedKey({ usd: '50' });
    let next = 0;
    const outcomes = { ok: 0, streamed: 0, failed: [] as string[], retried: 0 };
    const once = async (stream: boolean): Promise<void> => {
      for (let attempt = 0; attempt < 4; attempt++) {
        const port = nodes[next++ % 2]!.port;
        let r: Response;
        try {
          r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
            method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, stream, messages: [{ role: 'user', content: 'hello' }] }),
          });
        } catch {
          outcomes.retried++;
          continue;
        }
        const text = await r.text().catch((err: Error) => `cut: ${err.message}`);
        if (r.status === 503 && text.includes('shutting_down')) {
          outcomes.retried++;
          continue;
        }
        if (r.status !== 200) return void outcomes.failed.push(`${r.status} ${text.slice(0, 200)}`);
        if (stream && !text.trimEnd().endsWith('data: [DONE]')) return void outcomes.failed.push(`stream cut: ${text.slice(-200)}`);
        if (stream) outcomes.streamed++;
        else outcomes.ok++;
        return;
      }
      outcomes.failed.push('no node took it in 4 attempts');
    };
    let running = true;
    const client = async (stream: boolean) => {
      for (let i = 0; running && i < 3000; i++) await once(stream);
    };
    const load = Promise.all([client(false), client(true)]);
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of [0, 1]) {
      await stop(i);
      await new Promise((r) => setTimeout(r, 1000));
      await start(i);
      await new Promise((r) => setTimeout(r, 2000));
    }
    running = false;
    await load;

    const answered = outcomes.ok + outcomes.streamed;
    console.log(`      (${outcomes.ok} answers and ${outcomes.streamed} streams through two restarts, ${outcomes.retried} sent again to the other node)`);
    assert.deepEqual(outcomes.failed, [], 'failed requests');
    assert.ok(outcomes.retried > 0, 'the restarts happened under load');
    await s.settled(accountId, answered, undefined, 60_000);
    await waitFor('every answer in ClickHouse', async () => ((await s.billed(accountId)).count >= answered ? true : null), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await s.billed(accountId), { count: answered, distinct: answered }, 'count() = uniqExact(request_id) = answers');
    assert.equal(Number((await s.account(accountId)).requests), answered);
    const [d] = await reconcile(s.redis, s.clickhouse, [accountId]);
    assert.deepEqual([d?.drift, d?.creditDrift], [0n, 0n]);
  });
});
