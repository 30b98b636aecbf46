import type { Consumer, ConsumerConfig, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { topics, unpackEvents, type YugongEvent } from '@yugong/schemas';
import type { LedgerMetrics } from './metrics.js';

export interface LoopOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Applies events idempotently. Throwing means a dependency is broken: the loop stops
   *  and Kafka redelivers from the last committed offset. */
  handle(events: YugongEvent[]): Promise<void>;
  /** Messages per apply call (each holds one or more events): a heartbeat goes out between chunks. */
  chunkSize: number;
  /**
   * Partitions applied at once. Each keeps its own order (a tree's events share one
   * partition); overlapping them lets one partition's decoding run while another's writes
   * are in flight.
   */
  concurrency?: number;
  dlq: Producer;
  log: Logger;
  metrics: LedgerMetrics;
  consumerConfig?: Partial<ConsumerConfig>;
  /** Called at each point of the apply/commit sequence; the crash tests kill the process here. */
  fault?: (point: FaultPoint) => void;
  /** Where a new group starts instead of the beginning (per topic, partition → offset): nothing before it is applied; a restart resumes from the commits. */
  startAt?: StartOffsets;
  /** How long a consumer may show no sign of work (a fetch, a batch, a join) before it counts as stuck. */
  stallMs?: number;
}

export type StartOffsets = Record<string, { partition: number; offset: string }[]>;

/** handled: applied, offset not resolved; resolved: not committed; committed: after the commit. */
export type FaultPoint = 'handled' | 'resolved' | 'committed';

export interface RunningLoop {
  /** The consumer currently running (a new one after each restart). */
  consumer(): Consumer;
  stop(): Promise<void>;
}

const RESTART_DELAY_MS = 1000;
/**
 * kafkajs can hang without crashing, in a rejoin after a broker loss (tulios/kafkajs#659; seen
 * here: a balances member silent for minutes after "re-joining the group"). An idle consumer
 * still fetches every few seconds (maxWaitTime 5 s), and a rebalance waits at most for a dead
 * member's session, so this much silence means stuck: it is restarted like a crashed one.
 */
const STALL_MS = 45_000;
/** A consumer stuck inside a batch may never finish disconnecting: the restart does not wait for it longer. */
const DISCONNECT_WAIT_MS = 10_000;
const EMPTY = Buffer.alloc(0);

/**
 * The one consumer loop. Per chunk of a batch (a message may pack several events), in this
 * order: send invalid events to the dead-letter topic, each alone, apply the valid ones,
 * resolve the chunk's last offset, heartbeat.
 * Offsets are committed only for applied messages, so a crash anywhere re-applies at most
 * what was not committed, and every apply is idempotent by event id.
 *
 * A broken dependency crashes the consumer; the loop itself restarts it from the last
 * committed offset (not kafkajs, whose own restarts can outlive a disconnect), so stop()
 * always stops everything.
 */
