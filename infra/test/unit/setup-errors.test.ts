import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfraError } from '../../src/errors.js';
import { ensureDebPackages, ensureJava, javaMajor, type SystemProbe } from '../../src/system.js';
import { startService } from '../../src/stack.js';
import { isOurs, readPid, startDetached, stopByPidFile } from '../../src/proc.js';
import type { ServiceDef } from '../../src/services/service.js';
import { loadProfile } from '../../src/profile.js';

/** A machine with only the given binaries, as root or not; records what it was asked to run. */
function fakeMachine(binaries: string[], root: boolean): SystemProbe & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    isRoot: () => root,
    which: (cmd) => (binaries.includes(cmd) ? `/usr/bin/${cmd}` : null),
    run: (cmd, args) => {
      ran.push([cmd, ...args].join(' '));
      return { status: 0, output: '' };
    },
    log: () => undefined,
  };
}

function expectInfraError(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InfraError, `expected InfraError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

async function expectInfraRejection(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof InfraError, `expected InfraError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'yugong-infra-'));
}

/** A stand-in server: a node process that prints a line and never answers its health check. */
function fakeService(dir: string, over: Partial<ServiceDef> = {}): ServiceDef {
  const script = join(dir, 'fake-server.cjs');
  writeFileSync(script, "console.log('fake server: cannot open data directory'); setInterval(() => {}, 1000);\n");
  return {
    name: 'fake',
    ports: [],
    markers: [script],
    logFile: join(dir, 'fake.log'),
    pidFile: join(dir, 'fake.pid'),
    prepare: () => undefined,
    command: () => ({ command: process.execPath, args: [script] }),
    healthy: async () => false,
    healthTimeoutMs: 1500,
    address: 'fake://',
    ...over,
  };
}

describe('bad setups fail with a clear message', () => {
  it('names the apt command when packages are missing and we are not root', () => {
    const sys = fakeMachine(['apt-get'], false);
    expectInfraError(
      () => ensureDebPackages([{ name: 'redis-server', binary: 'redis-server' }], sys),
      'APT_UNAVAILABLE',
      /needs root: run `sudo apt-get update && sudo apt-get install -y redis-server`/,
    );
    assert.deepEqual(sys.ran, []);
  });

  it('says so when there is no apt-get at all', () => {
    expectInfraError(() => ensureDebPackages([{ name: 'clickhouse-server', binary: 'clickhouse-server' }], fakeMachine([], true)), 'APT_UNAVAILABLE', /no apt-get/);
  });

  it('installs only what is missing, and nothing when all is present', () => {
    const present = fakeMachine(['redis-server', 'clickhouse-server', 'apt-get'], true);
    ensureDebPackages(
      [
        { name: 'redis-server', binary: 'redis-server' },
        { name: 'clickhouse-server', binary: 'clickhouse-server' },
      ],
      present,
    );
    assert.deepEqual(present.ran, []);
  });

  it('explains how to get Java when it is missing', () => {
    const saved = process.env.JAVA_HOME;
    delete process.env.JAVA_HOME;
    try {
      expectInfraError(() => ensureJava(fakeMachine([], false)), 'JAVA_MISSING', /Java 17 or newer.*openjdk-17-jre-headless/);
    } finally {
      if (saved !== undefined) process.env.JAVA_HOME = saved;
    }
  });

  it('reads Java major versions old and new', () => {
    assert.equal(javaMajor('openjdk version "17.0.15" 2025-04-15'), 17);
    assert.equal(javaMajor('java version "1.8.0_402"'), 8);
    assert.equal(javaMajor('nothing'), null);
  });

  it('refuses a port that another process holds', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const def = fakeService(scratch(), { ports: [{ name: 'redis', port }] });
      await expectInfraRejection(
        startService(def, () => undefined),
        'PORT_IN_USE',
        new RegExp(`port ${port} \\(redis\\) is already in use`),
      );
      assert.equal(readPid(def.pidFile), null, 'nothing was started');
    } finally {
      server.close();
    }
  });

  it('stops a service that never becomes healthy and shows its log tail', async () => {
    const def = fakeService(scratch());
    await expectInfraRejection(
      startService(def, () => undefined),
      'UNHEALTHY',
      /did not become healthy[\s\S]*cannot open data directory/,
    );
    const pid = readPid(def.pidFile);
    assert.ok(pid === null || !isOurs(pid, def.markers), 'the unhealthy process was stopped');
  });

  it('reports a service that exits before it is healthy', async () => {
    const dir = scratch();
    const script = join(dir, 'crash.cjs');
    writeFileSync(script, "console.error('fatal: config error'); process.exitCode = 3;\n");
    const def = fakeService(dir, { markers: [script], command: () => ({ command: process.execPath, args: [script] }), healthTimeoutMs: 10_000 });
    await expectInfraRejection(
      startService(def, () => undefined),
      'EXITED',
      /exited \(code 3\)[\s\S]*fatal: config error/,
    );
  });

  it('rejects a port variable that is not a port', () => {
    expectInfraError(() => loadProfile('test', { YUGONG_TEST_REDIS_PORT: 'abc' }), 'BAD_CONFIG', /YUGONG_TEST_REDIS_PORT=abc/);
    assert.equal(loadProfile('test', { YUGONG_TEST_REDIS_PORT: '4242' }).ports.redis, 4242);
  });
});

describe('stop ends exactly the processes it started', () => {
  it('kills the recorded PID and leaves another process alone', async () => {
    const dir = scratch();
    const script = join(dir, 'sleeper.cjs');
    writeFileSync(script, 'setInterval(() => {}, 1000);\n');
    const ours = startDetached({ command: process.execPath, args: [script, 'ours'], logFile: join(dir, 'a.log'), pidFile: join(dir, 'a.pid') });
    const other = startDetached({ command: process.execPath, args: [script, 'other'], logFile: join(dir, 'b.log'), pidFile: join(dir, 'b.pid') });
    try {
      assert.equal(await stopByPidFile(join(dir, 'a.pid'), [`${script} ours`]), 'stopped');
      assert.equal(isOurs(ours.pid, [script]), false);
      assert.equal(isOurs(other.pid, [script]), true);
      // A PID file pointing at a process that is not ours (wrong marker) is not acted on.
      writeFileSync(join(dir, 'c.pid'), `${other.pid}\n`);
      assert.equal(await stopByPidFile(join(dir, 'c.pid'), ['someone-else']), 'not-running');
      assert.equal(isOurs(other.pid, [script]), true);
    } finally {
      await stopByPidFile(join(dir, 'b.pid'), [script]);
    }
  });
});
