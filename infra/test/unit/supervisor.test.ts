import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Supervisor, type Supervised } from '../../src/supervisor.js';

/** A service that says "ready" on stdout, then exits with `code` after `lifeMs` (never, if null). */
function service(name: string, lifeMs: number | null, code = 1, readyAfterMs = 0): Supervised & { starts: number } {
  const spec = {
    name,
    starts: 0,
    start(): ChildProcess {
      spec.starts++;
      const script = `setTimeout(() => console.log('ready'), ${readyAfterMs}); ${lifeMs === null ? 'setInterval(() => {}, 1000);' : `setTimeout(() => process.exit(${code}), ${lifeMs});`}`;
      return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    },
    ready(child: ChildProcess): Promise<void> {
      return new Promise((resolve, reject) => {
        child.stdout?.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
        child.once('exit', (c) => reject(new Error(`${name} exited (code ${c}) before it was ready`)));
      });
    },
    logTail: () => '(log)',
  };
  return spec;
}

const alive = (pid: number | undefined) => {
  try {
    process.kill(pid ?? -1, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the dev supervisor', function () {
  this.timeout(20_000);

  it('restarts a service that exits unexpectedly, waiting longer each time, and says so', async () => {
    const lines: string[] = [];
    const s = new Supervisor({ say: (l) => lines.push(l), initialDelayMs: 100, maxDelayMs: 400, resetAfterMs: 60_000, stopGraceMs: 2000 });
    const crashing = service('crashing', 200);
    const steady = service('steady', null);
    await s.add(crashing);
    await s.add(steady);
    const steadyPid = s.status()[1]?.pid;
    await new Promise((r) => setTimeout(r, 2500));
    await s.stop();
    assert.ok(crashing.starts >= 3, `started ${crashing.starts} times`);
    const delays = lines.filter((l) => l.includes('crashing exited')).map((l) => Number(/restarting in ([\d.]+) s/.exec(l)?.[1]));
    assert.deepEqual(delays.slice(0, 3), [0.1, 0.2, 0.4], lines.join('\n'));
    assert.ok(
      delays.every((d) => d <= 0.4),
      'the delay is capped',
    );
    assert.ok(lines.some((l) => l.includes('crashing is back')));
    assert.equal(steady.starts, 1, 'a crash of one service leaves the others alone');
    assert.equal(s.status()[1]?.pid, steadyPid);
    assert.ok(
      s.status().every((e) => !alive(e.pid)),
      'stop ends every service',
    );
  });

  it('never restarts anything once stopped', async () => {
    const lines: string[] = [];
    const s = new Supervisor({ say: (l) => lines.push(l), initialDelayMs: 50, stopGraceMs: 2000 });
    const svc = service('svc', null);
    await s.add(svc);
    await s.stop();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(svc.starts, 1);
    assert.deepEqual(lines, []);
  });

  it('reports a service that cannot start, so the caller can stop the stack', async () => {
    const s = new Supervisor({ say: () => undefined, stopGraceMs: 2000 });
    await assert.rejects(s.add(service('broken', 0, 3, 500)), /broken exited \(code 3\) before it was ready/);
    await s.stop();
  });
});
