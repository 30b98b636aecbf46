import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { endpointsFromEnv, waitFor } from '@yugong/infra';
import { makeEvent, type YugongEvent } from '@yugong/schemas';
import { sampleUsage } from '@yugong/schemas/testing';
import { startLoop } from '../../src/consumer-loop.js';
import { createMetrics } from '../../src/metrics.js';

/** The loop's watchdog, on real Kafka: a consumer that shows no sign of work is replaced, and nothing is lost on the way. */
describe('the consumer loop restarts a stalled consumer', function () {
  this.timeout(90_000);

  it('replaces a consumer silent for longer than stallMs and keeps applying every event', async () => {
    // An idle consumer fetches only every 10 s here: a watchdog at 4 s takes that silence for a stall (a join takes 1–2 s).
    const t = await loopOn(1, { stallMs: 4000, consumerConfig: { maxWaitTimeInMs: 10_000, sessionTimeout: 6000, heartbeatInterval: 1000 } });
    try {
      const before = await t.send(0, 'before');
      await waitFor('round before applied', async () => (before.every((id) => t.applied.has(id)) ? true : null), 30_000);
      const first = t.loop.consumer();
      await waitFor('the silent consumer replaced', async () => (t.loop.consumer() !== first ? true : null), 30_000);
      assert.ok(
        t.lines.some((l) => l.includes('consumer stalled; restarting from the last committed offset')),
        'the restart is logged',
      );
      const after = await t.send(0, 'after');
      await waitFor('round after applied', async () => (after.every((id) => t.applied.has(id)) ? true : null), 30_000);
      assert.deepEqual([...t.applied.keys()].sort(), [...before, ...after].sort(), 'every event, and nothing else');
    } finally {
      await t.close();
    }
  });

  /** A topic of its own with `partitions`, a loop over it that records what it applied, and a producer. */
  async function loopOn(partitions: number, opts: Partial<Parameters<typeof startLoop>[0]> & { handle?: (events: YugongEvent[]) => Promise<void> } = {}) {
    const kafka = new Kafka({ clientId: 'loop-test', brokers: endpointsFromEnv().kafkaBrokers, logLevel: logLevel.NOTHING });
    const topic = `yg-loop-test-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    const lines: string[] = [];
    const log = pino(
      { level: 'error' },
      new Writable({
        write: (chunk, _enc, done) => {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const dlq = kafka.producer();
    const producer = kafka.producer();
    await Promise.all([dlq.connect(), producer.connect()]);
    const applied = new Map<string, number>();
    const loop = await startLoop({
      kafka,
      groupId: `yg-loop-${randomUUID()}`,
      topics: [topic],
      chunkSize: 10,
      dlq,
      log,
      metrics: createMetrics(),
      consumerConfig: { maxWaitTimeInMs: 200, sessionTimeout: 6000, heartbeatInterval: 1000 },
      ...opts,
      async handle(events: YugongEvent[]) {
        await opts.handle?.(events);
        for (const e of events) applied.set(e.id, (applied.get(e.id) ?? 0) + 1);
      },
    });
    const send = async (partition: number, round: string) => {
      const batch = Array.from({ length: 3 }, (_, j) =>
        makeEvent('usage.recorded', { id: `usage:loop-${round}-${j}`, source: 'test', accountPath: ['acct-loop', 'acct-loop-sub'], data: sampleUsage({ requestId: `req-${round}-${j}` }) }),
      );
      await producer.send({ topic, acks: -1, messages: batch.map((e) => ({ partition, key: 'acct-loop', value: JSON.stringify(e) })) });
      return batch.map((e) => e.id);
    };
    return {
      topic,
      loop,
      lines,
      applied,
      send,
      async close() {
        await loop.stop();
        await Promise.all([dlq.disconnect(), producer.disconnect()]);
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.disconnect();
      },
    };
  }

  it('replaces a consumer that keeps fetching but leaves one partition behind (its commit unmoved)', async () => {
    const t = await loopOn(2, { partitionStallMs: 4000 });
    try {
      const warm = [...(await t.send(0, 'warm-0')), ...(await t.send(1, 'warm-1'))];
      await waitFor('both partitions applied', async () => (warm.every((id) => t.applied.has(id)) ? true : null), 30_000);
      // kafkajs can stop fetching one partition while the others flow: a pause does just that.
      const stuck = t.loop.consumer();
      stuck.pause([{ topic: t.topic, partitions: [1] }]);
      const late = await t.send(1, 'late');
      const flowing = await t.send(0, 'flowing');
      await waitFor('the other partition still applied', async () => (flowing.every((id) => t.applied.has(id)) ? true : null), 30_000);
      assert.ok(!late.some((id) => t.applied.has(id)), 'the paused partition waits');
      await waitFor('the stuck consumer replaced, the late events applied', async () => (t.loop.consumer() !== stuck && late.every((id) => t.applied.has(id)) ? true : null), 30_000);
      assert.ok(
        t.lines.some((l) => l.includes('consumer stalled') && l.includes(':1 committed')),
        'the stalled partition is named',
      );
      assert.ok(
        [...t.applied.values()].every((n) => n === 1),
        'nothing applied twice',
      );
    } finally {
      await t.close();
    }
  });

  it('a handle call that hangs counts as failed after handleTimeoutMs: the batch is applied again from the commit', async () => {
    let hang = true;
    const t = await loopOn(1, {
      handleTimeoutMs: 1500,
      handle: async () => {
        if (!hang) return;
        hang = false;
        await new Promise(() => undefined);
      },
    });
    try {
      const ids = await t.send(0, 'hung');
      await waitFor('applied after the restart', async () => (ids.every((id) => t.applied.has(id)) ? true : null), 30_000);
      assert.ok(
        t.lines.some((l) => l.includes('took longer than 1500 ms')),
        `the timeout is logged: ${t.lines.join('')}`,
      );
    } finally {
      await t.close();
    }
  });
});
