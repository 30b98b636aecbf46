/** The reason an upstream request was aborted because its client went away. */
export class CancelledError extends Error {
  constructor() {
    super('the client closed the request');
    this.name = 'CancelledError';
  }
}

const noop = (): void => undefined;

/**
 * A client request's cancellation, for the hot path. An AbortController costs an
 * EventTarget, an AbortSignal and listener bookkeeping on every request; a request needs
 * only a flag and one hook at a time (the wait or the upstream exchange in progress).
 */
export class Cancellation {
  cancelled = false;
  private hook: (() => void) | null = null;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const hook = this.hook;
    this.hook = null;
    hook?.();
  }

  /** Runs `fn` on cancellation (at once if already cancelled); the returned function unhooks it. */
  onCancel(fn: () => void): () => void {
    if (this.cancelled) {
      fn();
      return noop;
    }
    this.hook = fn;
    return () => {
      if (this.hook === fn) this.hook = null;
    };
  }
}
