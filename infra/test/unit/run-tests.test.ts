import assert from 'node:assert/strict';
import { countMochaTotals } from '../../src/run-tests.js';

describe('test totals', () => {
  it('sums mocha closing lines across suites, with turbo prefixes', () => {
    const out = [
      '@yugong/schemas:test:unit:   19 passing (43ms)',
      '@yugong/infra:test:unit:   9 passing (2s)',
      '@yugong/infra:test:unit:   1 pending',
      '@yugong/proxy:test:integration:   4 passing (1s)',
      '@yugong/proxy:test:integration:   2 failing',
    ].join('\n');
    assert.deepEqual(countMochaTotals(out), { passed: 32, failed: 2, skipped: 1 });
    assert.deepEqual(countMochaTotals('no tests here'), { passed: 0, failed: 0, skipped: 0 });
  });
});
