import assert from 'node:assert/strict';
import { accessDenials, authorize, corsAllowed } from '../../src/access/authenticate.js';
import { clientAddress, formatIp, ipAllowed, limiterSubject, parseCidr, parseIp, parseTrustedProxies } from '../../src/access/ip.js';
import type { AccountView, ClientKey } from '../../src/access/records.js';

describe('addresses and ranges', () => {
  it('parses both families and unwraps IPv4-mapped IPv6', () => {
    assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203n });
    assert.deepEqual(parseIp('::ffff:10.1.2.3'), { family: 4, value: 0x0a010203n });
    assert.deepEqual(parseIp('::ffff:a01:203'), { family: 4, value: 0x0a010203n });
    assert.equal(parseIp('2001:db8::1')?.value, 0x20010db8000000000000000000000001n);
    assert.equal(parseIp('::1')?.value, 1n);
    assert.equal(parseIp('not an ip'), null);
    assert.equal(parseIp('1.2.3.4:80'), null);
    assert.equal(parseIp('999.1.1.1'), null);
  });

  it('formats canonically (RFC 5952 for IPv6)', () => {
    for (const [input, out] of [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::1', '::1'],
      ['::', '::'],
      ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
      ['::ffff:127.0.0.1', '127.0.0.1'],
      ['fe80::1:0:0:1', 'fe80::1:0:0:1'],
    ]) {
      assert.equal(formatIp(parseIp(input as string) ?? { family: 4, value: 0n }), out, input);
    }
  });

  it('matches allowlists of either family', () => {
    assert.ok(ipAllowed(['10.0.0.0/8'], '10.1.2.3'));
    assert.ok(!ipAllowed(['10.0.0.0/8'], '11.0.0.1'));
    assert.ok(ipAllowed(['127.0.0.1'], '::ffff:127.0.0.1'));
    assert.ok(ipAllowed(['0.0.0.0/0'], '8.8.8.8'));
    assert.ok(!ipAllowed(['0.0.0.0/0'], '2001:db8::1'), 'an IPv4 range never matches IPv6');
    assert.ok(ipAllowed(['2001:db8::/32'], '2001:db8:ffff::1'));
    assert.ok(!ipAllowed(['2001:db8::/32'], '2001:db9::1'));
    assert.ok(ipAllowed(['::ffff:10.0.0.0/104'], '10.9.9.9'));
    assert.ok(!ipAllowed([], '8.8.8.8'));
    assert.ok(ipAllowed(null, '8.8.8.8'));
    assert.ok(!ipAllowed(['10.0.0.0/8'], ''), 'an unknown address matches no list');
    for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/1', 'x/8', '::/129']) assert.equal(parseCidr(bad), null, bad);
    assert.throws(() => parseTrustedProxies('10.0.0.1, nonsense'), /nonsense/);
  });

  it('believes X-Forwarded-For only through trusted hops', () => {
    const lb = parseTrustedProxies('10.0.0.0/8, 2001:db8:1::/48');
    // No trusted proxies configured: the header is ignored.
    assert.equal(clientAddress('203.0.113.7', '198.51.100.1', []), '203.0.113.7');
    // A client that is not a trusted proxy cannot name another address.
    assert.equal(clientAddress('203.0.113.7', '198.51.100.1', lb), '203.0.113.7');
    // Through the balancer: its header names the client.
    assert.equal(clientAddress('10.0.0.5', '198.51.100.1', lb), '198.51.100.1');
    // A forged entry left of the real one is never read.
    assert.equal(clientAddress('10.0.0.5', '1.1.1.1, 198.51.100.1', lb), '198.51.100.1');
    // Two trusted hops, then the client.
    assert.equal(clientAddress('10.0.0.5', '198.51.100.1, 10.0.0.9', lb), '198.51.100.1');
    assert.equal(clientAddress('::ffff:10.0.0.5', ['198.51.100.1'], lb), '198.51.100.1');
    assert.equal(clientAddress('2001:db8:1::5', '2001:db8:2::1', lb), '2001:db8:2::1');
    // Garbage after the trusted hop stops the walk at the last address known.
    assert.equal(clientAddress('10.0.0.5', 'garbage', lb), '10.0.0.5');
    assert.equal(clientAddress('10.0.0.5', undefined, lb), '10.0.0.5');
  });

  it('counts IPv6 failures per /64', () => {
    assert.equal(limiterSubject('2001:db8:1:2:aaaa::1'), limiterSubject('2001:db8:1:2:bbbb::9'));
    assert.notEqual(limiterSubject('2001:db8:1:2::1'), limiterSubject('2001:db8:1:3::1'));
    assert.equal(limiterSubject('::ffff:1.2.3.4'), '1.2.3.4');
  });
});

describe('authorization, the one rule for every service', () => {
  const key: ClientKey = { keyId: 'k', accountId: 'b', root: 'a', path: ['a', 'b'], status: 'active', models: null, rpm: null, tpm: null, ipAllowlist: null, origins: null, expiresAt: null };
  const account = (id: string): AccountView => ({ id, status: 'active', multiplierPpm: 1_000_000, rpm: null, tpm: null, models: null, ipAllowlist: null, expiresAt: null });
  const ctx = { ip: '198.51.100.1', origin: undefined as string | undefined, now: 1_000_000 };
  const path = [account('a'), account('b')];

  it('lets an unrestricted live key through', () => {
    assert.equal(authorize(key, path, ctx), null);
  });

  for (const [name, k, accounts, c, code] of [
    ['revoked key', { ...key, status: 'revoked' }, path, ctx, 'invalid_api_key'],
    ['expired key', { ...key, expiresAt: 999_999 }, path, ctx, 'invalid_api_key'],
    ['disabled ancestor', key, [{ ...account('a'), status: 'disabled' }, account('b')], ctx, 'account_disabled'],
    ['expired account', key, [account('a'), { ...account('b'), expiresAt: 1 }], ctx, 'account_disabled'],
    ['key IP allowlist', { ...key, ipAllowlist: ['10.0.0.0/8'] }, path, ctx, 'ip_not_allowed'],
    ['ancestor IP allowlist', key, [{ ...account('a'), ipAllowlist: ['2001:db8::/32'] }, account('b')], ctx, 'ip_not_allowed'],
    ['origin', { ...key, origins: ['https://app.example'] }, path, { ...ctx, origin: 'https://evil.example' }, 'origin_not_allowed'],
  ] as const) {
    it(`refuses: ${name}`, () => {
      assert.equal(authorize(k as ClientKey, accounts as AccountView[], c)?.code, code);
    });
  }

  it('allows a listed origin and requests without one, and hides the refusal from other origins', () => {
    const limited = { ...key, origins: ['https://app.example'] };
    assert.equal(authorize(limited, path, { ...ctx, origin: 'https://app.example' }), null);
    assert.equal(authorize(limited, path, ctx), null);
    assert.equal(corsAllowed(accessDenials.originNotAllowed()), false);
    assert.equal(corsAllowed(accessDenials.invalidKey('http://x')), true);
  });
});
