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
  /**
   * How long a partition may stay behind its end with its committed offset unmoved before the
   * consumer counts as stuck (a fetch that never comes back for one partition while the others
   * flow; a join that never completes). Default PARTITION_STALL_MS.
   */
  partitionStallMs?: number;
  /** The longest one `handle` call may take before it counts as failed (a hung dependency); none by default. */
  handleTimeoutMs?: number;
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
/**
 * A partition with events to apply whose committed offset has not moved for this long is
 * stuck. With the restart (about 1 s) and a rejoin that waits out a dead member's session
 * (10 s by default), a write through the control plane is applied within its 30 s wait.
 */
const PARTITION_STALL_MS = 15_000;
const PROGRESS_CHECK_MS = 3_000;
const PROGRESS_CHECK_TIMEOUT_MS = 10_000;
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
  /** Consumers that crashed: one that crashes while the loop is (re)starting is restarted once that is over. */
  const crashed = new WeakSet<Consumer>();
  /** The partitions the current consumer was given at its last join (topic:partition). */
  const assigned = new Set<string>();

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
          progress.clear();
          // A crash of the new consumer while it was starting was not acted on: act now.
          if (current && crashed.has(current)) restartFrom(current, 'consumer crashed while starting', 'crash during the restart');
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
    consumer.on(consumer.events.CRASH, (e) => {
      crashed.add(consumer);
      restartFrom(consumer, 'consumer crashed', e.payload.error.message);
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (consumer !== current) return;
      assigned.clear();
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) for (const p of partitions) assigned.add(`${topic}:${p}`);
    });
    for (const sign of [consumer.events.FETCH_START, consumer.events.START_BATCH_PROCESS, consumer.events.END_BATCH_PROCESS, consumer.events.GROUP_JOIN]) {
      consumer.on(sign, () => {
        if (consumer === current) lastSign = Date.now();
      });
    }
    // Current from the start: a crash while it joins restarts it (the previous one is already disconnected).
    current = consumer;
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
        return;
      } catch (err) {
        opts.log.error({ group, err: (err as Error).message, attempt }, 'consumer restart failed; trying again');
        await new Promise((r) => setTimeout(r, RESTART_DELAY_MS * 2));
      }
    }
  }

  // kafkajs takes a seek only after run() has started fetching, so a first fetch may still read
  // from the beginning: what lies before a start offset is passed over, never applied.
  const starts = new Map<string, bigint>(Object.entries(opts.startAt ?? {}).flatMap(([topic, ps]) => ps.map((p) => [`${topic}:${p.partition}`, BigInt(p.offset)] as const)));

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
        await handleWithin(valid, `${batch.topic}:${batch.partition}`);
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

  /** Partitions with a `handle` call under way: one waiting on it is not stalled (that is handleTimeoutMs' to bound). */
  const handling = new Map<string, number>();
  async function handleWithin(events: YugongEvent[], partition: string): Promise<void> {
    const limit = opts.handleTimeoutMs;
    handling.set(partition, (handling.get(partition) ?? 0) + 1);
    let t: NodeJS.Timeout | undefined;
    try {
      if (!limit) return await opts.handle(events);
      await Promise.race([
        opts.handle(events),
        new Promise<never>((_, reject) => {
          t = setTimeout(() => {
            const err = new Error(`applying ${events.length} events took longer than ${limit} ms`);
            // kafkajs retries the batch (and crashes the consumer once its retries are spent).
            opts.log.error({ group, err: err.message }, 'a hung apply counts as failed');
            reject(err);
          }, limit);
        }),
      ]);
    } finally {
      clearTimeout(t);
      const left = (handling.get(partition) ?? 1) - 1;
      if (left > 0) handling.set(partition, left);
      else handling.delete(partition);
    }
  }

  /**
   * Per partition: committed offset against the end. A partition behind its end whose commit
   * has not moved for partitionStallMs means the consumer is stuck, however busy its fetches
   * of other partitions look.
   */
  const progress = new Map<string, { committed: string; since: number }>();
  const admin = opts.kafka.admin();
  let adminReady: Promise<void> | null = null;
  async function checkProgress(limitMs: number): Promise<void> {
    adminReady ??= admin.connect().catch((err: unknown) => {
      adminReady = null;
      throw err;
    });
    await adminReady;
    const [committed, ...ends] = await Promise.all([admin.fetchOffsets({ groupId: group, topics: opts.topics }), ...opts.topics.map((t) => admin.fetchTopicOffsets(t))]);
    const now = Date.now();
    opts.topics.forEach((topic, i) => {
      const at = new Map(committed.find((c) => c.topic === topic)?.partitions.map((p) => [p.partition, p.offset]));
      for (const end of ends[i] ?? []) {
        const id = `${topic}:${end.partition}`;
        // Only this member's partitions, and not while one of its applies runs.
        if (!assigned.has(id) || handling.has(id)) {
          progress.delete(id);
          continue;
        }
        const mine = at.get(end.partition) ?? '-1';
        // Nothing committed yet (-1) on a partition with events counts as behind too, unless the start offset is its end.
        const start = starts.get(id);
        const behind = mine === '-1' ? BigInt(end.high) > (start ?? BigInt(end.low)) : BigInt(mine) < BigInt(end.high);
        const seen = progress.get(id);
        if (!behind) progress.delete(id);
        else if (!seen || seen.committed !== mine) progress.set(id, { committed: mine, since: now });
        else if (now - seen.since > limitMs && current) {
          progress.clear();
          restartFrom(current, 'consumer stalled', `${id} committed ${mine} of ${end.high}, unmoved for ${now - seen.since} ms`);
          return;
        }
      }
    });
  }

  const first = await launch(opts.startAt);
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
  const partitionStallMs = opts.partitionStallMs ?? PARTITION_STALL_MS;
  let checking = false;
  const progressWatch = setInterval(
    () => {
      if (checking || restarting || stopped) return;
      checking = true;
      // A check that hangs (an admin request to a broker that never answers) must not end the
      // watchdog: it is given up after a while and the next one runs.
      let t: NodeJS.Timeout | undefined;
      Promise.race([
        checkProgress(partitionStallMs),
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new Error(`no answer within ${PROGRESS_CHECK_TIMEOUT_MS} ms`)), PROGRESS_CHECK_TIMEOUT_MS);
        }),
      ])
        .catch((err: unknown) => opts.log.warn({ group, err: (err as Error).message }, 'partition progress not checked'))
        .finally(() => {
          clearTimeout(t);
          checking = false;
        });
    },
    Math.min(PROGRESS_CHECK_MS, partitionStallMs / 3),
  );
  progressWatch.unref();
  return {
    consumer: () => current ?? first,
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      clearInterval(progressWatch);
      await current?.disconnect();
      if (adminReady) await admin.disconnect().catch(() => undefined);
    },
  };
}
