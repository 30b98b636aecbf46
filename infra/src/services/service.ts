import { join } from 'node:path';
import type { Profile } from '../profile.js';

/** One server the stack runs; the generic loop in stack.ts starts, checks and stops it. */
export interface ServiceDef {
  name: string;
  ports: { name: string; port: number }[];
  /** Strings of which one must be in the process' command line to prove a PID is ours. */
  markers: string[];
  logFile: string;
  pidFile: string;
  /** Writes config and data folders; formats storage on first run. Idempotent. */
  prepare(): void;
  command(): { command: string; args: string[]; env?: NodeJS.ProcessEnv };
  healthy(): Promise<boolean>;
  healthTimeoutMs: number;
  /** Where it listens, for the operator. */
  address: string;
}

export function serviceDir(profile: Profile, name: string) {
  const dir = join(profile.dir, name);
  return {
    dir,
    data: join(dir, 'data'),
    logFile: join(dir, `${name}.log`),
    pidFile: join(dir, `${name}.pid`),
  };
}
