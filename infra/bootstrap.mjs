#!/usr/bin/env node
// The first thing `npm start` and `npm test` run, on a fresh clone before any `npm install`,
// so it uses Node's built-ins only: install dependencies from the lockfile, build every
// package, then hand over to infra's CLI (which installs and starts the servers).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const [command = 'help', ...rest] = process.argv.slice(2);

function fail(message) {
  console.error(`\n[bootstrap] ${message}`);
  process.exit(1);
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' } });
  if (r.error) fail(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal})`);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) fail(`Node.js 20.18 or newer is required; this is ${process.version}`);

// npm ci when node_modules is missing or older than the lockfile: fresh clones and pulls.
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(lock)) fail('package-lock.json is missing; the repository is incomplete');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('[bootstrap] npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund'], 'npm ci');
}

console.log('[bootstrap] building');
run(process.execPath, [join(root, 'node_modules', 'turbo', 'bin', 'turbo'), 'run', 'build', '--ui=stream', '--output-logs=errors-only'], 'build');

// The CLI owns stopping from here: it stops what it started, then exits; we wait for that.
// Signals sent to this process alone (a process manager, `kill`) are passed on to it.
const cli = join(root, 'infra', 'dist', 'src', 'cli.js');
const args = command === 'infra' ? rest : [command, ...rest];
const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
