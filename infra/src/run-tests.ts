import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { endpointsToEnv, loadProfile, repoRoot } from './profile.js';
import { down, up } from './stack.js';
import { ensureDebPackages, testPackages } from './system.js';

export interface TestTotals {
  passed: number;
  failed: number;
  skipped: number;
}

/** Sums mocha's closing lines ("12 passing", "1 failing", "2 pending") over every suite. */
export function countMochaTotals(output: string): TestTotals {
  const totals: TestTotals = { passed: 0, failed: 0, skipped: 0 };
  for (const m of output.matchAll(/(?:^|\s)(\d+) (passing|failing|pending)\b/gm)) {
    const n = Number(m[1]);
    if (m[2] === 'passing') totals.passed += n;
    else if (m[2] === 'failing') totals.failed += n;
    else totals.skipped += n;
  }
  return totals;
}

/**
 * `npm test`: a fresh test stack on its own ports, every package's unit and integration
 * suites through turbo against it, then the stack stopped whatever happened.
 */
export async function runAllTests(turboArgs: string[] = []): Promise<number> {
  const profile = loadProfile('test');
  let stopping: Promise<void> | null = null;
  // One stop, however many signals arrive.
  const stop = () =>
    (stopping ??= (async () => {
      const stopped = await down(profile);
      if (stopped.length) console.log(`[infra] stopped test stack: ${stopped.join(', ')}`);
    })());
  const onSignal = () => {
    void stop().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    ensureDebPackages(testPackages);
    const endpoints = await up(profile, { fresh: true });
    const env = {
      ...process.env,
      ...endpointsToEnv(endpoints),
      YUGONG_INFRA: 'external',
      TURBO_TELEMETRY_DISABLED: '1',
      DO_NOT_TRACK: '1',
    };
    const turbo = join(repoRoot, 'node_modules', '.bin', 'turbo');
    // Lint and format first: a style slip fails fast, before the servers' long tests.
    const args = ['run', 'lint', 'test:unit', 'test:integration', '--concurrency=1', '--ui=stream', '--log-order=grouped', ...turboArgs];
    let output = '';
    const code = await new Promise<number>((resolve) => {
      const child = spawn(turbo, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => {
        process.stdout.write(d);
        output += d.toString('utf8');
      });
      child.stderr.on('data', (d: Buffer) => {
        process.stderr.write(d);
        output += d.toString('utf8');
      });
      child.on('exit', (c) => resolve(c ?? 1));
    });
    const totals = countMochaTotals(output);
    console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
    return code !== 0 || totals.failed > 0 ? 1 : 0;
  } finally {
    await stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
