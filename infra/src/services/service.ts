import { writeFileSync } from 'node:fs';
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

/** What proves a PID is the service's, and where its log and PID go. */
export function serviceFiles(d: ReturnType<typeof serviceDir>, markers: string[]): Pick<ServiceDef, 'markers' | 'logFile' | 'pidFile'> {
  return { markers, logFile: d.logFile, pidFile: d.pidFile };
}

/** A log4j 1 configuration for a JVM server (Kafka, ZooKeeper): warnings and up to the console (its log file), plus `extra` lines. */
export function writeLog4j(file: string, extra: string[] = []): void {
  writeFileSync(
    file,
    [
      'log4j.rootLogger=WARN, stdout',
      ...extra,
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
}
