import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { connectRedis, isClusterUrl, keySlot, redisKeys, redisUrl } from '../../src/index.js';

describe('Redis client: one server or a cluster', () => {
  it('computes the slots Redis Cluster does (CRC16 of the hash tag)', () => {
    // What `CLUSTER KEYSLOT` of Debian's Redis 7 answered for each (2026-12-02).
    const slots: [string, number][] = [
      ['foo', 12182],
      ['bar', 5061],
      ['somekey', 11058],
      ['foo{hash_tag}', 2515],
      ['{}foo', 9500],
      ['foo{}{bar}', 8363],
      ['{user1000}.following', 3443],
      ['yg:{acct-1}:acct:a', 15800],
      ['中文{根}x', 14621],
    ];
    for (const [key, slot] of slots) assert.equal(keySlot(key), slot, key);
    // Every key of one account tree is on one slot: scripts over a tree stay on one node.
    const root = 'acct-1';
    const tree = new Set([redisKeys.account(root, 'a'), redisKeys.holds(root, 'b'), redisKeys.leaseAmounts(root, 'c'), redisKeys.rpm(root, 'k:x', 1), redisKeys.applied(root, 'e')].map(keySlot));
    assert.equal(tree.size, 1);
  });

  it('reads redis://, rediss:// and redis+cluster:// URLs and refuses others', () => {
    for (const ok of ['redis://127.0.0.1:6379', 'rediss://u:p@cache.example:6380/2', 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000', 'rediss+cluster://u:p@a:1,b:2'])
      assert.ok(redisUrl.safeParse(ok).success, ok);
    for (const bad of ['http://x', 'redis:/x', 'redis+cluster:/x', '']) assert.ok(!redisUrl.safeParse(bad).success, bad);
    assert.equal(isClusterUrl('redis+cluster://a:1'), true);
    assert.equal(isClusterUrl('redis://a:1'), false);
  });

  it('opens a Cluster for a cluster URL, with its seeds and credentials', () => {
    const c = connectRedis('redis+cluster://user:p%40ss@127.0.0.1:7001,127.0.0.1:7002', { lazyConnect: true });
    assert.ok(c instanceof Cluster);
    assert.deepEqual((c as unknown as { startupNodes: unknown[] }).startupNodes, [
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
    ]);
    assert.deepEqual([c.options.redisOptions?.username, c.options.redisOptions?.password], ['user', 'p@ss']);
    c.disconnect();
    const r = connectRedis('redis://127.0.0.1:1', { lazyConnect: true });
    assert.ok(r instanceof Redis);
    r.disconnect();
  });
});
