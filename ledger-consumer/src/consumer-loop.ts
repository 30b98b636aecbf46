import type { Consumer, ConsumerConfig, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { decodeEvent, topics, type YugongEvent } from '@yugong/schemas';
import type { LedgerMetrics } from './metrics.js';

export interface LoopOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Applies events idempotently. Throwing means a dependency is broken: the loop stops
   *  and Kafka redelivers from the last committed offset. */
  handle(events: YugongEvent[]): Promise<void>;
  /** Messages per apply call: a heartbeat goes out between chunks. */
  chunkSize: number;
  dlq: Producer;
  log: Logger;
  metrics: LedgerMetrics;
  consumerConfig?: Partial<ConsumerConfig>;
}

export interface RunningLoop {
  consumer: Consumer;
  stop(): Promise<void>;
  /** Resolves when the consumer crashes for good (kafkajs gave up restarting it). */
  crashed: Promise<Error>;
}

/**
 * The one consumer loop. Per chunk of a batch, in this order: send invalid events to the
 * dead-letter topic, apply the valid ones, resolve the chunk's last offset, heartbeat.
 * Offsets are committed only for applied messages, so a crash anywhere re-applies at most
 * what was not committed, and every apply is idempotent by event id.
 */
export async function startLoop(opts: LoopOptions): Promise<RunningLoop> {
  // After a broker outage the consumer restarts on this backoff: short and capped, so
  // balances catch up seconds after Kafka returns instead of half a minute.
  const consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    retry: { initialRetryTime: 250, maxRetryTime: 3000, retries: 8 },
    ...opts.consumerConfig,
  });
  const group = opts.groupId;
  let crash: (err: Error) => void = () => undefined;
  const crashed = new Promise<Error>((resolve) => {
    crash = resolve;
  });
  consumer.on(consumer.events.CRASH, (e) => {
    const err = e.payload.error;
    opts.log.error({ group, err: err.message, restart: e.payload.restart }, 'consumer crashed');
    if (!e.payload.restart) crash(err);
  });
  await consumer.connect();
  for (const topic of opts.topics) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommit: true,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      const messages = batch.messages;
      for (let start = 0; start < messages.length; start += opts.chunkSize) {
        if (!isRunning() || isStale()) break;
        const chunk = messages.slice(start, start + opts.chunkSize);
        const valid: YugongEvent[] = [];
        const invalid: { message: KafkaMessage; reason: string }[] = [];
        for (const message of chunk) {
          const decoded = decodeEvent(message.value ?? Buffer.alloc(0));
          if (decoded.ok) valid.push(decoded.value);
          else invalid.push({ message, reason: decoded.error });
        }
        if (invalid.length > 0) {
          await opts.dlq.send({
            topic: topics.deadLetter,
            acks: -1,
            messages: invalid.map(({ message, reason }) => ({
              key: message.key,
              value: message.value,
              headers: { reason, 'source-topic': batch.topic, 'source-partition': String(batch.partition), 'source-offset': message.offset, group },
            })),
          });
          opts.metrics.deadLettered.inc({ group }, invalid.length);
          opts.log.warn({ group, count: invalid.length, reason: invalid[0]?.reason }, 'invalid events sent to the dead-letter topic');
        }
        if (valid.length > 0) {
          const t0 = performance.now();
          await opts.handle(valid);
          opts.metrics.applySeconds.observe({ group }, (performance.now() - t0) / 1000);
          opts.metrics.applied.inc({ group }, valid.length);
        }
        const last = chunk[chunk.length - 1];
        if (last) resolveOffset(last.offset);
        await heartbeat();
      }
      await commitOffsetsIfNecessary();
    },
  });
  return {
    consumer,
    crashed,
    stop: () => consumer.disconnect(),
  };
}
