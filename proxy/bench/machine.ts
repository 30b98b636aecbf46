/**
 * What the machine itself does to latency, measured beside the proxies so the table can
 * tell the proxy's added time from the machine's.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * Asks the kernel to keep every core out of idle states (a PM QoS request of 0 µs, held
 * while the file stays open, as tuned's latency-performance profile does). On a VM an idle
 * vCPU halts and exits to the hypervisor; waking it costs tens of µs per hop, which a
 * proxy doubles. Returns the release, or null when not permitted (not root, no such file).
 */
export function holdCpuIdleLatency(): (() => void) | null {
  try {
    const fd = openSync('/dev/cpu_dma_latency', 'w');
    const zero = Buffer.alloc(4);
    writeSync(fd, zero);
    return () => closeSync(fd);
  } catch {
    return null;
  }
}

export interface Pauses {
  core: number;
  /** Pauses longer than 0.5 ms of a thread that never yields: time the core was taken away. */
  perSecond: number;
  medianMs: number;
  maxMs: number;
}

// A loop that only reads the clock: any gap between two readings is time it did not run.
const SPIN = `const end = Date.now() + Number(process.argv[1]); let last = process.hrtime.bigint(); const gaps = [];
while (Date.now() < end) { const t = process.hrtime.bigint(); const g = Number(t - last) / 1e6; if (g > 0.5) gaps.push(g); last = t; }
process.stdout.write(JSON.stringify(gaps));`;

/** Spins one process on each core at once for `ms` and reports the pauses each saw. */
export async function measurePauses(cores: number[], ms: number): Promise<Pauses[]> {
  return Promise.all(
    cores.map(
      (core) =>
        new Promise<Pauses>((resolve, reject) => {
          const child = spawn('taskset', ['-c', String(core), process.execPath, '-e', SPIN, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.once('error', reject);
          child.once('exit', (code) => {
            if (code !== 0) return reject(new Error(`pause probe on core ${core} exited with ${code}`));
            const gaps = (JSON.parse(out) as number[]).sort((a, b) => a - b);
            resolve({ core, perSecond: gaps.length / (ms / 1000), medianMs: gaps[Math.floor(gaps.length / 2)] ?? 0, maxMs: gaps[gaps.length - 1] ?? 0 });
          });
        }),
    ),
  );
}
