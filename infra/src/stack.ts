import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { InfraError } from './errors.js';
import { portIsFree } from './net.js';
import { isOurs, readPid, startDetached, stopByPidFile, tail } from './proc.js';
import { endpointsOf, type Endpoints, type Profile } from './profile.js';
import { clickhouseService } from './services/clickhouse.js';
import { kafkaService } from './services/kafka.js';
import { redisService } from './services/redis.js';
import { serviceDir, type ServiceDef } from './services/service.js';
import { ensureInstalled, realSystem, type Installed, type SystemProbe } from './system.js';

export type ServiceState = { name: string; running: boolean; pid: number | null; address: string; log: string };

export function stackServices(profile: Profile, installed: Pick<Installed, 'java' | 'kafkaLibs'>): ServiceDef[] {
  return [redisService(profile), clickhouseService(profile), kafkaService(profile, installed.java, installed.kafkaLibs)];
}

/**
 * Starts one service unless it already runs, then waits for its health check. A port held
 * by someone else, an early exit or a timeout fail with the log's last lines.
 */
export async function startService(def: ServiceDef, log: (line: string) => void = console.log): Promise<'started' | 'already-running'> {
  const pid = readPid(def.pidFile);
  if (pid !== null && isOurs(pid, def.markers)) {
    if (await def.healthy()) return 'already-running';
  }
  for (const { name, port } of def.ports) {
    if (!(await portIsFree(port))) {
      throw new InfraError(
        'PORT_IN_USE',
        `port ${port} (${name}) is already in use by another process. Stop that process or choose another port (see "Configuration" in the README: YUGONG_<PROFILE>_*_PORT).`,
      );
    }
  }
  def.prepare();
  const { command, args, env } = def.command();
  const started = startDetached({ command, args, env, logFile: def.logFile, pidFile: def.pidFile });
  let exitCode: number | null | undefined;
  void started.exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + def.healthTimeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new InfraError('EXITED', `${def.name} exited (code ${exitCode}) before it became healthy. Last lines of ${def.logFile}:\n${tail(def.logFile)}`);
    }
    if (await def.healthy()) {
      log(`[infra] ${def.name.padEnd(10)} ${def.address.padEnd(28)} log: ${def.logFile}`);
      return 'started';
    }
    await sleep(200);
  }
  await stopByPidFile(def.pidFile, def.markers, 5_000);
  throw new InfraError('UNHEALTHY', `${def.name} did not become healthy within ${Math.round(def.healthTimeoutMs / 1000)} s. Last lines of ${def.logFile}:\n${tail(def.logFile)}`);
}

/** Stops the services (last first) and deletes their folders: a cluster that starts from nothing. */
export async function wipeServices(profile: Profile, defs: ServiceDef[], graceMs: number): Promise<void> {
  for (const def of [...defs].reverse()) {
    await stopByPidFile(def.pidFile, def.markers, graceMs);
    rmSync(serviceDir(profile, def.name).dir, { recursive: true, force: true });
  }
}

export interface UpOptions {
  /** Wipe the profile's data first (the test stack starts from nothing every run). */
  fresh?: boolean;
  /** Start only these services (the clustered stack runs its own Redis and Kafka). */
  only?: string[];
  sys?: SystemProbe;
  log?: (line: string) => void;
}

export async function up(profile: Profile, opts: UpOptions = {}): Promise<Endpoints> {
  const log = opts.log ?? console.log;
  const installed = ensureInstalled(profile.home, opts.sys ?? realSystem);
  const services = stackServices(profile, installed).filter((s) => !opts.only || opts.only.includes(s.name));
  if (opts.fresh) {
    await down(profile, installed);
    rmSync(profile.dir, { recursive: true, force: true });
  }
  const started: ServiceDef[] = [];
  try {
    for (const def of services) {
      if ((await startService(def, log)) === 'started') started.push(def);
    }
  } catch (err) {
    // Leave nothing half-started behind.
    for (const def of started.reverse()) await stopByPidFile(def.pidFile, def.markers);
    throw err;
  }
  return endpointsOf(profile);
}

/** Stops exactly the processes recorded in this profile's PID files, last started first. */
export async function down(profile: Profile, installed?: Pick<Installed, 'java' | 'kafkaLibs'>): Promise<string[]> {
  const stopped: string[] = [];
  for (const def of stackServices(profile, installed ?? { java: 'java', kafkaLibs: '' }).reverse()) {
    if ((await stopByPidFile(def.pidFile, def.markers)) === 'stopped') stopped.push(def.name);
  }
  return stopped;
}

export function status(profile: Profile): ServiceState[] {
  return stackServices(profile, { java: 'java', kafkaLibs: '' }).map((def) => {
    const pid = readPid(def.pidFile);
    const running = pid !== null && isOurs(pid, def.markers);
    return { name: def.name, running, pid: running ? pid : null, address: def.address, log: def.logFile };
  });
}
