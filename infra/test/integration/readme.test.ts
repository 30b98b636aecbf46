import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePythonSdk } from '../../src/chdb.js';
import { endpointsFromEnv, repoRoot } from '../../src/profile.js';
import { launchServices, type LaunchedServices } from '../../src/start-stack.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** A command, ended after `timeoutMs` (its code is then null and its stderr says so). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      err += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, out, err: `${err}\n${e.message}` });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** The ```sh blocks of a README, each split into its commands (a line with its `\` continuations, or a for … done loop). */
function shellCommands(markdown: string): string[][] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return blocks.map((block) => {
    const commands: string[] = [];
    let current = '';
    let loop = false;
    for (const line of block.split('\n')) {
      if (!current && (line.trim() === '' || line.trim().startsWith('#'))) continue;
      current += `${line}\n`;
      if (/^for\b/.test(line.trim())) loop = true;
      if (loop ? line.trim() === 'done' : !line.trimEnd().endsWith('\\')) {
        commands.push(current);
        current = '';
        loop = false;
      }
    }
    return commands;
  });
}

const sectionOf = (lines: string, marker: string) => {
  const start = lines.indexOf(marker);
  const rest = lines.slice(start + marker.length);
  return rest.slice(0, rest.indexOf('\n\n') >= 0 ? rest.indexOf('\n\n') : undefined).trim();
};

/**
 * The README as a newcomer runs it: the services started as `npm start` starts them (each
 * from its entry point, as child processes, on the test stack's servers), then every command
 * of every ```sh block of both READMEs as written (only the ports and the example account ids
 * are this run's), the snippets `npm start` prints, and the Idempotency-Key promises through
 * the official SDKs.
 */
