import assert from 'node:assert/strict';
import { applyPpm, costsForPath, divRoundHalfUp, formatUsd, nanoToCents, parseMultiplier, parseUsd, scaleDecimal } from '../../src/money.js';

describe('money (integer nano-USD)', () => {
  it('parses USD exactly, without floats', () => {
    assert.equal(parseUsd('0.1'), 100_000_000n);
    assert.equal(parseUsd('12.000000001'), 12_000_000_001n);
    assert.equal(parseUsd('90071992547.409919'), 90_071_992_547_409_919_000n);
    assert.throws(() => parseUsd('0.0000000001'), /more than 9 decimals/);
    assert.throws(() => parseUsd('1e3'), /not a USD amount/);
    assert.throws(() => parseUsd('abc'), /not a USD amount/);
  });

  it('scales decimals rounding half up beyond the scale', () => {
    assert.equal(scaleDecimal('0.0000000005', 9), 1n);
    assert.equal(scaleDecimal('0.0000000004', 9), 0n);
    assert.equal(scaleDecimal('-1.5', 0), -2n);
    assert.equal(scaleDecimal('2.5', 0), 3n);
  });

  it('formats nano-USD back to decimal strings', () => {
    assert.equal(formatUsd(1_234_567_891n), '1.234567891');
    assert.equal(formatUsd(1_234_567_891n, 2), '1.23');
    assert.equal(formatUsd(1_995_000_000n, 2), '2.00');
    assert.equal(formatUsd(-5_000_000n, 2), '-0.01');
    assert.equal(formatUsd(0n, 0), '0');
  });

  it('applies ppm multipliers with one half-up rounding', () => {
    assert.equal(applyPpm(3n, 1_500_000), 5n); // 4.5 → 5
    assert.equal(applyPpm(5n, 1_100_000), 6n); // 5.5 → 6
    assert.equal(applyPpm(7_250_000n, 1_500_000), 10_875_000n);
    assert.equal(applyPpm(1n, 1_000_000), 1n);
    assert.throws(() => applyPpm(1n, -1));
    assert.equal(divRoundHalfUp(-3n, 2n), -2n);
  });

  it('parses multipliers into ppm and rejects nonsense', () => {
    assert.equal(parseMultiplier('1.5'), 1_500_000);
    assert.equal(parseMultiplier('0.000001'), 1);
    assert.throws(() => parseMultiplier('-1'));
    assert.throws(() => parseMultiplier('1.0000001'), /more than 6 decimals/);
  });

  it('converts to cents for the OpenAI billing endpoints', () => {
    assert.equal(nanoToCents(12_340_000_000n), 1234);
    assert.equal(nanoToCents(5_000_000n), 0.5);
  });
});

describe('costs along an account path', () => {
  it('charges each account at its own price, rounding once per account', () => {
    // root ×1, reseller ×1.5, customer ×1.1: 7,250,000 → 7,250,000 / 10,875,000 / 11,962,500
    assert.deepEqual(costsForPath(7_250_000n, [1_000_000, 1_500_000, 1_100_000]), [7_250_000n, 10_875_000n, 11_962_500n]);
    // 3 nano × 1.5 = 4.5 → 5; × 1.5 again = 6.75 → 7 (not 5 × 1.5 = 7.5 → 8).
    assert.deepEqual(costsForPath(3n, [1_000_000, 1_500_000, 1_500_000]), [3n, 5n, 7n]);
    assert.deepEqual(costsForPath(0n, [1_000_000]), [0n]);
    assert.throws(() => costsForPath(1n, [0]));
  });
});
