import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { endpointsFromEnv } from '@yugong/infra';
import { makeEvent, redisKeys, topicFor, type YugongEvent } from '@yugong/schemas';
import { createBalanceApplier } from '../../src/balances/apply.js';

/**
 * Random histories of credits, charges and multiplier changes on a three-account tree,
 * delivered at least once: duplicated, locally reordered, in random batches, with crashes
 * that redeliver a batch after it was (partly or wholly) applied. On real Redis, the
 * balances must equal credits minus charges exactly, every event counted once.
 */
describe('ledger properties (fast-check, real Redis)', function () {
  this.timeout(120_000);
  let redis: Redis;
  before(() => {
    redis = new Redis(endpointsFromEnv().redisUrl);
  });
  after(() => redis.disconnect());

  const op = fc.oneof(
    fc.record({ kind: fc.constant('credit' as const), account: fc.integer({ min: 0, max: 2 }), nano: fc.bigInt({ min: 1n, max: 10n ** 15n }) }),
    fc.record({ kind: fc.constant('charge' as const), caller: fc.integer({ min: 0, max: 2 }), list: fc.bigInt({ min: 0n, max: 10n ** 12n }) }),
    fc.record({ kind: fc.constant('multiplier' as const), account: fc.integer({ min: 1, max: 2 }), ppm: fc.integer({ min: 1, max: 10_000_000 }) }),
  );
  const delivery = fc.record({
    ops: fc.array(op, { minLength: 1, maxLength: 40 }),
    duplicates: fc.array(fc.nat(), { maxLength: 15 }),
    swaps: fc.array(fc.nat(), { maxLength: 15 }),
    batches: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 20 }),
    crashes: fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
  });

  it('keeps balance = credits − charges, exactly once, under duplicates, reordering, crashes and multiplier changes', async () => {
    const applier = createBalanceApplier(redis, 3600);
    await fc.assert(
      fc.asyncProperty(delivery, async ({ ops, duplicates, swaps, batches, crashes }) => {
        const root = `prop-${randomUUID().slice(0, 12)}`;
        const ids = [root, `${root}-a`, `${root}-b`];
        const paths = [[ids[0]], [ids[0], ids[1]], [ids[0], ids[1], ids[2]]] as string[][];
        const settings = { name: 'p', multiplierPpm: 1_000_000, creditLimitNano: null, limits: { rpm: null, tpm: null }, models: null, ipAllowlist: null, expiresAt: null };
        const setup: YugongEvent[] = paths.map((path, i) =>
          makeEvent('account.created', { id: `account:${ids[i]}:created`, source: 't', accountPath: path, data: { accountId: ids[i] ?? '', parentId: i ? (ids[i - 1] ?? null) : null, ...settings } }),
        );
        await applier.apply(setup);

        // The model: multipliers as the proxy would price with them, and what each account owes.
        const ppm = [1_000_000, 1_000_000, 1_000_000];
        const credited = [0n, 0n, 0n];
        const spent = [0n, 0n, 0n];
        const requests = [0, 0, 0];
        const events: YugongEvent[] = [];
        ops.forEach((o, n) => {
          if (o.kind === 'credit') {
            credited[o.account] = (credited[o.account] ?? 0n) + o.nano;
            events.push(
              makeEvent('credit.granted', {
                id: `credit:${root}:${n}`,
                source: 't',
                accountPath: paths[o.account] ?? [],
                data: { accountId: ids[o.account] ?? '', amountNano: o.nano.toString(), note: '', idempotencyKey: String(n), grantedBy: 'p' },
              }),
            );
          } else if (o.kind === 'multiplier') {
            ppm[o.account] = o.ppm;
            events.push(
              makeEvent('account.updated', {
                id: `account:${root}:updated:${n}`,
                source: 't',
                accountPath: paths[o.account] ?? [],
                data: { accountId: ids[o.account] ?? '', patch: { multiplierPpm: o.ppm } },
              }),
            );
          } else {
            const path = paths[o.caller] ?? [];
            let factor = 1_000_000n;
            const costs = path.map((_, d) => {
              factor = (factor * BigInt(ppm[d] ?? 1_000_000)) / 1_000_000n;
              const c = (o.list * factor + 500_000n) / 1_000_000n;
              spent[d] = (spent[d] ?? 0n) + c;
              requests[d] = (requests[d] ?? 0) + 1;
              return c.toString();
            });
            events.push(
              makeEvent('usage.recorded', {
                id: `usage:${root}:${n}`,
                source: 't',
                accountPath: path,
                data: {
                  requestId: `r${n}`,
                  apiKeyId: 'key_p',
                  endpoint: 'chat.completions',
                  model: 'gpt-4o',
                  status: 'ok',
                  httpStatus: 200,
                  errorCode: null,
                  stream: false,
                  tokens: { prompt: 1, cached: 0, completion: 1, reasoning: 0, audioPrompt: 0, audioCompletion: 0, imagePrompt: 0, imageCompletion: 0 },
                  images: 0,
                  imageSize: null,
                  imageQuality: null,
                  audioMs: 0,
                  speechCharacters: 0,
                  usageSource: 'upstream',
                  costs,
                  listCostNano: o.list.toString(),
                  priceVersion: 'v',
                  holdId: null,
                  attempts: [],
                  upstreamKeyId: null,
                  upstreamOrg: null,
                  latencyMs: 1,
                  ttftMs: null,
                },
              }),
            );
          }
        });

        // At-least-once delivery: old events again anywhere later; neighbours from different
        // topics swapped (Kafka orders a tree's events only within one topic).
        const delivered = [...events];
        for (const d of duplicates) {
          const e = events[d % events.length] as YugongEvent;
          delivered.splice(delivered.indexOf(e) + 1 + (d % (delivered.length - delivered.indexOf(e))), 0, e);
        }
        for (const s of swaps) {
          const i = s % delivered.length;
          const j = Math.min(delivered.length - 1, i + 1);
          if (topicFor((delivered[i] as YugongEvent).type) !== topicFor((delivered[j] as YugongEvent).type)) {
            [delivered[i], delivered[j]] = [delivered[j] as YugongEvent, delivered[i] as YugongEvent];
          }
        }
        // Batches; a crash after a batch means its offsets were never committed: it comes again.
        let at = 0;
        for (let b = 0; at < delivered.length; b++) {
          const size = batches[b % batches.length] ?? 1;
          const batch = delivered.slice(at, at + size);
          await applier.apply(batch);
          if (crashes[b % crashes.length]) await applier.apply(batch);
          at += size;
        }

        for (let i = 0; i < 3; i++) {
          const h = await redis.hgetall(redisKeys.account(root, ids[i] ?? ''));
          assert.equal(h.credited, (credited[i] ?? 0n).toString(), `credited of account ${i}`);
          assert.equal(h.spent, (spent[i] ?? 0n).toString(), `spent of account ${i}`);
          assert.equal(Number(h.requests), requests[i], `requests of account ${i}`);
          assert.equal(BigInt(h.credited ?? '0') - BigInt(h.spent ?? '0'), (credited[i] ?? 0n) - (spent[i] ?? 0n), `balance of account ${i}`);
          assert.equal(h.held, '0');
          assert.equal(Number(h.multiplierPpm), ppm[i], `multiplier of account ${i}`);
        }
      }),
      { numRuns: 60 },
    );
  });
});