describe('the README, as written, against the services as npm start runs them', function () {
  this.timeout(900_000);
  const runId = randomUUID().replace(/-/g, '').slice(0, 8);
  const home = mkdtempSync(join(tmpdir(), 'yugong-readme-'));
  let s: LaunchedServices;
  let ports: { proxy: number; ledger: number; analytics: number; mock: number };
  let shellEnv: NodeJS.ProcessEnv;
  let database: string;

  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${s.base}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, json: (await r.json()) as Record<string, any> };
  };
  const fundedKey = async (usd = '5') => {
    const id = `readme-${randomUUID().slice(0, 8)}`;
    assert.equal((await admin('POST', '/accounts', { id, name: 'README' })).status, 201);
    assert.equal((await admin('POST', `/accounts/${id}/credits`, { amount_usd: usd, idempotency_key: randomUUID() })).status, 201);
    const key = await admin('POST', `/accounts/${id}/keys`, { name: 'readme' });
    assert.equal(key.status, 201);
    return { id, key: key.json.key as string };
  };
  const settledRequests = async (id: string, atLeast: number) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const a = await admin('GET', `/accounts/${id}`);
      if (Number(a.json.requests) >= atLeast || Date.now() > deadline) return a.json;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    const endpoints = endpointsFromEnv();
    ports = { proxy: await freePort(), ledger: await freePort(), analytics: await freePort(), mock: await freePort() };
    database = `yg_readme_${runId}`;
    const ch = await fetch(`${endpoints.clickhouseUrl}/?query=${encodeURIComponent(`CREATE DATABASE IF NOT EXISTS ${database}`)}`, { method: 'POST' });
    assert.equal(ch.status, 200, await ch.text());
    // This run's ledger groups and database: it starts at the topics' beginning like a fresh npm start.
    const own = { YUGONG_CLICKHOUSE_DATABASE: database, YUGONG_GROUP_SUFFIX: `-readme-${runId}` };
    s = await launchServices({ dir: join(home, 'dev'), endpoints, ports, env: own, say: () => undefined });
    const { key } = await fundedKey();
    // The tools find the local stack by the dev profile's ports (npm start's), here the test stack's.
    const { YUGONG_KAFKA_BROKERS: _k, YUGONG_REDIS_URL: _r, YUGONG_CLICKHOUSE_URL: _c, YUGONG_ADMIN_TOKEN: _a, YUGONG_URL: _u, YUGONG_API_KEY: _key, ...rest } = process.env;
    shellEnv = {
      ...rest,
      ...own,
      YUGONG_HOME: home,
      YUGONG_DEV_REDIS_PORT: new URL(endpoints.redisUrl).port,
      YUGONG_DEV_CLICKHOUSE_HTTP_PORT: new URL(endpoints.clickhouseUrl).port,
      YUGONG_DEV_KAFKA_PORT: endpoints.kafkaBrokers[0]?.split(':')[1] ?? '',
      YUGONG_PROXY_PORT: String(ports.proxy),
      ADMIN: s.adminToken,
      KEY: key,
    };
  });
  after(async () => {
    await s?.stop();
    const endpoints = endpointsFromEnv();
    await fetch(`${endpoints.clickhouseUrl}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${database}`)}`, { method: 'POST' }).catch(() => undefined);
  });

  it("npm start's printed snippets work as printed: curl, Python (official SDK), Node (official SDK), the balance", async () => {
    const curl = sectionOf(s.welcome, 'curl:\n');
    const r1 = await run('bash', ['-c', curl], shellEnv);
    assert.equal(r1.code, 0, r1.err);
    assert.ok((JSON.parse(r1.out) as { choices: unknown[] }).choices.length > 0, r1.out);

    const python = ensurePythonSdk();
    assert.ok(python.ok, python.ok ? '' : python.reason);
    const py = sectionOf(s.welcome, 'Python (pip install openai):\n')
      .split('\n')
      .map((l) => l.trim())
      .join('\n');
    const r2 = await run(python.python, ['-c', py], shellEnv);
    assert.equal(r2.code, 0, r2.err);
    assert.ok(r2.out.trim().length > 0, 'the Python snippet printed the answer');

    const node = sectionOf(s.welcome, 'Node (npm install openai):\n')
      .split('\n')
      .map((l) => l.trim())
      .join('\n');
    // Beside the repository's node_modules, so `import OpenAI from "openai"` finds the installed SDK.
    const dir = join(repoRoot, '.yugong', 'cache', 'readme');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `snippet-${runId}.mjs`);
    writeFileSync(file, node);
    const r3 = await run(process.execPath, [file], shellEnv);
    assert.equal(r3.code, 0, r3.err);
    assert.ok(r3.out.trim().length > 0, 'the Node snippet printed the answer');

    const balance = sectionOf(s.welcome, "Balance (as OpenAI's billing API reports it):\n");
    const r4 = await run('bash', ['-c', balance], shellEnv);
    assert.equal(r4.code, 0, r4.err);
    assert.equal(typeof (JSON.parse(r4.out) as { hard_limit_usd: number }).hard_limit_usd, 'number', r4.out);
  });

  for (const readme of ['README.md', 'README.zh-CN.md']) {
    it(`${readme}: every command of every shell block runs as written, with no registry lookup`, async () => {
      const lang = readme === 'README.md' ? 'en' : 'zh';
      const blocks = shellCommands(readFileSync(join(repoRoot, readme), 'utf8'));
      // The first block is "the two commands" (npm start, npm test): this suite runs inside the second.
      assert.match(blocks[0]?.join('') ?? '', /npm start[\s\S]*npm test/);
      const ids = { acme: `acme-${runId}-${lang}`, globex: `globex-${runId}-${lang}` };
      // A key of its own for the blocks' $KEY: the Idempotency-Key loop starts on a key never used.
      // Every curl fails on an HTTP error (the README's omit -f for readability; a 5xx must not pass).
      const bashEnv = join(home, 'curl-fails.sh');
      writeFileSync(bashEnv, 'curl() { command curl --fail-with-body "$@"; }\n');
      const env = { ...shellEnv, KEY: (await fundedKey()).key, npm_config_offline: 'true', BASH_ENV: bashEnv };
      let replayed = 0;
      let commands = 0;
      for (const block of blocks.slice(1)) {
        for (const written of block) {
          const command = written
            .replaceAll('localhost:18080', `127.0.0.1:${ports.proxy}`)
            .replaceAll('localhost:18081', `127.0.0.1:${ports.analytics}`)
            .replace(/\bacme\b/g, ids.acme)
            .replace(/\bglobex\b/g, ids.globex);
          // npx would ask the public registry for a name the workspace does not link: never.
          assert.doesNotMatch(command, /\bnpx\b/, `${readme}: ${written}`);
          const r = await run('bash', ['-c', command], env);
          commands++;
          const what = `${readme}: ${written.trim()}\n${r.out}\n${r.err}`;
          if (/npm run -s rebuild/.test(command)) {
            // Refused while the ledger consumer runs, as the README says, with nothing changed.
            assert.equal(r.code, 2, what);
            assert.match(r.err, /rebuild refused/, what);
            continue;
          }
          assert.equal(r.code, 0, what);
          assert.doesNotMatch(r.out, /"error"\s*:/, what);
          assert.doesNotMatch(r.err, /npm error|404 Not Found/, what);
          if (/Idempotency-Key/.test(command)) replayed += (r.out.match(/^idempotent-replayed: true/gim) ?? []).length;
          if (/npm run -s reconcile/.test(command)) assert.match(r.out, /2 accounts, 0 with drift/, what);
        }
      }
      assert.ok(commands >= 14, `${commands} commands ran`);
      // README's Idempotency-Key loop: the second of its two calls is the first's answer again.
      assert.equal(replayed, 1, 'one of the two calls with the same Idempotency-Key was replayed');
      // What the blocks did, read back: the accounts, their top-ups and the CLI's key.
      const acme = (await admin('GET', `/accounts/${ids.acme}`)).json;
      assert.equal(acme.credited_nano, '25000000000');
      const globex = (await admin('GET', `/accounts/${ids.globex}`)).json;
      assert.equal(globex.credited_nano, '25000000000');
      assert.equal(globex.rpm, 600);
      assert.equal((await admin('GET', `/accounts/${ids.globex}/keys`)).json.data.length, 1);
    });
  }

  it('Idempotency-Key through the official SDKs: the same request replays, another body is 422, one in flight is 409, 20 at once charge once', async () => {
    const { default: OpenAI } = await import('openai');
    const { id, key } = await fundedKey();
    const client = new OpenAI({ apiKey: key, baseURL: `${s.base}/v1`, maxRetries: 0 });
    const body = { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user' as const, content: 'Hello!' }] };
    const opts = (k: string) => ({ headers: { 'Idempotency-Key': k } });

    // Chat and embeddings: the second answer is the first, byte for byte, and replayed.
    const first = await client.chat.completions.create(body, opts('chat-1')).withResponse();
    const again = await client.chat.completions.create(body, opts('chat-1')).withResponse();
    assert.equal(first.response.headers.get('idempotent-replayed'), null);
    assert.equal(again.response.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.data, first.data);
    const e1 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' }, opts('emb-1')).withResponse();
    const e2 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' }, opts('emb-1')).withResponse();
    assert.equal(e2.response.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(e2.data, e1.data);

    // A stream runs once; the same key again is 409 (a stream cannot be replayed).
    const stream = await client.chat.completions.create({ ...body, stream: true }, opts('stream-1'));
    for await (const _ of stream) {
      // read to the end
    }
    await assert.rejects(
      client.chat.completions.create({ ...body, stream: true }, opts('stream-1')),
      (err: { status?: number; code?: string }) => err.status === 409 && err.code === 'idempotency_conflict',
    );

    // Another body under a used key: 422.
    await assert.rejects(
      client.chat.completions.create({ ...body, max_tokens: 17 }, opts('chat-1')),
      (err: { status?: number; code?: string }) => err.status === 422 && err.code === 'idempotency_key_reused',
    );

    // While the first is still running: 409. The mock answers this key after 1.5 s.
    const mock = `http://127.0.0.1:${ports.mock}/__mock/keys/sk-demo-upstream-key`;
    await fetch(mock, { method: 'PUT', body: JSON.stringify({ latencyMs: 1500 }) });
    try {
      const slow = client.chat.completions.create(body, opts('slow-1'));
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(client.chat.completions.create(body, opts('slow-1')), (err: { status?: number; code?: string }) => err.status === 409 && err.code === 'idempotency_conflict');
      assert.ok((await slow).choices.length > 0);

      // Twenty at once with one key: one runs, the others are 409 (or the replay once it finished); one charge.
      const raw = () =>
        fetch(`${s.base}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': 'burst-1' },
          body: JSON.stringify(body),
        });
      const answers = await Promise.all(Array.from({ length: 20 }, raw));
      const statuses = answers.map((a) => a.status);
      assert.deepEqual([...new Set(statuses)].sort(), [200, 409], statuses.join(' '));
      assert.equal(answers.filter((a) => a.status === 200 && a.headers.get('idempotent-replayed') !== 'true').length, 1, 'exactly one of the 20 ran');
    } finally {
      await fetch(mock, { method: 'PUT', body: JSON.stringify({ latencyMs: 0 }) });
    }

    // The Python SDK sends the header the same way.
    const python = ensurePythonSdk();
    assert.ok(python.ok, python.ok ? '' : python.reason);
    const script = [
      'import os',
      'from openai import OpenAI',
      'c = OpenAI(base_url=os.environ["BASE"], api_key=os.environ["KEY"], max_retries=0)',
      'for _ in range(2):',
      '    r = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", max_tokens=16, messages=[{"role": "user", "content": "Hi"}], extra_headers={"Idempotency-Key": "py-1"})',
      '    print(r.http_response.status_code, r.headers.get("idempotent-replayed"), r.parse().id)',
    ].join('\n');
    const py = await run(python.python, ['-c', script], { ...shellEnv, BASE: `${s.base}/v1`, KEY: key });
    assert.equal(py.code, 0, py.err);
    const [a, b] = py.out.trim().split('\n');
    assert.match(a ?? '', /^200 None chatcmpl-/);
    assert.equal(b, (a ?? '').replace(' None ', ' true '), 'the second answer is the first, replayed');

    // Charged once per key: chat-1, emb-1, stream-1, slow-1, burst-1, py-1.
    const account = await settledRequests(id, 6);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(Number((await admin('GET', `/accounts/${id}`)).json.requests), 6, `requests charged: ${JSON.stringify(account)}`);
  });
});
