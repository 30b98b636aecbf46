import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { appendFile, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { packEvents, partitionKeyFor, topicFor, type YugongEvent } from '@yugong/schemas';

export interface EventSink {
  /** Resolves once the event is in Kafka or durably in the spool. */
  emit(event: YugongEvent): Promise<void>;
  /** False while the spool is full: the proxy must not serve traffic it cannot bill. */
  accepting(): boolean;
  spoolBytes(): number;
  /** Sends everything buffered and stops the replay loop. */
  close(): Promise<void>;
}

interface Pending {
  event: YugongEvent;
  resolve(): void;
  reject(err: Error): void;
}

export interface SinkOptions {
  producer: Producer;
  spoolDir: string;
  spoolMaxBytes: number;
  log: Logger;
  /** Events wait at most this long to share a Kafka request. */
  lingerMs?: number;
  maxBatch?: number;
  replayIntervalMs?: number;
  /** A send not acknowledged within this long counts as failed (kafkajs would keep retrying
   *  for minutes against a dead broker); the batch goes to the spool instead. */
  sendTimeoutMs?: number;
  onSpoolChange?(bytes: number): void;
}

const CURRENT = 'events.jsonl';
/** Events are about 1 KiB: a packed message stays well under Kafka's 1 MiB message limit. */
const EVENTS_PER_MESSAGE = 200;

/**
 * Events go to Kafka in small batches (one request per few ms, acks from all replicas,
 * idempotent producer), the events of one partition key packed into one message. If Kafka
 * fails, the batch is appended to a local spool file and fsync'd; a replay loop sends
 * spooled files once Kafka answers again. Event ids make a replay harmless downstream.
 */
export function createEventSink(opts: SinkOptions): EventSink {
  const linger = opts.lingerMs ?? 10;
  const maxBatch = opts.maxBatch ?? 500;
  mkdirSync(opts.spoolDir, { recursive: true });
  let queue: Pending[] = [];
  let timer: NodeJS.Timeout | null = null;
  let kafkaDown = false;
  let spooled = existingSpoolBytes();
  let inFlight = Promise.resolve();
  let closed = false;

  function existingSpoolBytes(): number {
    return readdirSync(opts.spoolDir)
      .filter((f) => f.endsWith('.jsonl'))
      .reduce((s, f) => s + statSync(join(opts.spoolDir, f)).size, 0);
  }

  function setSpooled(bytes: number): void {
    spooled = bytes;
    opts.onSpoolChange?.(bytes);
  }

  const sendTimeoutMs = opts.sendTimeoutMs ?? 3000;

  /** A late acknowledgement after a timeout only duplicates events, which downstream ignores by id. */
  async function send(events: YugongEvent[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`kafka did not acknowledge within ${sendTimeoutMs} ms`)), sendTimeoutMs);
    });
    try {
      await Promise.race([sendNow(events), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One message per topic and partition key (packed, see packEvents), split where it would grow too large. */
  async function sendNow(events: YugongEvent[]): Promise<void> {
    const byTopic = new Map<string, Map<string, YugongEvent[]>>();
    for (const e of events) {
      const t = topicFor(e.type);
      let byKey = byTopic.get(t);
      if (!byKey) {
        byKey = new Map();
        byTopic.set(t, byKey);
      }
      const key = partitionKeyFor(e);
      const list = byKey.get(key);
      if (list) list.push(e);
      else byKey.set(key, [e]);
    }
    const topicMessages = [...byTopic].map(([topic, byKey]) => {
      const messages: { key: string; value: string }[] = [];
      for (const [key, list] of byKey) {
        for (let i = 0; i < list.length; i += EVENTS_PER_MESSAGE) messages.push({ key, value: packEvents(list.slice(i, i + EVENTS_PER_MESSAGE)) });
      }
      return { topic, messages };
    });
    await opts.producer.sendBatch({ acks: -1, topicMessages });
  }

  async function spool(events: YugongEvent[]): Promise<void> {
    const text = `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;
    const file = join(opts.spoolDir, CURRENT);
    await appendFile(file, text);
    const fh = await open(file, 'r');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
    setSpooled(spooled + Buffer.byteLength(text));
  }

  async function flush(): Promise<void> {
    timer = null;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const events = batch.map((p) => p.event);
    try {
      if (kafkaDown) throw new Error('kafka is down');
      await send(events);
    } catch (err) {
      if (!kafkaDown) opts.log.error({ err: (err as Error).message }, 'kafka unavailable: spooling events');
      kafkaDown = true;
      try {
        await spool(events);
      } catch (spoolErr) {
        for (const p of batch) p.reject(spoolErr as Error);
        return;
      }
    }
    for (const p of batch) p.resolve();
  }

  function schedule(): void {
    if (queue.length >= maxBatch) {
      if (timer) clearTimeout(timer);
      timer = null;
      inFlight = inFlight.then(flush);
    } else if (!timer) {
      timer = setTimeout(() => {
        inFlight = inFlight.then(flush);
      }, linger);
    }
  }

  /** Sends spooled files oldest first; the current file is rotated so new events keep appending. */
  async function replay(): Promise<void> {
    if (spooled === 0) {
      kafkaDown = false;
      return;
    }
    const current = join(opts.spoolDir, CURRENT);
    try {
      await rename(current, join(opts.spoolDir, `replay-${Date.now()}.jsonl`));
    } catch {
      // nothing current to rotate
    }
    const files = readdirSync(opts.spoolDir)
      .filter((f) => f.startsWith('replay-') && f.endsWith('.jsonl'))
      .sort();
    for (const f of files) {
      const path = join(opts.spoolDir, f);
      const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
      const events = lines.map((l) => JSON.parse(l) as YugongEvent);
      for (let i = 0; i < events.length; i += maxBatch) await send(events.slice(i, i + maxBatch));
      await unlink(path);
      opts.log.info({ file: f, events: events.length }, 'replayed spooled events');
    }
    setSpooled(existingSpoolBytes());
    kafkaDown = spooled > 0;
  }

  // One replay waits in the chain at a time: while Kafka is down each attempt can outlast the
  // interval, and attempts piling up ahead of them would hold back new events from the spool.
  let replayQueued = false;
  const replayTimer = setInterval(() => {
    if ((!kafkaDown && spooled === 0) || replayQueued) return;
    replayQueued = true;
    inFlight = inFlight
      .then(() => replay().catch(() => undefined))
      .finally(() => {
        replayQueued = false;
      });
  }, opts.replayIntervalMs ?? 1000);
  replayTimer.unref();
  if (spooled > 0) kafkaDown = true;

  return {
    emit(event) {
      if (closed) return Promise.reject(new Error('event sink closed'));
      return new Promise<void>((resolve, reject) => {
        queue.push({ event, resolve, reject });
        schedule();
      });
    },
    accepting: () => spooled < opts.spoolMaxBytes,
    spoolBytes: () => spooled,
    async close() {
      closed = true;
      clearInterval(replayTimer);
      if (timer) clearTimeout(timer);
      inFlight = inFlight.then(flush);
      await inFlight;
    },
  };
}
