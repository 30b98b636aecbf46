import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import { loadProfile, readPid, repoRoot, stackServices } from '@yugong/infra';

/** Runs this script again pinned to `core` (the load generator's), unless it already is. */
export function pinToCore(core: number): void {
  if (process.env.YUGONG_BENCH_PINNED) return;
  const r = spawnSync('taskset', ['-c', String(core), process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, YUGONG_BENCH_PINNED: '1' } });
  process.exit(r.status ?? 1);
}

/** Moves the test stack's servers (and all their threads) to `core`: everything but the proxy under test goes there. */
export function moveStackToCore(core: number): void {
  for (const def of stackServices(loadProfile('test'), { java: 'java', kafkaLibs: '' })) {
    const pid = readPid(def.pidFile);
    if (pid) spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  }
}

/** Every process a benchmark started; they end with the run. */
export const children: ChildProcess[] = [];

/** A Node script, of the repository or at an absolute path, pinned to one core (taskset). */
export function start(name: string, script: string, core: number, env: Record<string, string>, args: string[] = []): ChildProcess {
  // YUGONG_BENCH_PROFILE=<dir> writes a CPU profile of the proxy under test.
  const profile = name === 'proxy' && process.env.YUGONG_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.YUGONG_BENCH_PROFILE}`] : [];
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...profile, resolve(repoRoot, script), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  child.once('exit', (code) => {
    if (code !== null && code !== 0) console.error(`${name} exited with ${code}`);
  });
  children.push(child);
  return child;
}

/** Resolves once the URL answers 2xx. */
export async function until(url: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

/** CPU seconds a process has used (all its threads), from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export interface LoadTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The process whose CPU each request costs, when it is ours to read. */
  pid: number | null;
}

/** Requests/s at 64 connections for `seconds`, with p99 (ms), failures and CPU µs per request. */
export async function throughput(t: LoadTarget, seconds: number): Promise<{ rps: number; p99: number; errors: number; cpuUs: number }> {
  const before = t.pid ? cpuSeconds(t.pid) : 0;
  const r = await autocannon({ url: t.url, method: 'POST', connections: 64, duration: seconds, headers: t.headers, body: t.body });
  const cpu = t.pid ? cpuSeconds(t.pid) - before : 0;
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx, cpuUs: (cpu * 1e6) / Math.max(1, r.requests.total) };
}

/** A new account with $1,000,000 and a key for it, made through a proxy's admin API; returns the key. */
export async function fundedBenchKey(proxyUrl: string, adminToken: string, accountId: string): Promise<string> {
  const admin = (path: string, body: unknown) =>
    fetch(`${proxyUrl}/admin/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<Record<string, string>>,
    );
  await admin('/accounts', { id: accountId });
  await admin(`/accounts/${accountId}/credits`, { amount_usd: '1000000', idempotency_key: accountId });
  return (await admin(`/accounts/${accountId}/keys`, { name: 'bench' })).key ?? '';
}

/** Runs a benchmark's main; whatever ends the run, the servers it started end with it (they would hold the ports of the next run). */
export function runBench(main: () => Promise<void>): void {
  process.once('uncaughtException', (err) => {
    console.error(err);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      for (const c of children) c.kill('SIGKILL');
      process.exit(1);
    },
  );
}
