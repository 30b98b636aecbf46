import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import { endpointsFromEnv } from '@yugong/infra';
import { decodeEvent, makeEvent } from '../../src/events.js';
import { ensureTopics, partitionKeyFor, topicFor, topics } from '../../src/topics.js';
import { sampleUsage } from '../../src/testing.js';

describe('events through real Kafka', function () {
  this.timeout(60_000);

  it('creates the topics once and carries a validated event end to end', async () => {
    const kafka = new Kafka({ clientId: 'schemas-test', brokers: endpointsFromEnv().kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: `schemas-test-${Date.now()}` });
    try {
      await ensureTopics(admin);
      assert.deepEqual(await ensureTopics(admin), [], 'second call creates nothing');
      const listed = await admin.listTopics();
      for (const t of Object.values(topics)) assert.ok(listed.includes(t), `${t} exists`);
      // The event log keeps everything: the rebuild tool replays it from the beginning.
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [topics.usage, topics.accounts, topics.control].map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms'] })),
      });
      for (const r of described.resources) assert.equal(r.configEntries.find((c) => c.configName === 'retention.ms')?.configValue, '-1', r.resourceName);

      const event = makeEvent('usage.recorded', { id: `usage:${Date.now()}`, source: 'test', accountPath: ['acme'], data: sampleUsage({ costs: ['1'] }) });
      await producer.connect();
      await producer.send({ topic: topicFor(event.type), acks: -1, messages: [{ key: partitionKeyFor(event), value: JSON.stringify(event) }] });

      await consumer.connect();
      await consumer.subscribe({ topic: topics.usage, fromBeginning: true });
      const got = await new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('event did not arrive')), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            const decoded = decodeEvent(message.value ?? Buffer.alloc(0));
            if (decoded.ok && decoded.value.id === event.id) {
              clearTimeout(timer);
              resolve(decoded.value);
            }
          },
        });
      });
      assert.deepEqual(got, event);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
