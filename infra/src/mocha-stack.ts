/**
 * Mocha global fixture for integration suites (`mocha --require @yugong/infra/mocha-stack`):
 * brings up (or finds) the test stack once per run and publishes its URLs as YUGONG_* variables.
 */
import { acquireTestStack, exportEndpoints, type TestStack } from './test-stack.js';

let stack: TestStack | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  stack = await acquireTestStack();
  exportEndpoints(stack.endpoints);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await stack?.release();
}
