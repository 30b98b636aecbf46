import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { newApiKey } from '../../src/control/service.js';
import { loadConfig } from '../../src/config.js';
import { nestedDeeperThan } from '../../src/http/body.js';
import { modelAllowed, privateTarget } from '@yugong/schemas';
import { decryptSecret, encryptSecret, upstreamKeyId } from '../../src/pool/crypto.js';

describe('keys, secrets and allowlists', () => {
  it('makes API keys with ≥ 190 random bits and a recognisable prefix', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => newApiKey()));
    assert.equal(keys.size, 1000);
    for (const k of keys) assert.match(k, /^sk-yg-[0-9A-Za-z]{32}$/);
  });

  it('encrypts upstream keys at rest and refuses a wrong secret or tampering', () => {
    const secret = randomBytes(32);
    const sealed = encryptSecret(secret, 'sk-live-upstream');
    assert.ok(!sealed.includes('sk-live'));
    assert.equal(decryptSecret(secret, sealed), 'sk-live-upstream');
    assert.throws(() => decryptSecret(randomBytes(32), sealed));
    const bytes = Buffer.from(sealed, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    assert.throws(() => decryptSecret(secret, bytes.toString('base64')));
    assert.match(upstreamKeyId('https://api.openai.com/v1', 'sk-x'), /^up_[0-9a-f]{16}$/);
  });

  it('matches models', () => {
    assert.ok(modelAllowed(null, 'gpt-4o'));
    assert.ok(modelAllowed(['gpt-4o*'], 'gpt-4o-mini'));
    assert.ok(!modelAllowed(['gpt-4o-mini'], 'gpt-4o'));
  });

  it('validates its configuration once and names every problem', () => {
    const base = { YUGONG_KAFKA_BROKERS: 'k:1', YUGONG_REDIS_URL: 'redis://r:1', YUGONG_ADMIN_TOKEN: 'x'.repeat(24), YUGONG_SECRET_KEY: 'ab'.repeat(32) };
    const c = loadConfig(base);
    assert.equal(c.secretKey.length, 32);
    assert.throws(() => loadConfig({ ...base, YUGONG_SECRET_KEY: 'short-but-32-characters-long-xxxx' }), /YUGONG_SECRET_KEY/);
    assert.throws(() => loadConfig({ ...base, YUGONG_UPSTREAMS: '[{"baseUrl":"not a url","key":"k"}]' }), /YUGONG_UPSTREAMS/);
    assert.throws(() => loadConfig({ ...base, YUGONG_ADMIN_TOKEN: 'short' }), /YUGONG_ADMIN_TOKEN/);
  });

  it('refuses upstreams inside the network (loopback, private, link-local, cloud metadata) unless allowed', () => {
    const base = { YUGONG_KAFKA_BROKERS: 'k:1', YUGONG_REDIS_URL: 'redis://r:1', YUGONG_ADMIN_TOKEN: 'x'.repeat(24), YUGONG_SECRET_KEY: 'ab'.repeat(32) };
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://127.0.0.1:8080/v1',
      'http://10.1.2.3/v1',
      'http://172.20.0.1/v1',
      'http://192.168.1.1/v1',
      'http://[::1]/v1',
      'http://[fe80::1]/v1',
      'http://[::ffff:169.254.169.254]/v1',
      'http://localhost:11434/v1',
      'http://metadata.google.internal/computeMetadata/v1',
      'http://0.0.0.0/v1',
    ]) {
      assert.ok(privateTarget(url), url);
      assert.throws(() => loadConfig({ ...base, YUGONG_UPSTREAMS: JSON.stringify([{ baseUrl: url, key: 'k' }]) }), /YUGONG_UPSTREAMS.*YUGONG_ALLOW_PRIVATE_UPSTREAMS/, url);
      assert.equal(loadConfig({ ...base, YUGONG_UPSTREAMS: JSON.stringify([{ baseUrl: url, key: 'k' }]), YUGONG_ALLOW_PRIVATE_UPSTREAMS: 'true' }).upstreams.length, 1);
    }
    for (const url of ['https://api.openai.com/v1', 'https://my-resource.openai.azure.com/openai', 'http://203.0.113.7/v1', 'https://[2001:db8::1]/v1']) assert.equal(privateTarget(url), null, url);
  });
});

describe('JSON nesting depth', () => {
  it('finds nesting beyond the limit, ignoring brackets inside strings and escaped quotes', () => {
    assert.equal(nestedDeeperThan(Buffer.from(`${'['.repeat(64)}${']'.repeat(64)}`), 64), false);
    assert.equal(nestedDeeperThan(Buffer.from(`${'['.repeat(65)}${']'.repeat(65)}`), 64), true);
    assert.equal(nestedDeeperThan(Buffer.from(JSON.stringify({ a: '['.repeat(1000), b: '\\"[[[[' })), 2), false);
    assert.equal(nestedDeeperThan(Buffer.from('{"a":"\\"","b":[[[1]]]}'), 3), true);
    assert.equal(nestedDeeperThan(Buffer.from('{"a":"\\\\","b":[[1]]}'), 3), false);
  });
});

describe('caches keyed by client input', () => {
  it('the key projection keeps at most 50,000 entries however many unknown keys are tried', async () => {
    const { Projections } = await import('../../src/auth/projections.js');
    const redis = { hgetall: async () => ({}) } as unknown as ConstructorParameters<typeof Projections>[0];
    const p = new Projections(redis);
    for (let i = 0; i < 60_000; i++) assert.equal(await p.clientKey(`garbage-${i}`, 1_000), null);
    const size = (p as unknown as { keys: Map<string, unknown> }).keys.size;
    assert.ok(size <= 50_000, `${size} entries`);
    // Expired entries go first once the bound is reached again.
    for (let i = 0; i < 6_000; i++) await p.clientKey(`later-${i}`, 1_000_000);
    assert.ok((p as unknown as { keys: Map<string, unknown> }).keys.size <= 6_000, 'the expired garbage was swept');
  });
});
