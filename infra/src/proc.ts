import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Started {
  pid: number;
  /** Resolves with the exit code if the process ends (used to fail health waits early). */
  exited: Promise<number | null>;
}

/**
 * Starts a server in its own process group with output appended to its log, and records
 * its PID. It is not tied to this process: `stop` ends it by that PID.
 */
export function startDetached(opts: { command: string; args: string[]; logFile: string; pidFile: string; cwd?: string; env?: NodeJS.ProcessEnv }): Started {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  mkdirSync(dirname(opts.pidFile), { recursive: true });
  const log = openSync(opts.logFile, 'a');
  try {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(-1));
    });
    if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
    child.unref();
    writeFileSync(opts.pidFile, `${child.pid}\n`);
    return { pid: child.pid, exited };
  } finally {
    closeSync(log);
  }
}

export function readPid(pidFile: string): number | null {
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Alive and still ours: a recycled PID that now belongs to another program is not ours, so
 * its command line must mention our marker (the config file path).
 */
export function isOurs(pid: number, markers: string[]): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return markers.some((m) => cmdline.includes(m));
  } catch {
    return false;
  }
}

/** Ends exactly the process recorded in the PID file: TERM, then KILL after the grace period. */
export async function stopByPidFile(pidFile: string, markers: string[], graceMs = 20_000): Promise<'stopped' | 'not-running'> {
  const pid = readPid(pidFile);
  if (pid === null || !isOurs(pid, markers)) {
    rmSync(pidFile, { force: true });
    return 'not-running';
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurs(pid, markers)) break;
    await sleep(100);
  }
  if (isOurs(pid, markers)) {
    process.kill(pid, 'SIGKILL');
    while (isOurs(pid, markers)) await sleep(50);
  }
  rmSync(pidFile, { force: true });
  return 'stopped';
}

export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log written)';
  const text = readFileSync(file, 'utf8');
  return (
    text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd() || '(log is empty)'
  );
}

/** Ends the process recorded in the PID file with SIGKILL, as a crash would, and waits until it is gone. */
export async function killByPidFile(pidFile: string, markers: string[]): Promise<void> {
  const pid = readPid(pidFile);
  if (pid === null || !isOurs(pid, markers)) return;
  process.kill(pid, 'SIGKILL');
  while (isOurs(pid, markers)) await sleep(50);
}
