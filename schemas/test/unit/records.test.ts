import assert from 'node:assert/strict';
import {
  ACCOUNT_COUNTERS,
  ACCOUNT_VIEW_FIELDS,
  decodeAccount,
  decodeAccountView,
  decodeApiKey,
  decodeClientKey,
  decodeNotice,
  decodeUpstreamKey,
  encodeAccount,
  encodeAccountDisabled,
  encodeAccountSettings,
  encodeApiKey,
  encodeApiKeyRevoked,
  encodeNotice,
  encodeUpstreamKey,
  withUpstreamStatus,
  type ChangeNotice,
} from '../../src/index.js';

/** Redis keeps strings: what HSET stores of a record. */
const stored = (h: Record<string, string | number>): Record<string, string> => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v)]));

describe('Redis records: one encoder and one decoder each', () => {
  const settings = {
    name: 'Lab',
    multiplierPpm: 1_250_000,
    creditLimitNano: '5000000000',
    limits: { rpm: 60, tpm: null },
    models: ['gpt-4o-mini'],
    ipAllowlist: null,
    expiresAt: '2027-01-01T00:00:00.000Z',
  };

  it('an account round-trips, counters and all, and admission reads the same fields', () => {
    const h = stored({
      ...encodeAccount({ id: 'kid', parentId: 'root', root: 'root', path: ['root', 'kid'], settings, createdAt: '2026-12-02T00:00:00.000Z' }),
      ...Object.fromEntries(ACCOUNT_COUNTERS.map((c) => [c, '0'])),
    });
    Object.assign(h, { credited: '9000000000', spent: '1500', held: '20', leased: '30', requests: '3' });
    assert.deepEqual(decodeAccount(h), {
      id: 'kid',
      parentId: 'root',
      root: 'root',
      path: ['root', 'kid'],
      name: 'Lab',
      status: 'active',
      disabledReason: null,
      multiplierPpm: 1_250_000,
      creditLimitNano: 5_000_000_000n,
      creditedNano: 9_000_000_000n,
      spentNano: 1500n,
      heldNano: 20n,
      leasedNano: 30n,
      requests: 3,
      rpm: 60,
      tpm: null,
      models: ['gpt-4o-mini'],
      ipAllowlist: null,
      expiresAt: '2027-01-01T00:00:00.000Z',
      createdAt: '2026-12-02T00:00:00.000Z',
    });
    assert.deepEqual(
      decodeAccountView(
        'kid',
        ACCOUNT_VIEW_FIELDS.map((f) => h[f] ?? null),
      ),
      {
        id: 'kid',
        status: 'active',
        multiplierPpm: 1_250_000,
        rpm: 60,
        tpm: null,
        models: ['gpt-4o-mini'],
        ipAllowlist: null,
        expiresAt: Date.parse('2027-01-01T00:00:00.000Z'),
      },
    );
    const disabled = { ...h, ...encodeAccountDisabled('unpaid') };
    assert.deepEqual([decodeAccount(disabled)?.status, decodeAccount(disabled)?.disabledReason], ['disabled', 'unpaid']);
    assert.equal(decodeAccount({}), null, 'not written yet');
  });

  it('a patch writes only what it changes, and clears with the empty string', () => {
    assert.deepEqual(encodeAccountSettings({ name: 'New' }), { name: 'New' });
    const cleared = encodeAccountSettings({ limits: { rpm: null, tpm: 10 }, models: null, creditLimitNano: null, expiresAt: null });
    assert.deepEqual(cleared, { rpm: '', tpm: '10', models: '', creditLimitNano: '0', expiresAt: '' });
    const a = decodeAccount({ id: 'a', ...cleared });
    assert.deepEqual([a?.rpm, a?.tpm, a?.models, a?.creditLimitNano, a?.expiresAt], [null, 10, null, 0n, null]);
  });

  it('an API key round-trips for its owner and for the lookup; a revoke changes both', () => {
    const data = {
      keyId: 'key_1',
      accountId: 'kid',
      hash: 'a'.repeat(64),
      prefix: 'sk-yg-abc',
      name: 'ci',
      models: null,
      limits: { rpm: null, tpm: 1000 },
      ipAllowlist: ['10.0.0.0/8'],
      origins: null,
      expiresAt: null,
    };
    const h = encodeApiKey(data, { root: 'root', path: ['root', 'kid'], createdAt: '2026-12-02T00:00:00.000Z' });
    assert.ok(!Object.values(h).includes(data.hash), 'the hash is not part of the record');
    assert.deepEqual(decodeApiKey(h), {
      keyId: 'key_1',
      accountId: 'kid',
      root: 'root',
      path: ['root', 'kid'],
      prefix: 'sk-yg-abc',
      name: 'ci',
      status: 'active',
      models: null,
      rpm: null,
      tpm: 1000,
      ipAllowlist: ['10.0.0.0/8'],
      origins: null,
      expiresAt: null,
      createdAt: '2026-12-02T00:00:00.000Z',
      revokedAt: null,
    });
    assert.deepEqual(decodeClientKey(h), {
      keyId: 'key_1',
      accountId: 'kid',
      root: 'root',
      path: ['root', 'kid'],
      status: 'active',
      models: null,
      rpm: null,
      tpm: 1000,
      ipAllowlist: ['10.0.0.0/8'],
      origins: null,
      expiresAt: null,
    });
    const revoked = { ...h, ...encodeApiKeyRevoked('2026-12-03T00:00:00.000Z') };
    assert.deepEqual([decodeApiKey(revoked)?.status, decodeApiKey(revoked)?.revokedAt, decodeClientKey(revoked)?.status], ['revoked', '2026-12-03T00:00:00.000Z', 'revoked']);
  });

  it('an upstream key round-trips; a health change on a removed key revives nothing', () => {
    const k = {
      keyId: 'up_1',
      poolId: 'p',
      baseUrl: 'https://api.openai.com/v1',
      organization: null,
      models: null,
      weight: 1,
      encryptedKey: 'x',
      status: 'active' as const,
      reason: '',
      changedAt: 't0',
    };
    assert.deepEqual(decodeUpstreamKey(encodeUpstreamKey(k)), k);
    assert.deepEqual(withUpstreamStatus(encodeUpstreamKey(k), 'disabled', '401 from upstream', 't1'), { ...k, status: 'disabled', reason: '401 from upstream', changedAt: 't1' });
    assert.equal(withUpstreamStatus(null, 'active', 'probe', 't2'), null);
  });

  it('every change notice round-trips; anything else on the channel is not a notice', () => {
    const notices: ChangeNotice[] = [
      { type: 'account', accountId: 'a', root: 'r' },
      { type: 'apikey', hash: 'h' },
      { type: 'upstream', keyId: 'up_1' },
      { type: 'prices', version: 'v1' },
      { type: 'upstream-health', from: 'node-1', change: { kind: 'cooldown', keyId: 'up_1', until: 1 } },
      { type: 'upstream-health', from: 'node-1', change: { kind: 'org-cooldown', organization: 'org', until: 2 } },
    ];
    for (const n of notices) assert.deepEqual(decodeNotice(encodeNotice(n)), n);
    for (const junk of ['', 'not json', 'null', '[]', '{"type":"account"}', '{"type":"apikey","hash":5}', '{"type":"drop-all"}', `{"type":"prices","version":"${'v'.repeat(1000)}"}`]) {
      assert.equal(decodeNotice(junk), null, junk.slice(0, 40));
    }
  });
});
