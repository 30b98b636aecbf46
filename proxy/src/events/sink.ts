import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { appendFile, open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { packEvents, partitionKeyFor, topicFor, type YugongEvent } from '@yugong/schemas';

export interface EventSink {
  /**
   * Resolves once the event is in the node's journal on disk (a process killed after that
   * loses nothing: the next start sends it). Kafka gets it right after, in batches.
   */
  emit(event: YugongEvent): Promise<void>;
  /** False while the backlog Kafka has not acknowledged is full: the proxy must not serve traffic it cannot bill. */
  accepting(): boolean;
  /** Bytes of journaled events Kafka has not acknowledged. */
  spoolBytes(): number;
  /** Sends everything buffered and stops the replay loop. */
  close(): Promise<void>;
}

export interface SinkOptions {
  producer: Producer;
  /**
   * Where journals live. Each process writes its own folder in it (named for `owner`, with a
   * heartbeat), so nodes may share one volume; a folder whose heartbeat has stopped is an
   * ended process's, and the next node to look takes its segments over and sends them.
   */
  spoolDir: string;
  /** This process's name in the spool (its node id). */
  owner: string;
  spoolMaxBytes: number;
  log: Logger;
  /** Events wait at most this long to share a Kafka request. */
  lingerMs?: number;
  maxBatch?: number;
  replayIntervalMs?: number;
  /** A segment is closed after this long (and at 8 MiB), and deleted once Kafka has all of it. */
  rotateMs?: number;
  /** A send not acknowledged within this long counts as failed (kafkajs would keep retrying
   *  for minutes against a dead broker); its events are sent again from the journal. */
  sendTimeoutMs?: number;
  onSpoolChange?(bytes: number): void;
  /** A journal line that is not an event (a torn write, a damaged disk): set aside, counted. */
  onCorruptLine?(): void;
}

const HEARTBEAT_MS = 5_000;
/** A journal folder whose heartbeat is older than this belongs to a process that has ended. */
const ORPHAN_AFTER_MS = 60_000;
const HEARTBEAT = 'owner.json';

/** Events are about 1 KiB: a packed message stays well under Kafka's 1 MiB message limit. */
const EVENTS_PER_MESSAGE = 200;
const SEGMENT_MAX_BYTES = 8 * 1024 * 1024;

/** One journal file. Only the newest is open, for appends. */
interface Segment {
  path: string;
  fh: FileHandle | null;
  bytes: number;
  /** Events of it handed to Kafka and not yet answered. */
  outstanding: number;
  /** Some event of it is not known to be in Kafka: the file is sent again, whole. */
  failed: boolean;
  /** Bytes of its events Kafka has not acknowledged. */
  unacked: number;
}

interface Queued {
  event: YugongEvent;
  segment: Segment;
  bytes: number;
}

interface Appending {
  event: YugongEvent;
  line: string;
  resolve(): void;
  reject(err: Error): void;
}

/** Whether a journal line is an event at all (its fields are checked again by the ledger). */
function parseLine(line: string): YugongEvent | null {
  try {
    const v = JSON.parse(line) as Partial<YugongEvent> | null;
    return v && typeof v === 'object' && typeof v.id === 'string' && typeof v.type === 'string' ? (v as YugongEvent) : null;
  } catch {
    return null;
  }
}

/**
 * Every event is appended to a local journal (one write per tick for all events of that
 * tick) before `emit` resolves, then sent to Kafka in small batches (acks from all replicas),
 * the events of one partition key packed into one message. A segment whose events Kafka has
 * all acknowledged is deleted; one with an event Kafka did not take (a broker down, a send
 * timed out) stays, and a replay loop sends it again once Kafka answers. While it does, new
 * events only go to the journal (fsync'd), so they reach Kafka in order after the backlog.
 * A restarted node finds its predecessor's segments and sends them first; event ids make
 * every repetition harmless downstream. A line that is not an event (a write torn by a crash,
 * ENOSPC) is set aside in a `.bad` file and the rest of the file is sent.
 */
export function createEventSink(opts: SinkOptions): EventSink {
  const linger = opts.lingerMs ?? 10;
  const maxBatch = opts.maxBatch ?? 500;
  const rotateMs = opts.rotateMs ?? 1000;
  const sendTimeoutMs = opts.sendTimeoutMs ?? 3000;
  const dir = join(opts.spoolDir, opts.owner.replace(/[^A-Za-z0-9._-]/g, '_'));
  mkdirSync(dir, { recursive: true });
  const beat = () => writeFileSync(join(dir, HEARTBEAT), JSON.stringify({ pid: process.pid, at: new Date().toISOString() }));
  beat();
  let seq = 0;
  const segmentName = () => `journal-${String(Date.now()).padStart(15, '0')}-${String(seq++).padStart(6, '0')}-${process.pid}.jsonl`;
  const segments: Segment[] = [];
  const known = (path: string) => segments.some((g) => g.path === path);
  /** Segments not known to be in Kafka: what this folder holds from before, and what ended processes left beside it. */
  function adopt(): void {
    const found: string[] = [];
    const take = (from: string) => {
      for (const f of readdirSync(from).filter((x) => x.endsWith('.jsonl'))) {
        const to = join(dir, from === dir ? f : `adopted-${f}`);
        try {
          if (from !== dir) renameSync(join(from, f), to);
          found.push(to);
        } catch {
          // taken by another node first
        }
      }
    };
    take(dir);
    // A spool written before journals had folders: its files lie at the top.
    take(opts.spoolDir);
    for (const other of readdirSync(opts.spoolDir, { withFileTypes: true })) {
      const path = join(opts.spoolDir, other.name);
      if (!other.isDirectory() || path === dir) continue;
      let age = Number.POSITIVE_INFINITY;
      try {
        age = Date.now() - statSync(join(path, HEARTBEAT)).mtimeMs;
      } catch {
        // no heartbeat: not a journal folder of a live process
      }
      if (age > ORPHAN_AFTER_MS) take(path);
    }
    for (const path of found.sort()) {
      if (known(path) || path === current?.path) continue;
      const bytes = statSync(path).size;
      segments.push({ path, fh: null, bytes, outstanding: 0, failed: true, unacked: bytes });
    }
  }
  let current: Segment | null = null;
  adopt();
  let kafkaDown = segments.length > 0;
  let appending: Appending[] = [];
  /** Journal writes, rotations and replays, one at a time. */
  let chain: Promise<void> = Promise.resolve();
  let queue: Queued[] = [];
  let timer: NodeJS.Timeout | null = null;
  let sending: Promise<void> = Promise.resolve();
  let closed = false;

  const unacked = () => segments.reduce((s, g) => s + g.unacked, 0) + (current?.unacked ?? 0);
  const changed = () => opts.onSpoolChange?.(unacked());
  const serially = (step: () => Promise<void>) => {
    const next = chain.then(step);
    chain = next.catch(() => undefined);
    return next;
  };

  async function remove(g: Segment): Promise<void> {
    const i = segments.indexOf(g);
    if (i >= 0) segments.splice(i, 1);
    await unlink(g.path).catch(() => undefined);
  }

  function settled(g: Segment): void {
    if (g !== current && g.fh === null && g.outstanding === 0 && !g.failed) void remove(g);
  }

  async function rotate(): Promise<void> {
    const g = current;
    if (!g) return;
    current = null;
    await g.fh?.close();
    g.fh = null;
    segments.push(g);
    settled(g);
  }

  /** A late acknowledgement after a timeout only duplicates events, which downstream ignores by id. */
  async function send(events: YugongEvent[]): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`kafka did not acknowledge within ${sendTimeoutMs} ms`)), sendTimeoutMs);
    });
    try {
      await Promise.race([sendNow(events), timeout]);
    } finally {
      clearTimeout(t);
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

  async function flushToKafka(): Promise<void> {
    timer = null;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    try {
      if (kafkaDown) throw new Error('kafka is down');
      await send(batch.map((q) => q.event));
      for (const q of batch) {
        q.segment.outstanding--;
        q.segment.unacked -= q.bytes;
      }
    } catch (err) {
      if (!kafkaDown) opts.log.error({ err: (err as Error).message }, 'kafka unavailable: events stay in the journal until it answers');
      kafkaDown = true;
      for (const q of batch) {
        q.segment.outstanding--;
        q.segment.failed = true;
      }
    }
    for (const g of new Set(batch.map((q) => q.segment))) settled(g);
    changed();
  }

  function toKafka(items: Queued[]): void {
    queue.push(...items);
    if (queue.length >= maxBatch) {
      if (timer) clearTimeout(timer);
      timer = null;
      sending = sending.then(flushToKafka);
    } else if (!timer) {
      timer = setTimeout(() => {
        sending = sending.then(flushToKafka);
      }, linger);
    }
  }

  /** One append for every event emitted in this tick. */
  async function commit(): Promise<void> {
    const batch = appending;
    appending = [];
    if (batch.length === 0) return;
    try {
      if (!current) {
        const path = join(dir, segmentName());
        current = { path, fh: await open(path, 'a'), bytes: 0, outstanding: 0, failed: false, unacked: 0 };
      }
      const g = current;
      const text = batch.map((a) => a.line).join('');
      await g.fh?.appendFile(text);
      // Events that will wait here for Kafka must outlive a power loss too.
      const down = kafkaDown;
      if (down) await g.fh?.datasync();
      g.bytes += Buffer.byteLength(text);
      const queued: Queued[] = [];
      for (const a of batch) {
        const bytes = Buffer.byteLength(a.line);
        g.unacked += bytes;
        if (down) g.failed = true;
        else {
          g.outstanding++;
          queued.push({ event: a.event, segment: g, bytes });
        }
      }
      if (g.bytes >= SEGMENT_MAX_BYTES) await rotate();
      changed();
      for (const a of batch) a.resolve();
      if (queued.length) toKafka(queued);
    } catch (err) {
      // A write that failed part-way (a full disk) may have left a torn line: nothing more is
      // appended after it. The segment is closed and sent again whole (the torn line set aside).
      if (current) {
        current.failed = true;
        kafkaDown = true;
        await rotate().catch(() => undefined);
      }
      for (const a of batch) a.reject(err as Error);
    }
  }

  /** Sends journal segments Kafka may lack, oldest first; stops at the first failure. */
  async function replay(): Promise<void> {
    adopt();
    // Only closing the open segment waits for the journal's writes; sending does not hold them up.
    if (current?.failed) await serially(rotate);
    for (const g of segments.filter((s) => s.failed && s.fh === null)) {
      let text: string;
      try {
        text = await readFile(g.path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // Gone (sent and removed by another round): nothing of it is left to send.
        segments.splice(segments.indexOf(g), 1);
        continue;
      }
      const events: YugongEvent[] = [];
      const good: string[] = [];
      const bad: string[] = [];
      for (const line of text.split('\n').filter(Boolean)) {
        const e = parseLine(line);
        if (e) {
          events.push(e);
          good.push(line);
        } else bad.push(line);
      }
      if (bad.length) {
        // Set aside once: the segment keeps only its events, so a later round finds no bad line again.
        await appendFile(`${g.path}.bad`, `${bad.join('\n')}\n`);
        await writeFile(`${g.path}.tmp`, good.length ? `${good.join('\n')}\n` : '');
        await rename(`${g.path}.tmp`, g.path);
        for (let i = 0; i < bad.length; i++) opts.onCorruptLine?.();
        opts.log.error({ file: g.path, lines: bad.length }, 'journal lines that are not events were set aside');
      }
      for (let i = 0; i < events.length; i += maxBatch) await send(events.slice(i, i + maxBatch));
      g.failed = false;
      g.unacked = 0;
      await remove(g);
      opts.log.info({ file: g.path, events: events.length }, 'replayed journaled events');
      changed();
    }
    if (!current?.failed && !segments.some((s) => s.failed)) kafkaDown = false;
  }

  let replayQueued = false;
  let downSince = 0;
  let lastReplayError = 0;
  const replayTimer = setInterval(() => {
    if (!kafkaDown || replayQueued) return;
    replayQueued = true;
    downSince ||= Date.now();
    void replay()
      .then(
        () => {
          if (kafkaDown) return;
          opts.log.warn({ downMs: Date.now() - downSince }, 'kafka answers again: the journal is sent');
          downSince = 0;
        },
        (err: unknown) => {
          // Every failed round is a second of events waiting: said at most every 10 s.
          if (Date.now() - lastReplayError < 10_000) return;
          lastReplayError = Date.now();
          opts.log.error({ err: (err as Error).message, downMs: Date.now() - downSince, unacknowledged: unacked() }, 'journal not sent yet: kafka still refuses');
        },
      )
      .finally(() => {
        replayQueued = false;
      });
  }, opts.replayIntervalMs ?? 1000);
  replayTimer.unref();
  // A quiet segment is closed, so that it can be deleted once Kafka has every event of it.
  const rotateTimer = setInterval(() => {
    if (current && current.bytes > 0) serially(rotate).catch((err: unknown) => opts.log.error({ err: (err as Error).message }, 'journal segment not closed'));
  }, rotateMs);
  rotateTimer.unref();
  const heartbeat = setInterval(() => {
    try {
      beat();
    } catch (err) {
      opts.log.error({ err: (err as Error).message }, 'journal heartbeat not written');
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();

  return {
    emit(event) {
      if (closed) return Promise.reject(new Error('event sink closed'));
      return new Promise<void>((resolve, reject) => {
        appending.push({ event, line: `${JSON.stringify(event)}\n`, resolve, reject });
        if (appending.length === 1) setImmediate(() => void serially(commit));
      });
    },
    accepting: () => unacked() < opts.spoolMaxBytes,
    spoolBytes: unacked,
    async close() {
      closed = true;
      clearInterval(replayTimer);
      clearInterval(rotateTimer);
      clearInterval(heartbeat);
      await serially(commit);
      if (timer) clearTimeout(timer);
      sending = sending.then(flushToKafka);
      await sending;
      await serially(rotate);
    },
  };
}
