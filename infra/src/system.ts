import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { InfraError } from './errors.js';
import { repoRoot } from './profile.js';

/** What install steps ask of the machine; tests pass their own to play a bare machine. */
export interface SystemProbe {
  isRoot(): boolean;
  which(command: string): string | null;
  run(command: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; quiet?: boolean }): { status: number; output: string };
  log(line: string): void;
}

export const realSystem: SystemProbe = {
  isRoot: () => process.getuid?.() === 0,
  which(command) {
    // Debian puts servers in /usr/sbin, which a non-login PATH may lack.
    const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
    for (const dir of dirs) {
      if (!dir) continue;
      const full = join(dir, command);
      try {
        accessSync(full, constants.X_OK);
        return full;
      } catch {
        // keep looking
      }
    }
    return null;
  },
  run(command, args, opts = {}) {
    const r = spawnSync(command, args, {
      env: opts.env ?? process.env,
      encoding: 'utf8',
      stdio: opts.quiet === false ? 'inherit' : 'pipe',
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status ?? (r.error ? 127 : 1), output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
  },
  log: (line) => console.log(line),
};

export interface DebPackage {
  name: string;
  /** The binary (or, as an absolute path, the file) whose presence means the package is there. */
  binary: string;
}

export const serverPackages: DebPackage[] = [
  { name: 'redis-server', binary: 'redis-server' },
  { name: 'clickhouse-server', binary: 'clickhouse-server' },
];

/** Tools only the test suite needs: validating the compose file without a Docker engine, a browser for the web pages. */
export const browserPackages: DebPackage[] = [{ name: 'chromium', binary: 'chromium' }];
export const testPackages: DebPackage[] = [{ name: 'docker-compose', binary: 'docker-compose' }, ...browserPackages];

/** Screenshots in Chinese need a CJK font; the tests themselves read text, not pixels. */
export const screenshotPackages: DebPackage[] = [{ name: 'fonts-noto-cjk', binary: '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc' }];

let aptUpdated = false;

/** Installs only the packages whose binaries are missing; needs root and apt-get for that. */
export function ensureDebPackages(packages: DebPackage[], sys: SystemProbe = realSystem): void {
  const absent = (p: DebPackage) => (p.binary.startsWith('/') ? !existsSync(p.binary) : sys.which(p.binary) === null);
  const missing = packages.filter(absent);
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name).join(' ');
  if (!sys.which('apt-get')) {
    throw new InfraError('APT_UNAVAILABLE', `missing: ${names}. This machine has no apt-get; install them with its package manager and run again.`);
  }
  if (!sys.isRoot()) {
    throw new InfraError('APT_UNAVAILABLE', `missing: ${names}. Installing them needs root: run \`sudo apt-get update && sudo apt-get install -y ${names}\`, or run this command as root.`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    sys.log('[infra] apt-get update');
    const update = sys.run('apt-get', ['update', '-q'], { env });
    if (update.status !== 0) throw new InfraError('INSTALL_FAILED', `apt-get update failed:\n${update.output.slice(-2000)}`);
    aptUpdated = true;
  }
  sys.log(`[infra] apt-get install ${names}`);
  const install = sys.run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing.map((p) => p.name)], { env });
  if (install.status !== 0) throw new InfraError('INSTALL_FAILED', `apt-get install ${names} failed:\n${install.output.slice(-2000)}`);
  const still = missing.filter(absent);
  if (still.length) throw new InfraError('INSTALL_FAILED', `installed ${names}, but ${still.map((p) => p.binary).join(', ')} is still not on PATH`);
}

export function javaMajor(versionOutput: string): number | null {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return null;
  const first = Number(m[1]);
  return first === 1 ? Number(m[2]) : first; // "1.8.0" is Java 8
}

/** Kafka 3.9 needs Java 11+; we require the machine's 17. Installs it as root when missing. */
export function ensureJava(sys: SystemProbe = realSystem): string {
  const found = () => {
    const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : sys.which('java');
    if (!java || (process.env.JAVA_HOME && !existsSync(java))) return null;
    const r = sys.run(java, ['-version']);
    const major = r.status === 0 ? javaMajor(r.output) : null;
    return major !== null && major >= 17 ? java : null;
  };
  const java = found();
  if (java) return java;
  if (!sys.isRoot() || !sys.which('apt-get')) {
    throw new InfraError('JAVA_MISSING', 'Kafka needs Java 17 or newer, and none was found (PATH, JAVA_HOME). Install it, e.g. `sudo apt-get install -y openjdk-17-jre-headless`, and run again.');
  }
  ensureDebPackages([{ name: 'openjdk-17-jre-headless', binary: 'java' }], sys);
  const after = found();
  if (!after) throw new InfraError('JAVA_MISSING', 'installed openjdk-17-jre-headless, but `java -version` still does not report 17+');
  return after;
}

export const kafkaPom = join(repoRoot, 'infra', 'kafka', 'pom.xml');

export function kafkaLibsDir(home: string): string {
  const pomHash = createHash('sha256').update(readFileSync(kafkaPom)).digest('hex').slice(0, 12);
  return join(home, 'cache', `kafka-${pomHash}`, 'libs');
}

/**
 * Resolves the Kafka jars with Maven into a folder keyed by the pom's hash. The folder is
 * filled beside its final name and renamed into place, so a cut run never leaves half a
 * classpath that a later run would trust.
 */
export function ensureKafkaJars(home: string, sys: SystemProbe = realSystem): string {
  const libs = kafkaLibsDir(home);
  if (existsSync(join(libs, '.complete'))) return libs;
  if (!sys.which('mvn')) {
    if (!sys.isRoot() || !sys.which('apt-get')) {
      throw new InfraError('INSTALL_FAILED', 'Maven (mvn) is needed to fetch Kafka from Maven Central: `sudo apt-get install -y maven`.');
    }
    ensureDebPackages([{ name: 'maven', binary: 'mvn' }], sys);
  }
  const partial = `${libs}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  sys.log('[infra] resolving Apache Kafka from Maven Central (first run only)');
  const r = sys.run('mvn', ['-q', '-B', '-f', kafkaPom, 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`, '-DincludeScope=runtime']);
  if (r.status !== 0) throw new InfraError('INSTALL_FAILED', `Maven could not resolve Kafka:\n${r.output.slice(-3000)}`);
  if (!readdirSync(partial).some((f) => /^kafka_2\.13-.*\.jar$/.test(f))) {
    throw new InfraError('INSTALL_FAILED', `Maven finished but no kafka_2.13 jar is in ${partial}`);
  }
  writeFileSync(join(partial, '.complete'), new Date().toISOString());
  rmSync(libs, { recursive: true, force: true });
  renameSync(partial, libs);
  return libs;
}

export interface Installed {
  java: string;
  kafkaLibs: string;
}

/** Every install step, each a no-op when its piece is already there. */
export function ensureInstalled(home: string, sys: SystemProbe = realSystem): Installed {
  ensureDebPackages(serverPackages, sys);
  const java = ensureJava(sys);
  const kafkaLibs = ensureKafkaJars(home, sys);
  return { java, kafkaLibs };
}
