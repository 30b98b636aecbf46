import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { CancelledError, type Cancellation } from './cancellation.js';

/** Where a response body goes, chunk by chunk. */
export interface BodySink {
  /** A chunk of the body; false asks for a pause until `resume()`. */
  data(chunk: Buffer): boolean;
  end(): void;
  /** The body will not complete: upstream cut it, it timed out, or the client went away. */
  error(err: Error): void;
}

export interface UpstreamBody {
  /** Attaches the one sink; what arrived before it is delivered first. */
  pipe(sink: BodySink): void;
  resume(): void;
}

/** How the response began: a success (its body follows), an error answer (read whole), or no answer. */
export type Answer = { kind: 'body'; status: number; headers: IncomingHttpHeaders } | { kind: 'error'; status: number; headers: IncomingHttpHeaders; text: string } | { kind: 'failed'; err: Error };

/** Error bodies are read whole to classify them; OpenAI's are a few hundred bytes. */
const MAX_ERROR_BODY = 64 * 1024;

const noop = (): void => undefined;

/**
 * One upstream attempt as an undici dispatch handler. The response's head settles
 * `answered`; a success's body is pushed to its sink with backpressure and no stream or
 * async iterator in between, which is what `request()` spends most of its time on.
 */
export class Exchange implements Dispatcher.DispatchHandler, UpstreamBody {
  readonly answered: Promise<Answer>;
  private settle!: (a: Answer) => void;
  private settled = false;
  private controller: Dispatcher.DispatchController | null = null;
  private unhook: () => void = noop;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private errorChunks: Buffer[] | null = null;
  private errorBytes = 0;
  private sink: BodySink | null = null;
  /** Chunks that came before the sink (the parser delivers head and body in one pass). */
  private early: Buffer[] = [];
  private outcome: 'open' | 'ended' | Error = 'open';
  private finished = false;

  constructor(
    private readonly cancel: Cancellation,
    /** Called once, when the exchange is over however it ended. */
    private readonly done: () => void,
  ) {
    this.answered = new Promise((resolve) => (this.settle = resolve));
  }

  private answer(a: Answer): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(a);
  }

  private finish(): void {
    this.unhook();
    if (this.finished) return;
    this.finished = true;
    this.done();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.unhook();
    this.controller = controller;
    this.unhook = this.cancel.onCancel(() => controller.abort(new CancelledError()));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
    if (status >= 400) this.errorChunks = [];
    else this.answer({ kind: 'body', status, headers });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.errorChunks) {
      if (this.errorBytes < MAX_ERROR_BODY) this.errorChunks.push(chunk);
      this.errorBytes += chunk.length;
      return;
    }
    if (this.sink) {
      if (!this.sink.data(chunk)) controller.pause();
      return;
    }
    this.early.push(chunk);
    controller.pause();
  }

  onResponseEnd(): void {
    this.finish();
    if (this.errorChunks) {
      this.answer({ kind: 'error', status: this.status, headers: this.headers, text: Buffer.concat(this.errorChunks).toString('utf8') });
    } else if (this.sink) this.sink.end();
    else this.outcome = 'ended';
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish();
    if (!this.settled) this.answer({ kind: 'failed', err });
    else if (this.sink) this.sink.error(err);
    else this.outcome = err;
  }

  pipe(sink: BodySink): void {
    this.sink = sink;
    let flowing = true;
    for (const chunk of this.early) flowing = sink.data(chunk);
    this.early = [];
    if (this.outcome === 'ended') sink.end();
    else if (this.outcome instanceof Error) sink.error(this.outcome);
    else if (flowing) this.controller?.resume();
  }

  resume(): void {
    this.controller?.resume();
  }
}
