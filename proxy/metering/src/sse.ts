import type { Endpoint } from '@yugong/schemas';

type Obj = Record<string, unknown>;

/**
 * Watches an SSE stream on its way to the client, event by event (whole events are
 * forwarded as they complete, so nothing waits for the end). It learns the usage, keeps the
 * delivered text for counting when usage never comes, notices the first token, and when the
 * proxy added `include_usage` itself it removes what the client did not ask for: the
 * `"usage":null` on each chunk and the final usage chunk.
 */
export class SseMeter {
  private pending = '';
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
    this.pending += chunk.toString('utf8');
    let out = '';
    for (;;) {
      const end = this.pending.indexOf('\n\n');
      if (end < 0) break;
      const event = this.pending.slice(0, end + 2);
      this.pending = this.pending.slice(end + 2);
      out += this.onEvent(event);
    }
    return out;
  }

  /** Whatever is left when upstream closes (an unterminated last event). */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }

  private onEvent(event: string): string {
    const dataLine = event.split('\n').find((l) => l.startsWith('data:'));
    if (!dataLine) return event;
    const data = dataLine.slice(5).trimStart();
    if (data === '[DONE]') {
      this.done = true;
      return event;
    }
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
        this.done = true;
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
