import assert from 'node:assert/strict';
import { UpstreamPool, parseResetDuration, retryAfterMs, type HealthChange } from '../../src/pool/pool.js';
import { classify } from '../../src/upstream/forward.js';

function key(id: string, over: Partial<Parameters<UpstreamPool['upsert']>[0]> = {}) {
  return { id, poolId: 'p', baseUrl: 'http://x/v1', organization: null, models: null, weight: 1, secret: `sk-${id}`, status: 'active' as const, reason: '', ...over };
}

describe('upstream pool', () => {
  it('prefers the key with the most headroom, then the fewest in flight', () => {
    const pool = new UpstreamPool();
    pool.upsert(key('a'));
    pool.upsert(key('b'));
    pool.observe('a', { 'x-ratelimit-limit-requests': '100', 'x-ratelimit-remaining-requests': '5', 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '900' });
    pool.observe('b', { 'x-ratelimit-limit-requests': '100', 'x-ratelimit-remaining-requests': '80', 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '900' });
    assert.equal(pool.pick('gpt-4o', new Set())?.id, 'b');
    const b = pool.get('b');
    if (b) b.inFlight = 100;
    assert.equal(pool.pick('gpt-4o', new Set())?.id, 'a');
  });

  it('forgets remaining figures at their reset time: a key learned as exhausted is used again', () => {
    const pool = new UpstreamPool();
    pool.upsert(key('a'));
    pool.upsert(key('b'));
    const t0 = 1_000_000;
    pool.observe(
      'a',
      {
        'x-ratelimit-limit-requests': '100',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '2s',
        'x-ratelimit-limit-tokens': '1000',
        'x-ratelimit-remaining-tokens': '1000',
        'x-ratelimit-reset-tokens': '1s',
      },
      t0,
    );
    pool.observe('b', { 'x-ratelimit-limit-requests': '100', 'x-ratelimit-remaining-requests': '50', 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '1000' }, t0);
    assert.equal(pool.pick('gpt-4o', new Set(), t0 + 1000)?.id, 'b', 'before its reset, a has no headroom');
    assert.equal(pool.pick('gpt-4o', new Set(), t0 + 2001)?.id, 'a', 'after its reset, a is full again and b is half used');
  });

  it('spreads load evenly over keys that score the same', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pool = new UpstreamPool(undefined, random);
    for (const id of ['a', 'b', 'c', 'd']) pool.upsert(key(id));
    const picks = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const id = pool.pick('gpt-4o', new Set())?.id ?? '';
      picks.set(id, (picks.get(id) ?? 0) + 1);
    }
    assert.equal(picks.size, 4);
    for (const [id, n] of picks) assert.ok(n > 800 && n < 1200, `${id} picked ${n} of 4000 times`);
  });

  it('skips excluded, disabled, cooling and wrong-model keys', () => {
    const pool = new UpstreamPool();
    pool.upsert(key('a', { models: ['gpt-4o*'] }));
    pool.upsert(key('b', { models: ['whisper-1'] }));
    assert.equal(pool.pick('gpt-4o-mini', new Set())?.id, 'a');
    assert.equal(pool.pick('gpt-4o', new Set(['a'])), null);
    pool.cooldown('a', Date.now() + 60_000, false);
    assert.equal(pool.pick('gpt-4o', new Set()), null);
    assert.ok((pool.soonestAvailableIn('gpt-4o', new Set()) ?? 0) > 50_000);
    pool.disable('b', 'invalid_api_key');
    assert.equal(pool.pick('whisper-1', new Set()), null);
  });

  it('cools a whole organization and announces it once; remote changes are not echoed', () => {
    const heard: HealthChange[] = [];
    const pool = new UpstreamPool((c) => heard.push(c));
    pool.upsert(key('a', { organization: 'org-1' }));
    pool.upsert(key('b', { organization: 'org-1' }));
    pool.upsert(key('c', { organization: 'org-2' }));
    const until = Date.now() + 30_000;
    pool.cooldown('a', until, true);
    assert.equal(pool.pick('gpt-4o', new Set())?.id, 'c');
    assert.deepEqual(heard, [{ kind: 'org-cooldown', organization: 'org-1', until }]);
    const other = new UpstreamPool((c) => heard.push(c));
    other.upsert(key('a', { organization: 'org-1' }));
    other.applyRemote(heard[0] as HealthChange);
    assert.equal(other.pick('gpt-4o', new Set()), null);
    assert.equal(heard.length, 1);
  });

  it('reads OpenAI reset durations and retry headers', () => {
    assert.equal(parseResetDuration('6m0s'), 360_000);
    assert.equal(parseResetDuration('1.5s'), 1500);
    assert.equal(parseResetDuration('120ms'), 120);
    assert.equal(parseResetDuration('1h2m3s'), 3_723_000);
    assert.equal(parseResetDuration('soon'), null);
    assert.equal(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9' }), 250);
    assert.equal(retryAfterMs({ 'retry-after': '7' }), 7000);
    assert.equal(retryAfterMs({ 'x-ratelimit-reset-requests': '2s', 'x-ratelimit-reset-tokens': '5s' }), 5000);
    assert.equal(retryAfterMs({}), null);
  });

  it('classifies upstream answers: retry with cooldown, disable, or hand back', () => {
    assert.deepEqual(classify(200, {}, ''), { kind: 'return', errorCode: null });
    assert.deepEqual(classify(400, {}, '{"error":{"code":"invalid_value"}}'), { kind: 'return', errorCode: 'invalid_value' });
    assert.deepEqual(classify(404, {}, '<html>'), { kind: 'return', errorCode: 'http_404' });
    assert.equal(classify(404, {}, '').kind, 'return');
    const quota = classify(429, {}, '{"error":{"type":"insufficient_quota","code":"insufficient_quota"}}');
    assert.equal(quota.kind === 'retry' && quota.disable, 'insufficient_quota');
    const rate = classify(429, { 'retry-after': '3' }, '{"error":{"code":"rate_limit_exceeded"}}');
    assert.ok(rate.kind === 'retry' && rate.cooldownMs === 3000 && rate.orgWide && !rate.disable);
    const auth = classify(401, {}, '{"error":{"code":"invalid_api_key"}}');
    assert.equal(auth.kind === 'retry' && auth.disable, 'invalid_api_key');
    for (const s of [500, 502, 503, 504]) assert.equal(classify(s, {}, '<html>').kind, 'retry');
    // A request above the organization's TPM is the caller's: handed back, no cooldown.
    const tooLarge = classify(
      429,
      {},
      '{"error":{"message":"Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 50000.","type":"tokens","code":"rate_limit_exceeded"}}',
    );
    assert.deepEqual(tooLarge, { kind: 'return', errorCode: 'request_too_large' });
  });
});
