import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { repoRoot } from './profile.js';

const requirements = join(repoRoot, 'infra', 'chdb', 'requirements.txt');
const worker = join(repoRoot, 'infra', 'chdb', 'worker.py');

export type VenvSetup = { ok: true; python: string } | { ok: false; reason: string };
export type ChdbSetup = VenvSetup;

/**
 * A virtualenv with a pinned requirements file, made once per version of that file; later
 * calls find it ready. Says why when it cannot be made.
 */
export function ensureVenv(name: string, requirementsFile: string): VenvSetup {
  const text = readFileSync(requirementsFile, 'utf8');
  const dir = join(repoRoot, '.yugong', 'cache', `${name}-venv-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  const python = join(dir, 'bin', 'python');
  const ready = join(dir, '.installed');
  if (existsSync(ready)) return { ok: true, python };
  mkdirSync(dir, { recursive: true });
  const venv = spawnSync('python3', ['-m', 'venv', dir], { encoding: 'utf8' });
  if (venv.status !== 0) return { ok: false, reason: `python3 -m venv failed: ${(venv.stderr || venv.error?.message || '').trim().split('\n').pop()}` };
  console.log(`[infra] installing ${name} into a virtualenv (first run only)`);
  const pip = spawnSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirementsFile], { encoding: 'utf8', timeout: 600_000 });
  if (pip.status !== 0) return { ok: false, reason: `pip could not install ${requirementsFile}: ${(pip.stderr || pip.error?.message || '').trim().split('\n').slice(-3).join(' ')}` };
  writeFileSync(ready, text);
  return { ok: true, python };
}

/** chDB (a modern ClickHouse as a Python library), pinned. */
export const ensureChdb = (): ChdbSetup => ensureVenv('chdb', requirements);

/** The official OpenAI Python SDK, pinned in infra/python/requirements.txt. */
export const ensurePythonSdk = (): VenvSetup => ensureVenv('openai-python', join(repoRoot, 'infra', 'python', 'requirements.txt'));

interface Pending {
  resolve(text: string): void;
  reject(err: Error): void;
}

/** The part of @clickhouse/client's result that the product reads. */
export interface ChdbResult {
  text(): Promise<string>;
  json<T>(): Promise<T[]>;
}

/**
 * A modern ClickHouse engine with the calls of @clickhouse/client that Yugong makes (query,
 * command, insert, exec, ping), so the product's own code runs on it unchanged. `settings`
 * are the client's `clickhouse_settings`, set once for the session as the HTTP client sends
 * them with each query.
 */
export class ChdbClient {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private version = '';

  constructor(
    python: string,
    dataDir: string,
    private readonly settings: Record<string, string | number> = {},
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.proc = spawn(python, [worker, dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.proc.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    this.proc.on('error', (err) => this.failAll(err));
    this.proc.on('exit', (code) => this.failAll(new Error(`the chDB worker exited (code ${code}): ${stderr}`)));
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as { id: number; ok: boolean; text?: string; error?: string };
      const p = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (answer.ok) p?.resolve(answer.text ?? '');
      else p?.reject(new Error(answer.error));
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private run(sql: string, format: string | null = null, data: string | null = null): Promise<string> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.stdin.write(`${JSON.stringify({ id, sql, format, data })}\n`);
    });
  }

  /** Applies the client settings; resolves with the engine's version. */
  async ready(): Promise<string> {
    for (const [k, v] of Object.entries(this.settings)) await this.run(`SET ${k} = ${typeof v === 'number' ? v : `'${v}'`}`);
    this.version = (await this.run('SELECT version()', 'TabSeparated')).trim();
    return this.version;
  }

  async query(params: { query: string; format?: string }): Promise<ChdbResult> {
    const format = params.format ?? 'JSON';
    const text = await this.run(params.query, format);
    return {
      text: async () => text,
      json: async <T>() =>
        format === 'JSONEachRow'
          ? text
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as T)
          : (JSON.parse(text) as { data: T[] }).data,
    };
  }

  async command(params: { query: string }): Promise<void> {
    await this.run(params.query);
  }

  async insert(params: { table: string; values: Record<string, unknown>[]; format?: 'JSONEachRow'; columns?: readonly string[] }): Promise<void> {
    if (params.values.length === 0) return;
    const columns = params.columns ? ` (${params.columns.join(', ')})` : '';
    await this.run(`INSERT INTO ${params.table}${columns} FORMAT JSONEachRow`, null, params.values.map((v) => JSON.stringify(v)).join('\n'));
  }

  /** The raw answer of a query that names its own FORMAT, as a stream. */
  async exec(params: { query: string }): Promise<{ stream: Readable }> {
    return { stream: Readable.from([Buffer.from(await this.run(params.query))]) };
  }

  async ping(): Promise<{ success: boolean }> {
    return this.run('SELECT 1').then(
      () => ({ success: true }),
      () => ({ success: false }),
    );
  }

  async close(): Promise<void> {
    this.proc.stdin.end();
    await new Promise((r) => (this.proc.exitCode !== null ? r(null) : this.proc.once('exit', r)));
  }
}
