import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Supervised {
  name: string;
  start(): ChildProcess;
  /** Resolves once the service answers; rejects if it cannot (the child is then ended). */
  ready(child: ChildProcess): Promise<void>;
  /** A few last lines of its log, shown when it exits. */
  logTail(): string;
}

export interface SupervisorOptions {
  say(line: string): void;
  /** The first restart waits this long, each further one twice as long, up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A service up this long counts as recovered: its next crash waits `initialDelayMs` again. */
  resetAfterMs?: number;
  stopGraceMs?: number;
}

interface Entry {
  spec: Supervised;
  child: ChildProcess;
  startedAt: number;
  restarts: number;
  timer: NodeJS.Timeout | null;
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/**
 * Keeps the development stack's services running: a service that exits unexpectedly is
 * started again after a growing delay (and says so); everything stops only when asked to,
 * or when a service cannot be started in the first place.
 */
export class Supervisor {
  private readonly entries: Entry[] = [];
  private stopping: Promise<void> | null = null;
  private readonly o: Required<SupervisorOptions>;

  constructor(options: SupervisorOptions) {
    this.o = { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 60_000, stopGraceMs: 15_000, ...options };
  }

  /** Starts a service and waits until it is ready; throws if it cannot start. */
  async add(spec: Supervised): Promise<ChildProcess> {
    const entry: Entry = { spec, child: spec.start(), startedAt: Date.now(), restarts: 0, timer: null };
    this.entries.push(entry);
    await this.readyOrEnd(entry);
    this.watch(entry);
    return entry.child;
  }

  /** Services started so far and how often each was restarted. */
  status(): { name: string; pid: number | undefined; restarts: number }[] {
    return this.entries.map((e) => ({ name: e.spec.name, pid: e.child.pid, restarts: e.restarts }));
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const e of this.entries) if (e.timer) clearTimeout(e.timer);
      for (const e of [...this.entries].reverse()) if (!exited(e.child)) e.child.kill('SIGTERM');
      for (const e of this.entries) {
        if (!exited(e.child)) await Promise.race([new Promise((r) => e.child.once('exit', r)), sleep(this.o.stopGraceMs)]);
        if (!exited(e.child)) e.child.kill('SIGKILL');
      }
    })();
    return this.stopping;
  }

  private async readyOrEnd(entry: Entry): Promise<void> {
    try {
      await entry.spec.ready(entry.child);
    } catch (err) {
      if (!exited(entry.child)) entry.child.kill('SIGKILL');
      throw err;
    }
  }

  private watch(entry: Entry): void {
    entry.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      if (Date.now() - entry.startedAt >= this.o.resetAfterMs) entry.restarts = 0;
      const delay = Math.min(this.o.maxDelayMs, this.o.initialDelayMs * 2 ** entry.restarts);
      entry.restarts++;
      this.o.say(
        `[start] ${entry.spec.name} exited (${signal ?? `code ${code}`}); restarting in ${(delay / 1000).toFixed(1)} s (restart ${entry.restarts}). Last lines of its log:\n${entry.spec.logTail()}`,
      );
      entry.timer = setTimeout(() => {
        entry.timer = null;
        if (this.stopping) return;
        entry.child = entry.spec.start();
        entry.startedAt = Date.now();
        this.watch(entry);
        this.readyOrEnd(entry).then(
          () => this.o.say(`[start] ${entry.spec.name} is back (pid ${entry.child.pid})`),
          (err: unknown) => this.o.say(`[start] ${entry.spec.name} did not come back: ${(err as Error).message}`),
        );
      }, delay);
    });
  }
}
