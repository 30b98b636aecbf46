import { StringDecoder } from 'node:string_decoder';
import type { Endpoint } from '@yugong/schemas';

/**
 * An event larger than this without its blank line is passed on unread: a hostile or broken
 * upstream cannot make the node buffer without bound (its usage, if any, is then estimated).
 * Large enough for a Responses API `response.completed` that carries generated images.
 */
const MAX_EVENT_CHARS = 32 * 1024 * 1024;

type Obj = Record<string, unknown>;

/**
 * Watches an SSE stream on its way to the client, event by event (whole events are
 * forwarded as they complete, so nothing waits for the end). It learns the usage, keeps the
 * delivered text for counting when usage never comes, notices the first token, and when the
 * proxy added `include_usage` itself it removes what the client did not ask for: the
 * `"usage":null` on each chunk and the final usage chunk. The terminal event (`[DONE]`, or the
 * Responses API's `response.completed` / `incomplete` / `failed`) is kept back in `terminal`:
 * the caller sends it once the request's usage is recorded, so a client never holds a
 * complete answer whose billing could still be lost.
 */
export class SseMeter {
  /** A character split across chunks is decoded whole, never as U+FFFD. */
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  /** Where the next search for an event's end starts: a large event is not scanned again per chunk. */
  private scanned = 0;
  terminal = '';
  usage: unknown = null;
  delivered = '';
  done = false;
  firstTokenAt: number | null = null;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly stripUsage: boolean,
  ) {}

  /** Feed upstream bytes; returns the bytes to send on (possibly empty). */
  feed(chunk: Buffer): string {
    this.pending += this.decoder.write(chunk);
    let out = '';
    for (;;) {
      const end = this.pending.indexOf('\n\n', this.scanned);
      if (end < 0) break;
      const event = this.pending.slice(0, end + 2);
      this.pending = this.pending.slice(end + 2);
      this.scanned = 0;
      out += this.onEvent(event);
    }
    if (this.pending.length > MAX_EVENT_CHARS) {
      out += this.pending;
      this.pending = '';
    }
    // The blank line may straddle chunks: the next search starts one character back.
    this.scanned = Math.max(0, this.pending.length - 1);
    return out;
  }

  /** Whatever is left when upstream closes (an unterminated last event). */
  flush(): string {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    this.scanned = 0;
    return rest;
  }

  /** The terminal event, once: to be sent after the usage is recorded. */
  takeTerminal(): string {
    const t = this.terminal;
    this.terminal = '';
    return t;
  }

  private hold(event: string): string {
    this.done = true;
    this.terminal += event;
    return '';
  }

  private onEvent(event: string): string {
    const dataLine = event.split('\n').find((l) => l.startsWith('data:'));
    if (!dataLine) return event;
    const data = dataLine.slice(5).trimStart();
    if (data === '[DONE]') return this.hold(event);
    let obj: Obj;
    try {
      obj = JSON.parse(data) as Obj;
    } catch {
      return event;
    }
    if (this.endpoint === 'responses') {
      const type = obj.type;
      if (type === 'response.output_text.delta' && typeof obj.delta === 'string') this.text(obj.delta);
      if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
        this.usage = (obj.response as Obj | undefined)?.usage ?? null;
        return this.hold(event);
      }
      return event;
    }
    const choices = Array.isArray(obj.choices) ? (obj.choices as Obj[]) : [];
    for (const c of choices) {
      const delta = (c.delta as Obj | undefined) ?? {};
      if (typeof delta.content === 'string') this.text(delta.content);
      if (typeof c.text === 'string') this.text(c.text);
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls as Obj[]) {
          const args = (call.function as Obj | undefined)?.arguments;
          if (typeof args === 'string') this.text(args);
        }
      }
    }
    if (obj.usage) {
      this.usage = obj.usage;
      if (this.stripUsage && choices.length === 0) return '';
    }
    if (this.stripUsage) return event.replace(/,"usage":null(?=\s*}\s*\n)/, '');
    return event;
  }

  private text(t: string): void {
    if (t.length && this.firstTokenAt === null) this.firstTokenAt = performance.now();
    this.delivered += t;
  }
}
