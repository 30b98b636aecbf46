import { InfraError } from './errors.js';
import { endpointsFromEnv, endpointsToEnv, loadProfile, type Endpoints } from './profile.js';
import { down, status, up } from './stack.js';

export type InfraMode = 'local' | 'external' | 'containers';

export interface TestStack {
  endpoints: Endpoints;
  /** Stops what this acquisition started, and nothing else. */
  release(): Promise<void>;
}

export function infraMode(env: NodeJS.ProcessEnv = process.env): InfraMode {
  const mode = env.YUGONG_INFRA ?? 'local';
  if (mode === 'local' || mode === 'external' || mode === 'containers') return mode;
  throw new InfraError('BAD_CONFIG', `YUGONG_INFRA=${mode}: expected local, external or containers`);
}

/**
 * The servers integration tests run against. `local` (the default) runs the real servers
 * as processes on the test profile's own ports and data folder, reusing a stack the root
 * `npm test` already started; `external` takes URLs from the environment; `containers` asks
 * a reachable Docker engine through testcontainers.
 */
export async function acquireTestStack(env: NodeJS.ProcessEnv = process.env): Promise<TestStack> {
  const mode = infraMode(env);
  if (mode === 'external') return { endpoints: endpointsFromEnv(env), release: async () => undefined };
  if (mode === 'containers') {
    const { startContainers } = await import('./containers.js');
    return startContainers();
  }
  const profile = loadProfile('test', env);
  if (status(profile).every((s) => s.running)) {
    return { endpoints: await up(profile, { log: () => undefined }), release: async () => undefined };
  }
  const endpoints = await up(profile, { fresh: true });
  return {
    endpoints,
    release: async () => {
      await down(profile);
    },
  };
}

export function exportEndpoints(endpoints: Endpoints, env: NodeJS.ProcessEnv = process.env): void {
  Object.assign(env, endpointsToEnv(endpoints));
}

/** Polls `probe` until it returns a value (not null, undefined or false), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
