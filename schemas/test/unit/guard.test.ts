import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runtime = fileURLToPath(new URL('../../src/runtime.js', import.meta.url));

/** Runs a script with the guard installed; returns its exit code and what it printed. */
function guarded(body: string) {
  const script = `
    import { guardProcess } from ${JSON.stringify(runtime)};
    const log = { error: (o, m) => console.log('error:', m), fatal: (o, m) => console.log('fatal:', m) };
    guardProcess(log, async () => { console.log('drained'); }, () => console.log('counted'));
    ${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, out: r.stdout };
}

describe('the process guard', () => {
  it('logs an unhandled rejection and keeps serving', () => {
    const r = guarded(`Promise.reject(new Error('nobody awaited me')); setTimeout(() => { console.log('still serving'); process.exit(0); }, 200);`);
    assert.equal(r.code, 0);
    assert.match(r.out, /counted\nerror: unhandled promise rejection[^\n]*\nstill serving/);
  });

  it('drains and exits non-zero on an uncaught exception, for the supervisor to restart it', () => {
    const r = guarded(`setTimeout(() => { throw new Error('half-changed state'); }, 10); setInterval(() => {}, 1000);`);
    assert.equal(r.code, 1);
    assert.match(r.out, /fatal: uncaught exception[^\n]*\ndrained/);
  });
});
