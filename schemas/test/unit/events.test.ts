import assert from 'node:assert/strict';
import { decodeEvent, makeEvent, packEvents, parseEvent, unpackEvents } from '../../src/events.js';
import { sampleUsage } from '../../src/testing.js';
import { partitionKeyFor, topicFor, topics } from '../../src/topics.js';
import { redisKeys } from '../../src/redis-keys.js';

describe('events', () => {
  it('round-trips a valid usage event through JSON', () => {
    const e = makeEvent('usage.recorded', { id: 'usage:req_1', source: 'proxy-1', accountPath: ['root', 'child'], data: sampleUsage() });
    const back = decodeEvent(Buffer.from(JSON.stringify(e)));
    assert.ok(back.ok);
    assert.deepEqual(back.value, e);
  });

  it('names the field that makes an event invalid', () => {
    const e = makeEvent('usage.recorded', { id: 'x', source: 's', accountPath: ['root'], data: sampleUsage({ costs: ['12'] }) });
    const bad = parseEvent({ ...e, data: { ...e.data, tokens: { ...e.data.tokens, prompt: -1 } } });
    assert.equal(bad.ok, false);
    assert.match((bad as { error: string }).error, /data\.tokens\.prompt/);
  });

  it('rejects unknown types, unknown fields, non-JSON and cost/path mismatches', () => {
    const e = makeEvent('credit.granted', {
      id: 'c1',
      source: 'admin',
      accountPath: ['root'],
      data: { accountId: 'root', amountNano: '1000', note: '', idempotencyKey: 'k', grantedBy: 'op' },
    });
    assert.ok(parseEvent(e).ok);
    assert.equal(parseEvent({ ...e, type: 'credit.stolen' }).ok, false);
    assert.equal(parseEvent({ ...e, data: { ...e.data, balance: '5' } }).ok, false);
    assert.equal(parseEvent({ ...e, data: { ...e.data, amountNano: '1.5' } }).ok, false);
    assert.equal(decodeEvent('{not json').ok, false);
    const mismatch = makeEvent('usage.recorded', { id: 'u', source: 's', accountPath: ['root'], data: sampleUsage() });
    assert.match((parseEvent(mismatch) as { error: string }).error, /one cost per account/);
  });

  it('packs events of one key into one message, a line each; one bad line spoils no other', () => {
    const a = makeEvent('usage.recorded', { id: 'usage:a', source: 's', accountPath: ['root'], data: sampleUsage({ costs: ['1'], requestId: 'req_a', errorCode: 'line\nbreak' }) });
    const b = makeEvent('usage.recorded', { id: 'usage:b', source: 's', accountPath: ['root'], data: sampleUsage({ costs: ['2'] }) });
    assert.equal(packEvents([a]), JSON.stringify(a), 'a message of one event is the event, as before packing');
    const packed = packEvents([a, b]);
    assert.equal(packed.split('\n').length, 2, 'a newline inside a string is escaped, never raw');
    assert.deepEqual(
      unpackEvents(Buffer.from(packed)).map((l) => (l.decoded.ok ? l.decoded.value : null)),
      [a, b],
    );
    const spoiled = unpackEvents(`${JSON.stringify(a)}\ngarbage\n${JSON.stringify(b)}`);
    assert.deepEqual(
      spoiled.map((l) => l.decoded.ok),
      [true, false, true],
    );
    assert.equal(spoiled[1]?.text, 'garbage');
    assert.equal(unpackEvents(Buffer.alloc(0))[0]?.decoded.ok, false, 'an empty message is one invalid event');
  });

  it('routes events to topics and partitions by root account', () => {
    const e = makeEvent('usage.recorded', { id: 'u', source: 's', accountPath: ['root', 'child'], data: sampleUsage() });
    assert.equal(topicFor(e.type), topics.usage);
    assert.equal(partitionKeyFor(e), 'root');
    const p = makeEvent('price.table.published', { id: 'p', source: 's', accountPath: [], data: { version: 'v', source: 's', table: {} } });
    assert.equal(topicFor(p.type), topics.control);
    assert.equal(partitionKeyFor(p), 'prices');
  });

  it('tags every key of an account tree with the same hash tag', () => {
    const tag = (k: string) => /\{([^}]+)\}/.exec(k)?.[1];
    for (const k of [redisKeys.account('r', 'a'), redisKeys.holds('r', 'b'), redisKeys.applied('r', 'e1'), redisKeys.rpm('r', 'a', 5)]) {
      assert.equal(tag(k), 'r');
    }
  });
});
