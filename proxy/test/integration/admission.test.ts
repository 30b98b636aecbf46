import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { endpointsFromEnv } from '@yugong/infra';
import { redisKeys } from '@yugong/schemas';
import { createAdmissionScripts, type AdmissionRequest } from '../../src/admission/admit.js';
import { createAdmitter, DEFAULT_LEASES } from '../../src/admission/leases.js';

describe('admission script on real Redis', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(endpointsFromEnv().redisUrl);
  });
  after(() => redis.disconnect());

  async function account(credited = '1000'): Promise<AdmissionRequest> {
    const root = `adm-${randomUUID().slice(0, 8)}`;
    await redis.hset(redisKeys.account(root, root), 'status', 'active', 'credited', credited);
    return { root, path: [root], keyId: 'k1', holdId: `h-${randomUUID()}`, amounts: [400n], tokens: 10, keyRpm: 5, keyTpm: null, holdTtlMs: 60_000 };
  }
  const field = (req: AdmissionRequest, name: string) => redis.hget(redisKeys.account(req.root, req.root), name);

  it('holds funds until none are left, and says how many requests the key has left', async () => {
    const scripts = createAdmissionScripts(redis);
    const req = await account();
    const first = await scripts.admit(req);
    assert.deepEqual(first.ok && [first.kind, first.keyRpmRemaining, first.keyTpmRemaining], ['hold', 4, null]);
    assert.equal((await scripts.admit({ ...req, holdId: 'second' })).ok, true);
    // The two in flight hold what is left: wait for them; more than all the funds: no.
    assert.deepEqual(await scripts.admit({ ...req, holdId: 'third' }), { ok: false, reason: 'reserved', account: req.root });
    assert.deepEqual(await scripts.admit({ ...req, holdId: 'large', amounts: [1200n] }), { ok: false, reason: 'funds', account: req.root });
    assert.equal(await field(req, 'held'), '800');
    // The first finished for 100: its hold comes down to that, spent not reserved.
    await scripts.shrinkHold({ root: req.root, path: req.path, id: req.holdId, costs: [100n] });
    assert.deepEqual([await field(req, 'held'), await field(req, 'settling')], ['500', '100']);
    assert.equal((await scripts.admit({ ...req, holdId: 'third' })).ok, true, '1000 - 100 spent - 400 held fits 400');
    // 1000 - 100 - 800 held: wait for the two in flight; the one that finished is not waited for.
    assert.deepEqual(await scripts.admit({ ...req, holdId: 'fourth', amounts: [200n] }), { ok: false, reason: 'reserved', account: req.root });
    assert.deepEqual(await scripts.admit({ ...req, holdId: 'fifth', amounts: [950n] }), { ok: false, reason: 'funds', account: req.root });
    // A request that cost nothing (upstream failed): its hold is gone, nothing settles; it expires cleanly.
    const free = { ...req, holdId: `free-${randomUUID()}`, amounts: [50n], holdTtlMs: 30 };
    assert.equal((await scripts.admit(free)).ok, true);
    await scripts.shrinkHold({ root: req.root, path: req.path, id: free.holdId, costs: [0n] });
    assert.deepEqual([await field(req, 'held'), await field(req, 'settling')], ['900', '100']);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await scripts.admit({ ...req, holdId: 'after-expiry', amounts: [50n] })).ok, true, 'the sweep of the expired free hold raised no error');
  });

  it('loads the script again when Redis has lost it (a restart, SCRIPT FLUSH)', async () => {
    const scripts = createAdmissionScripts(redis);
    const req = await account();
    await redis.script('FLUSH');
    const admitted = await scripts.admit(req);
    assert.equal(admitted.ok, true);
    assert.equal(await field(req, 'held'), '400');
  });

  it('leases at most a share of the funds and of each window, and holds alone below the fewest units', async () => {
    const scripts = createAdmissionScripts(redis);
    const ask = (units: number) => ({ id: `lease-${randomUUID()}`, expiresAt: Date.now() + 60_000, units, minUnits: 4, share: 4 });
    // $1000 of funds at 400 a unit: a quarter is 625 units, the key's RPM (100) allows 25.
    const rich = { ...(await account('1000000')), keyRpm: 100 };
    const lease = await scripts.admit(rich, ask(64));
    assert.deepEqual(lease.ok && [lease.kind, lease.units, lease.keyRpmRemaining], ['lease', 25, 75]);
    assert.equal(await field(rich, 'leased'), String(25 * 400));
    assert.equal(await redis.get(redisKeys.rpm(rich.root, 'k:k1', lease.ok ? lease.minute : 0)), '25');
    // 1000 at 400 a unit: a quarter is not even one unit, so this request is held alone.
    const poor = await account();
    const alone = await scripts.admit(poor, ask(64));
    assert.deepEqual(alone.ok && [alone.kind, alone.units], ['hold', 1]);
    assert.equal(await field(poor, 'leased'), null);
    assert.equal(await field(poor, 'held'), '400');
  });

  it("a lease and its requests' settlements meet at zero in either order, and an expired lease releases itself", async () => {
    const scripts = createAdmissionScripts(redis);
    const req = { ...(await account('1000000')), keyRpm: null };
    const id = `lease-${randomUUID()}`;
    const v = await scripts.admit(req, { id, expiresAt: Date.now() + 60_000, units: 10, minUnits: 4, share: 4 });
    assert.ok(v.ok && v.kind === 'lease' && v.units === 10);
    assert.equal(await field(req, 'leased'), '4000');
    // The node gives back 3,000 before the ledger has settled the requests that cost 1,000.
    await scripts.returnLease({ root: req.root, path: req.path, keyId: req.keyId, id, minute: v.minute, unusedRequests: 6, unusedTokens: 60, unused: [3000n] });
    assert.equal(await field(req, 'leased'), '1000');
    assert.equal(await redis.get(redisKeys.rpm(req.root, 'k:k1', v.minute)), '4', 'the unused requests went back to the window');
    // What is left expires with the lease when no settlement comes (a node killed mid-request).
    const expiring = `lease-${randomUUID()}`;
    const w = await scripts.admit(req, { id: expiring, expiresAt: Date.now() + 50, units: 8, minUnits: 4, share: 4 });
    assert.ok(w.ok && w.kind === 'lease');
    assert.equal(await field(req, 'leased'), String(1000 + 8 * 400));
    await new Promise((r) => setTimeout(r, 60));
    assert.ok((await scripts.admit({ ...req, holdId: 'after' })).ok);
    assert.equal(await field(req, 'leased'), '1000', 'the expired lease was released by the next admission');
  });

  it('admits in memory under a lease, gives back what was not spent, and decides in Redis near the end of the funds', async () => {
    const scripts = createAdmissionScripts(redis);
    let calls = 0;
    const counted = {
      admit: (...a: Parameters<typeof scripts.admit>) => {
        calls++;
        return scripts.admit(...a);
      },
      returnLease: scripts.returnLease,
      shrinkHold: scripts.shrinkHold,
    };
    const admitter = createAdmitter({ scripts: counted, nodeId: 'test', leases: { ...DEFAULT_LEASES, windowMs: 60_000 }, log: pino({ level: 'silent' }) });
    const req = { ...(await account('1000000')), keyRpm: null };
    const admitted = [];
    for (let i = 0; i < 10; i++) admitted.push(await admitter.admit({ ...req, holdId: `r${i}` }));
    assert.equal(calls, 1, 'one lease served ten requests');
    assert.ok(admitted.every((a) => a.ok && a.holdId.startsWith('lease:test:')));
    for (const a of admitted) if (a.ok) await a.done([100n]);
    await admitter.close();
    // 10 requests cost 100 each; the rest of the lease went back.
    assert.equal(await field(req, 'leased'), '1000', 'what the requests cost waits in the lease for the ledger');
    assert.equal(await field(req, 'held'), null);

    const poor = await account('2000');
    const fresh = createAdmitter({ scripts, nodeId: 'test', leases: { ...DEFAULT_LEASES, windowMs: 60_000 }, log: pino({ level: 'silent' }) });
    const verdicts = [];
    for (let i = 0; i < 6; i++) verdicts.push(await fresh.admit({ ...poor, keyRpm: null, holdId: `p${i}` }));
    assert.deepEqual(
      verdicts.map((v) => v.ok),
      [true, true, true, true, true, false],
      'five holds of 400 and no more',
    );
    assert.ok(
      verdicts.every((v) => !v.ok || v.holdId.startsWith('p')),
      'each held alone',
    );
    await fresh.close();
  });
});
