import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eventSchema, makeEvent, parseEvent, tokenCounts, usageRecorded } from '../../src/events.js';
import { sampleUsage } from '../../src/testing.js';
import { fastPathFields, isValidUsageEvent } from '../../src/usage-fast-path.js';

const valid = () =>
  JSON.parse(
    JSON.stringify(
      makeEvent('usage.recorded', {
        id: 'usage:req_1',
        source: 'node-1',
        accountPath: ['root', 'kid'],
        data: sampleUsage({ costs: ['75000', '112500'], holdId: 'req_1', ttftMs: 12 }),
      }),
    ),
  ) as Record<string, unknown>;

/** Every place in a JSON value, as a path of keys and indexes. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}

function setAt(root: Record<string, unknown>, path: (string | number)[], value: unknown, remove = false): void {
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (remove) delete o[last];
  else o[last] = value;
}

const oddValues: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  599,
  600,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  'x',
  'x'.repeat(21),
  'x'.repeat(65),
  'x'.repeat(101),
  'x'.repeat(201),
  '12',
  '-12',
  '1.5',
  'Root',
  'ok',
  'cut',
  'chat.completions',
  'upstream',
  '2026-11-23T10:00:00Z',
  '2026-13-01T00:00:00Z',
  [],
  ['12'],
  {},
  { a: 1 },
];

describe('usage event fast path', () => {
  it('accepts a valid usage event and returns it as it is', () => {
    const e = valid();
    assert.equal(isValidUsageEvent(e), true);
    const r = parseEvent(e);
    assert.ok(r.ok && r.value === e, 'no copy is made');
  });

  it('checks the same fields as the zod schemas (a field added there must be added here)', () => {
    const shape = (s: { shape: Record<string, unknown> }) => Object.keys(s.shape).sort();
    assert.deepEqual([...fastPathFields.usage].sort(), shape(usageRecorded));
    assert.deepEqual([...fastPathFields.tokens].sort(), shape(tokenCounts));
    const attempts = usageRecorded.shape.attempts as unknown as { element: { shape: Record<string, unknown> } };
    assert.deepEqual([...fastPathFields.attempt].sort(), shape(attempts.element));
    const envelope = (eventSchema as unknown as { options: { shape: Record<string, unknown> }[] }).options[0];
    assert.ok(envelope);
    assert.deepEqual([...fastPathFields.envelope].sort(), shape(envelope));
  });

  it('is never looser than zod: every value in every place, removed fields and extra fields', () => {
    const base = valid();
    let checked = 0;
    for (const path of paths(base).filter((p) => p.length > 0)) {
      for (const v of oddValues) {
        const e = valid();
        setAt(e, path, v);
        if (isValidUsageEvent(e)) assert.ok(eventSchema.safeParse(e).success, `fast path accepted ${JSON.stringify(v)} at ${path.join('.')}`);
        checked++;
      }
      const removed = valid();
      setAt(removed, path, undefined, true);
      assert.equal(isValidUsageEvent(removed) && !eventSchema.safeParse(removed).success, false, `missing ${path.join('.')}`);
      const extra = valid();
      const parent = path.slice(0, -1);
      setAt(extra, [...parent, 'unexpected'], 1);
      if (isValidUsageEvent(extra)) assert.ok(eventSchema.safeParse(extra).success, `extra key beside ${path.join('.')}`);
    }
    assert.ok(checked > 1000);
  });

  it('agrees with zod on random changes to a valid event: fast ⇒ zod, and zod decides the rest', function () {
    // A fixed number of runs, not a time: about 1 s alone, longer while other suites share the cores.
    this.timeout(30_000);
    const places = paths(valid()).filter((p) => p.length > 0);
    const value = fc.oneof(fc.constantFrom(...oddValues), fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }));
    const change = fc.record({ at: fc.constantFrom(...places), value, remove: fc.boolean() });
    let fast = 0;
    fc.assert(
      fc.property(fc.array(change, { maxLength: 3 }), (changes) => {
        const e = valid();
        for (const c of changes) {
          try {
            setAt(e, c.at, c.value, c.remove);
          } catch {
            // an earlier change replaced a parent of this place
          }
        }
        const zodOk = eventSchema.safeParse(e).success && (e.data as { costs?: unknown[] }).costs?.length === (e.accountPath as unknown[]).length;
        if (isValidUsageEvent(e)) {
          fast++;
          if (!zodOk) return false;
        }
        return parseEvent(e).ok === zodOk;
      }),
      { numRuns: 5000 },
    );
    assert.ok(fast > 100, `the fast path took ${fast} events`);
  });
});
