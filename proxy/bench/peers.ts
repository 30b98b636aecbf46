import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@yugong/infra';

/** A gateway under test: where to send requests and what to send with them. */
export interface Target {
  base: string;
  key: string;
  headers: Record<string, string>;
  pid: number | null;
}

export interface Peer extends Target {
  name: string;
  version: string;
  process: ChildProcess;
}

export type PeerStart = { ok: true; peer: Peer } | { ok: false; name: string; reason: string };

const cache = join(repoRoot, '.yugong', 'cache', 'peers');
/** Pinned, as the issue asks; LiteLLM 1.82.7 and 1.82.8 are avoided, and its newest proxy extra names a package PyPI does not serve. */
export const PEER_VERSIONS = { portkey: '1.15.2', litellm: '1.100.0' } as const;

function run(command: string, args: string[], timeoutMs = 900_000): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs });
  return r.status === 0 ? null : `${command} ${args.slice(0, 3).join(' ')}…: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`;
}

async function until(url: string, ms: number, child: ChildProcess): Promise<string | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return `exited with ${child.exitCode}`;
    try {
      if ((await fetch(url)).ok) return null;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return `${url} did not answer within ${ms / 1000} s`;
}

/** Installed on first use into the project's cache, then reused. */
function ensurePortkey(): { path: string } | { reason: string } {
  const dir = join(cache, `portkey-${PEER_VERSIONS.portkey}`);
  const entry = join(dir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  if (existsSync(entry)) return { path: entry };
  mkdirSync(dir, { recursive: true });
  const failed = run('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', `@portkey-ai/gateway@${PEER_VERSIONS.portkey}`]);
  return failed ? { reason: failed } : { path: entry };
}

function ensureLitellm(): { path: string } | { reason: string } {
  const dir = join(cache, `litellm-${PEER_VERSIONS.litellm}`);
  const bin = join(dir, 'bin', 'litellm');
  if (existsSync(join(dir, '.installed'))) return { path: bin };
  const failed = run('python3', ['-m', 'venv', dir]) ?? run(join(dir, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `litellm[proxy]==${PEER_VERSIONS.litellm}`]);
  if (failed) return { reason: failed };
  writeFileSync(join(dir, '.installed'), PEER_VERSIONS.litellm);
  return { path: bin };
}

/** Portkey's open-source gateway, its OpenAI provider pointed at the mock as a custom host. */
export async function startPortkey(port: number, core: number, mockBase: string): Promise<PeerStart> {
  const installed = ensurePortkey();
  if ('reason' in installed) return { ok: false, name: 'Portkey', reason: installed.reason };
  const child = spawn('taskset', ['-c', String(core), process.execPath, installed.path, `--port=${port}`, '--headless'], { env: { ...process.env, NODE_ENV: 'production' }, stdio: 'ignore' });
  const down = await until(`http://127.0.0.1:${port}/`, 30_000, child);
  if (down) {
    child.kill('SIGKILL');
    return { ok: false, name: 'Portkey', reason: down };
  }
  return {
    ok: true,
    peer: {
      name: 'Portkey',
      version: PEER_VERSIONS.portkey,
      process: child,
      pid: child.pid ?? null,
      base: `http://127.0.0.1:${port}/v1`,
      key: 'sk-bench',
      headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': mockBase },
    },
  };
}

/** LiteLLM's proxy: one worker, no database, its master key on, the mock as an `openai/` model. */
export async function startLitellm(port: number, core: number, mockBase: string): Promise<PeerStart> {
  const installed = ensureLitellm();
  if ('reason' in installed) return { ok: false, name: 'LiteLLM', reason: installed.reason };
  const config = join(cache, 'litellm-bench.yaml');
  const master = 'sk-litellm-bench-master';
  writeFileSync(
    config,
    [
      'model_list:',
      '  - model_name: gpt-4o-mini',
      '    litellm_params:',
      '      model: openai/gpt-4o-mini',
      `      api_base: ${mockBase}`,
      '      api_key: sk-bench',
      'general_settings:',
      `  master_key: ${master}`,
      'litellm_settings:',
      '  telemetry: false',
      '',
    ].join('\n'),
  );
  const child = spawn('taskset', ['-c', String(core), installed.path, '--config', config, '--port', String(port), '--host', '127.0.0.1', '--num_workers', '1'], {
    env: { ...process.env, LITELLM_LOG: 'ERROR', LITELLM_TELEMETRY: 'False', DISABLE_ADMIN_UI: 'True' },
    stdio: 'ignore',
  });
  const down = await until(`http://127.0.0.1:${port}/health/liveliness`, 120_000, child);
  if (down) {
    child.kill('SIGKILL');
    return { ok: false, name: 'LiteLLM', reason: down };
  }
  return { ok: true, peer: { name: 'LiteLLM', version: PEER_VERSIONS.litellm, process: child, pid: child.pid ?? null, base: `http://127.0.0.1:${port}/v1`, key: master, headers: {} } };
}
