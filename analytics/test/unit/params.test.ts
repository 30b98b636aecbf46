import assert from 'node:assert/strict';
import { csvLine } from '../../src/csv.js';
import { encodeCursor, parseAccount, parseCursor, parseDay, parseLimit, parseRange } from '../../src/params.js';

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

describe('analytics cursors, limits and CSV cells', () => {
  it('round-trips a cursor and refuses anything else', () => {
    const c = { time: 1_790_000_000, eventId: 'usage:req_abc' };
    assert.deepEqual(parseCursor(encodeCursor(c)), { ok: true, value: c });
    for (const bad of [
      '',
      'not base64!',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from(JSON.stringify([1, "x' OR 1"])).toString('base64url'),
      Buffer.from(JSON.stringify([-1, 'a'])).toString('base64url'),
      'x'.repeat(401),
    ]) {
      assert.equal(parseCursor(bad).ok, false, bad);
    }
    assert.deepEqual(parseCursor(undefined), { ok: true, value: null });
  });

  it('bounds limits', () => {
    assert.deepEqual(parseLimit(undefined, 100, 1000), { ok: true, value: 100 });
    assert.deepEqual(parseLimit('1000', 100, 1000), { ok: true, value: 1000 });
    for (const bad of ['0', '1001', '1e3', '-1', '10.5', ['1']]) assert.equal(parseLimit(bad, 100, 1000).ok, false, String(bad));
  });

  it('writes CSV cells that parse back and never start a formula', () => {
    assert.equal(csvLine(['a,b', 'say "hi"', null, 42, -3, '=HYPERLINK("x")', ['x']]), '"a,b","say ""hi""",,42,-3,"\'=HYPERLINK(""x"")","[""x""]"\r\n');
  });
});
