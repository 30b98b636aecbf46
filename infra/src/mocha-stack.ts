/**
 * Mocha global fixture for integration suites (`mocha --require @yugong/infra/mocha-stack`):
 * brings up (or finds) the test stack once per run and publishes its URLs as YUGONG_* variables.
 */
import { Socket } from 'node:net';
import { acquireTestStack, exportEndpoints, type TestStack } from './test-stack.js';

let stack: TestStack | undefined;

/** How long a finished run may wait for its last sockets to close before it is reported and ended. */
const LINGER_MS = 15_000;

export async function mochaGlobalSetup(): Promise<void> {
  stack = await acquireTestStack();
  exportEndpoints(stack.endpoints);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await stack?.release();
  // A client a suite forgot to close keeps the process alive and would hang CI until its
  // deadline: name what is still open, then end with the suites' own exit code (mocha sets it as the process exits).
  setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    // Which peer a socket talks to is what names the client left open (Redis, Kafka, a mock).
    const sockets = (process as unknown as { _getActiveHandles(): unknown[] })
      ._getActiveHandles()
      .filter((h): h is Socket => h instanceof Socket && h.remotePort !== undefined)
      .map((s) => `${s.localPort ?? '?'}→${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`);
    console.error(
      `[infra] the run finished but ${open.length} resource(s) stayed open after ${LINGER_MS / 1000} s: ${open.join(', ')}${sockets.length ? ` (sockets ${sockets.join(', ')})` : ''}; exiting`,
    );
    process.exit();
  }, LINGER_MS).unref();
}