export async function startLoop(opts: LoopOptions): Promise<RunningLoop> {
  const group = opts.groupId;
  let stopped = false;
  let restarting = false;
  let current: Consumer | undefined;
  let lastSign = Date.now();

  /** Only the current consumer restarts the loop, once: a second restart would leave a consumer connected that nothing stops. */
  function restartFrom(consumer: Consumer, why: string, err: string): void {
    if (stopped || consumer !== current || restarting) return;
    restarting = true;
    opts.log.error({ group, err }, `${why}; restarting from the last committed offset`);
    setTimeout(
      () =>
        void restart().finally(() => {
          restarting = false;
          lastSign = Date.now();
        }),
      RESTART_DELAY_MS,
    );
  }

  async function launch(startAt?: StartOffsets): Promise<Consumer> {
    // A short, capped backoff: balances catch up seconds after Kafka returns.
    const consumer = opts.kafka.consumer({
      groupId: group,
      retry: { initialRetryTime: 250, maxRetryTime: 3000, retries: 8, restartOnFailure: async () => false },
      ...opts.consumerConfig,
    });
    consumer.on(consumer.events.CRASH, (e) => restartFrom(consumer, 'consumer crashed', e.payload.error.message));
    for (const sign of [consumer.events.FETCH_START, consumer.events.START_BATCH_PROCESS, consumer.events.END_BATCH_PROCESS, consumer.events.GROUP_JOIN]) {
      consumer.on(sign, () => {
        if (consumer === current) lastSign = Date.now();
      });
    }
    try {
      await consumer.connect();
      for (const topic of opts.topics) await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachBatchAutoResolve: false, autoCommit: true, partitionsConsumedConcurrently: opts.concurrency ?? 1, eachBatch: (payload) => eachBatch(payload) });
      // Applied as the partitions are assigned, before their first fetch.
      for (const [topic, partitions] of Object.entries(startAt ?? {})) for (const p of partitions) consumer.seek({ topic, ...p });
    } catch (err) {
      // A half-started consumer (connected, then refused) must not stay connected behind our back.
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    return consumer;
  }

  async function restart(): Promise<void> {
    for (let attempt = 1; !stopped; attempt++) {
      if (current) await Promise.race([current.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, DISCONNECT_WAIT_MS))]);
      if (stopped) return;
      try {
        const next = await launch();
        if (stopped) await next.disconnect();
        else current = next;
        return;
      } catch (err) {
        opts.log.error({ group, err: (err as Error).message, attempt }, 'consumer restart failed; trying again');
        await new Promise((r) => setTimeout(r, RESTART_DELAY_MS * 2));
      }
    }
  }

  // kafkajs takes a seek only after run() has started fetching, so a first fetch may still read
  // from the beginning: what lies before a start offset is passed over, never applied.
  const starts = new Map(Object.entries(opts.startAt ?? {}).flatMap(([topic, ps]) => ps.map((p) => [`${topic}:${p.partition}`, BigInt(p.offset)] as const)));

  async function eachBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const start = starts.get(`${batch.topic}:${batch.partition}`);
    const before = start === undefined ? [] : batch.messages.filter((m) => BigInt(m.offset) < start);
    const messages = before.length ? batch.messages.slice(before.length) : batch.messages;
    const skipped = before[before.length - 1];
    if (skipped) resolveOffset(skipped.offset);
    for (let start = 0; start < messages.length; start += opts.chunkSize) {
      if (!isRunning() || isStale()) break;
      const chunk = messages.slice(start, start + opts.chunkSize);
      const valid: YugongEvent[] = [];
      const invalid: { message: KafkaMessage; text: string; reason: string }[] = [];
      for (const message of chunk) {
        for (const { text, decoded } of unpackEvents(message.value ?? EMPTY)) {
          if (decoded.ok) valid.push(decoded.value);
          else invalid.push({ message, text, reason: decoded.error });
        }
      }
      if (invalid.length > 0) {
        await opts.dlq.send({
          topic: topics.deadLetter,
          acks: -1,
          messages: invalid.map(({ message, text, reason }) => ({
            key: message.key,
            value: text,
            headers: { reason, 'source-topic': batch.topic, 'source-partition': String(batch.partition), 'source-offset': message.offset, group },
          })),
        });
        opts.metrics.deadLettered.inc({ group }, invalid.length);
        opts.log.warn({ group, count: invalid.length, reason: invalid[0]?.reason }, 'invalid events sent to the dead-letter topic');
      }
      if (valid.length > 0) {
        const t0 = performance.now();
        await opts.handle(valid);
        opts.fault?.('handled');
        opts.metrics.applySeconds.observe({ group }, (performance.now() - t0) / 1000);
        opts.metrics.applied.inc({ group }, valid.length);
        const now = Date.now();
        for (const e of valid) opts.metrics.eventAge.observe({ group }, Math.max(0, now - Date.parse(e.time)) / 1000);
      }
      const last = chunk[chunk.length - 1];
      if (last) resolveOffset(last.offset);
      await heartbeat();
      opts.fault?.('resolved');
    }
    await commitOffsetsIfNecessary();
    opts.fault?.('committed');
    opts.metrics.lag.set({ group, topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
  }

  const first = await launch(opts.startAt);
  current = first;
  lastSign = Date.now();
  const stallMs = opts.stallMs ?? STALL_MS;
  const watchdog = setInterval(
    () => {
      const silent = Date.now() - lastSign;
      if (current && silent > stallMs) restartFrom(current, 'consumer stalled', `no fetch, batch or join for ${silent} ms`);
    },
    Math.min(5000, stallMs / 2),
  );
  watchdog.unref();
  return {
    consumer: () => current ?? first,
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      await current?.disconnect();
    },
  };
}
