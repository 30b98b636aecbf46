import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { endpointsFromEnv } from '@yugong/infra';
import { redisKeys } from '@yugong/schemas';
import { createAdmitter, type AdmissionRequest } from '../../src/admission/admit.js';

describe('admission script on real Redis', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(endpointsFromEnv().redisUrl);
  });
  after(() => redis.disconnect());

  async function account(): Promise<AdmissionRequest> {
    const root = `adm-${randomUUID().slice(0, 8)}`;
    await redis.hset(redisKeys.account(root, root), 'status', 'active', 'credited', '1000');
    return { root, path: [root], keyId: 'k1', holdId: `h-${randomUUID()}`, amounts: [400n], tokens: 10, keyRpm: 5, keyTpm: null, holdTtlMs: 60_000 };
  }

  it('holds funds until none are left, and says how many requests the key has left', async () => {
    const admitter = createAdmitter(redis);
    const req = await account();
    const first = await admitter.admit(req);
    assert.deepEqual(first.ok && [first.keyRpmRemaining, first.keyTpmRemaining], [4, null]);
    assert.equal((await admitter.admit({ ...req, holdId: 'second' })).ok, true);
    assert.deepEqual(await admitter.admit({ ...req, holdId: 'third' }), { ok: false, reason: 'funds', account: req.root });
    assert.equal(await redis.hget(redisKeys.account(req.root, req.root), 'held'), '800');
  });

  it('loads the script again when Redis has lost it (a restart, SCRIPT FLUSH)', async () => {
    const admitter = createAdmitter(redis);
    const req = await account();
    await redis.script('FLUSH');
    const admitted = await admitter.admit(req);
    assert.equal(admitted.ok, true);
    assert.equal(await redis.hget(redisKeys.account(req.root, req.root), 'held'), '400');
  });
});
