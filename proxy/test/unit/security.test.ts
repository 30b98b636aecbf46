import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { newApiKey } from '../../src/control/service.js';
import { loadConfig } from '../../src/config.js';
import { nestedDeeperThan } from '../../src/http/body.js';
import { modelAllowed } from '@yugong/schemas';
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
