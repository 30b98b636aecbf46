import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { endpointsFromEnv } from '@yugong/infra';
import { makeEvent, producerOptions, topics, unpackEvents, type YugongEvent } from '@yugong/schemas';
import { createEventSink } from '../../src/events/sink.js';
import { waitFor } from './harness.js';

const accountCreated = (id: string): YugongEvent =>
  makeEvent('account.created', {
    id: `account:${id}:created`,
    source: 'journal-test',
    accountPath: [id],
    data: { accountId: id, parentId: null, name: id, multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null },
  });

/**
 * The journal on real Kafka: what a node that ended left in a shared spool (a torn last line
 * included) is taken over by the next node and sent, the torn line set aside, counted once.
 */
describe('the event journal', function () {
  this.timeout(60_000);

  it("takes over an ended node's segments, sends their events and sets a torn line aside", async () => {
    const kafka = new Kafka({ clientId: 'journal-test', brokers: endpointsFromEnv().kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topics.accounts).catch(() => []);
    await admin.disconnect();
    const received = new Set<string>();
    const consumer = kafka.consumer({ groupId: `journal-test-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.accounts, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = ends.find((e) => e.partition === partition);
        if (end && BigInt(message.offset) < BigInt(end.high)) return;
        for (const { decoded } of unpackEvents(message.value ?? Buffer.alloc(0))) if (decoded.ok) received.add(decoded.value.id);
      },
    });
    const producer = kafka.producer(producerOptions);
    await producer.connect();
    const spool = mkdtempSync(join(tmpdir(), 'yugong-journal-'));
    // A node that was killed mid-append: three events, then half a line; its heartbeat two minutes old.
    const dead = join(spool, 'node-dead');
    mkdirSync(dead);
    const good = [1, 2, 3].map(() => accountCreated(`jt-${randomUUID().slice(0, 8)}`));
    const torn = JSON.stringify(accountCreated('jt-torn')).slice(0, 40);
    writeFileSync(join(dead, 'journal-000000000000001-000000-1.jsonl'), `${good.map((e) => JSON.stringify(e)).join('\n')}\n${torn}`);
    writeFileSync(join(dead, 'owner.json'), '{}');
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(dead, 'owner.json'), old, old);
    // A live node beside it: its folder is left alone.
    const live = join(spool, 'node-live');
    mkdirSync(live);
    writeFileSync(join(live, 'journal-000000000000002-000000-2.jsonl'), `${JSON.stringify(accountCreated('jt-live'))}\n`);
    writeFileSync(join(live, 'owner.json'), '{}');

    let corrupt = 0;
    const sink = createEventSink({ producer, spoolDir: spool, owner: 'node-new', spoolMaxBytes: 1 << 20, log: pino({ level: 'silent' }), replayIntervalMs: 200, onCorruptLine: () => corrupt++ });
    try {
      await waitFor('the three events in Kafka', async () => (good.every((e) => received.has(e.id)) ? true : null), 30_000);
      await waitFor('the journal empty', async () => sink.spoolBytes() === 0, 30_000);
      // New events flow as usual after the takeover.
      const next = accountCreated(`jt-${randomUUID().slice(0, 8)}`);
      await sink.emit(next);
      await waitFor('a new event in Kafka', async () => (received.has(next.id) ? true : null), 30_000);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(corrupt, 1, 'the torn line counted once, however many rounds ran');
      const bad = readFileSync(join(spool, 'node-new', 'adopted-journal-000000000000001-000000-1.jsonl.bad'), 'utf8');
      assert.equal(bad, `${torn}\n`);
      assert.ok(!received.has('account:jt-torn:created'));
      assert.ok(!received.has('account:jt-live:created'), "a live node's journal is its own");
      assert.ok(existsSync(join(live, 'journal-000000000000002-000000-2.jsonl')));
    } finally {
      await sink.close();
      await producer.disconnect();
      await consumer.disconnect();
    }
  });
});
