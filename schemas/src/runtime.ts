import type { ServerResponse } from 'node:http';
import type { z } from 'zod';

/**
 * Parses the environment with a schema once, at start. Every bad variable is named in one
 * error, so an operator fixes them all in one go.
 */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data as z.infer<S>;
  throw new Error(`invalid configuration:\n${r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
}

/**
 * The one retry strategy for a call that may fail while a dependency recovers (a cluster that
 * is still forming, a failover): the call again every `delayMs`, at most `attempts` times, as
 * long as `retriable` says the error may pass. The last error is thrown.
 */
export async function retry<T>(
  call: () => Promise<T>,
  opts: { attempts: number; delayMs: number; retriable?: (err: unknown) => boolean; onRetry?: (err: unknown, attempt: number) => void },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= opts.attempts || !(opts.retriable?.(err) ?? true)) throw err;
      opts.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, opts.delayMs).unref());
    }
  }
}

/** Writes with backpressure; resolves false when the peer has gone away. */
export function writeChunk(res: ServerResponse, chunk: string | Buffer): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

interface GuardLog {
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
}

/**
 * The last line of defence of a server process. A rejected promise nobody awaited left no
 * half-run code behind, so it is logged and the process keeps serving. A thrown exception
 * may have left any state half-changed, so the process stops taking requests, lets those in
 * flight finish (`drain`), and exits non-zero for its supervisor to start a fresh one.
 */
export function guardProcess(log: GuardLog, drain: () => Promise<void>, onRejection: () => void = () => undefined): void {
  process.on('unhandledRejection', (reason) => {
    onRejection();
    log.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled promise rejection (the process keeps serving)');
  });
  let fatal = false;
  process.on('uncaughtException', (err) => {
    log.fatal({ err: { message: err.message, stack: err.stack } }, 'uncaught exception: draining, then exiting for a restart');
    if (fatal) return;
    fatal = true;
    const exit = () => process.exit(1);
    setTimeout(exit, 60_000).unref();
    drain().then(exit, exit);
  });
}
