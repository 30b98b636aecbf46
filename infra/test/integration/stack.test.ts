import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { endpointsFromEnv } from '../../src/profile.js';

describe('the real stack', function () {
  this.timeout(60_000);
  const endpoints = () => endpointsFromEnv();

  it('round-trips Redis', async () => {
    const redis = new Redis(endpoints().redisUrl);
    try {
      const key = `yg:test:${randomUUID()}`;
      await redis.set(key, 'hello', 'EX', 60);
      assert.equal(await redis.get(key), 'hello');
      assert.equal(await redis.incrby(`${key}:n`, 9_007_199_254), 9_007_199_254);
    } finally {
      redis.disconnect();
    }
  });

  it('answers ClickHouse SELECT over HTTP', async () => {
    const res = await fetch(`${endpoints().clickhouseUrl}/?query=${encodeURIComponent('SELECT 40 + 2')}`);
    assert.equal((await res.text()).trim(), '42');
  });

  it('produces and consumes through Kafka with kafkajs', async () => {
    const kafka = new Kafka({ clientId: 'infra-test', brokers: endpoints().kafkaBrokers, logLevel: logLevel.NOTHING });
    const topic = `yugong.test.${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: `g-${randomUUID()}` });
    try {
      await producer.connect();
      const sent = Array.from({ length: 20 }, (_, i) => ({ key: `k${i % 3}`, value: `v${i}` }));
      await producer.send({ topic, acks: -1, messages: sent });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${seen.length} of 20 messages arrived`)), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.length === sent.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      assert.deepEqual([...seen].sort(), sent.map((m) => m.value).sort());
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
