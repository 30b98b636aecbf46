import assert from 'node:assert/strict';
import { parseAccount, parseDay, parseRange } from '../../src/params.js';

describe('analytics parameters', () => {
  it('accepts real dates and ranges', () => {
    const r = parseRange({ from: '2026-11-01', to: '2026-11-30' });
    assert.ok(r.ok);
    assert.equal(r.ok && r.value.to.toISOString(), '2026-11-30T00:00:00.000Z');
  });

  it('refuses bad dates, reversed or huge ranges and SQL in any parameter', () => {
    assert.equal(parseDay('from', '2026-02-30').ok, false);
    assert.equal(parseDay('from', "2026-01-01' OR 1=1 --").ok, false);
    assert.equal(parseDay('from', undefined).ok, false);
    assert.deepEqual(parseRange({ from: '2026-11-02', to: '2026-11-01' }), { ok: false, param: 'to', message: "'to' is before 'from'" });
    assert.equal(parseRange({ from: '2000-01-01', to: '2026-01-01' }).ok, false);
    assert.equal(parseAccount("x'; DROP TABLE line_items; --").ok, false);
    assert.equal(parseAccount('acme-1').ok, true);
  });
});
