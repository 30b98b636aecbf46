import assert from 'node:assert/strict';
import { costOf, findModelPrice, type BillableUsage } from '../../src/prices/table.js';
import { seedPriceTable, withOverrides } from '../../src/prices/seed.js';

const zeroTokens = {
  prompt: 0,
  cached: 0,
  completion: 0,
  reasoning: 0,
  audioPrompt: 0,
  audioCompletion: 0,
  imagePrompt: 0,
  imageCompletion: 0,
};
function usage(over: Omit<Partial<BillableUsage>, 'tokens'> & { tokens?: Partial<BillableUsage['tokens']> } = {}): BillableUsage {
  return {
    images: 0,
    imageSize: null,
    imageQuality: null,
    audioMs: 0,
    speechCharacters: 0,
    ...over,
    tokens: { ...zeroTokens, ...over.tokens },
  };
}
function nano(table: ReturnType<typeof seedPriceTable>, model: string, u: BillableUsage): bigint {
  const r = costOf(table, model, u);
  assert.ok(r.ok, `${model} should be priced`);
  return r.nano;
}

describe('price table seeded from @pydantic/genai-prices', () => {
  const asOf = new Date('2026-11-01T00:00:00Z');
  const table = seedPriceTable(asOf);

  it('prices prompt, cached and completion tokens separately at list price', () => {
    // gpt-4o: $2.50 in, $1.25 cached, $10 out per 1M tokens.
    const u = usage({ tokens: { prompt: 1000, cached: 200, completion: 500 } });
    assert.equal(nano(table, 'gpt-4o', u), 800n * 2500n + 200n * 1250n + 500n * 10000n);
    assert.equal(nano(table, 'gpt-4o-2024-08-06', u), nano(table, 'gpt-4o', u));
    // gpt-4o-mini must not fall into gpt-4o's entry: $0.15 / $0.075 / $0.60.
    assert.equal(nano(table, 'gpt-4o-mini', u), 800n * 150n + 200n * 75n + 500n * 600n);
  });

  it('covers current and legacy families', () => {
    const u = usage({ tokens: { prompt: 1_000_000, completion: 1_000_000 } });
    assert.equal(nano(table, 'gpt-3.5-turbo', u), 2_000_000_000n); // $0.50 + $1.50
    assert.equal(nano(table, 'gpt-4.1', u), 10_000_000_000n); // $2 + $8
    assert.equal(nano(table, 'gpt-5', u), 11_250_000_000n); // $1.25 + $10
    assert.equal(nano(table, 'o3-mini', u), 5_500_000_000n); // $1.10 + $4.40
    assert.equal(nano(table, 'text-embedding-3-small', usage({ tokens: { prompt: 1_000_000 } })), 20_000_000n);
  });

  it('prices Whisper by the second, TTS by the character and DALL·E by the image', () => {
    assert.equal(nano(table, 'whisper-1', usage({ audioMs: 90_400 })), 90n * 100_000n); // $0.006/min
    assert.equal(nano(table, 'tts-1', usage({ speechCharacters: 1000 })), 15_000_000n);
    assert.equal(nano(table, 'tts-1-hd', usage({ speechCharacters: 1000 })), 30_000_000n);
    assert.equal(nano(table, 'dall-e-3', usage({ images: 2, imageSize: '1024x1792', imageQuality: 'hd' })), 240_000_000n);
    assert.equal(nano(table, 'dall-e-2', usage({ images: 1, imageSize: '512x512' })), 18_000_000n);
    const bad = costOf(table, 'dall-e-2', usage({ images: 1, imageSize: '999x999' }));
    assert.deepEqual(bad, { ok: false, reason: 'unpriced_image_size' });
    assert.equal(nano(table, 'omni-moderation-latest', usage({ tokens: { prompt: 500 } })), 0n);
  });

  it('applies long-context tiers where the package has them', () => {
    const entry = findModelPrice(table, 'gpt-5.4');
    assert.ok(entry?.tiers?.length, 'gpt-5.4 has a long-context tier');
    const short = nano(table, 'gpt-5.4', usage({ tokens: { prompt: 100_000 } }));
    const long = nano(table, 'gpt-5.4', usage({ tokens: { prompt: 300_000 } }));
    assert.equal(short, 100_000n * 2_500n);
    assert.equal(long, 300_000n * 5_000n);
  });

  it('reports unknown models instead of pricing them at zero', () => {
    assert.deepEqual(costOf(table, 'no-such-model', usage()), { ok: false, reason: 'unknown_model' });
  });

  it('versions by content and lets operator overrides win', () => {
    assert.equal(seedPriceTable(asOf).version, table.version);
    const over = withOverrides(table, [{ id: 'gpt-4o-discount', match: { equals: 'gpt-4o' }, rates: { input: 1_000_000_000, output: 2_000_000_000 } }]);
    assert.notEqual(over.version, table.version);
    const u = usage({ tokens: { prompt: 1000, completion: 1000 } });
    assert.equal(nano(over, 'gpt-4o', u), 1000n * 1000n + 1000n * 2000n);
    assert.equal(nano(over, 'gpt-4o-mini', u), nano(table, 'gpt-4o-mini', u));
  });
});

describe('price lookups keyed by what clients send', () => {
  it('remember no unknown model name: 2,000 distinct 100 KB names leave the heap about where it was', () => {
    const table = seedPriceTable();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2000; i++) assert.equal(findModelPrice(table, `${i}-${'x'.repeat(100_000)}`), undefined);
    const grown = process.memoryUsage().heapUsed - before;
    // Remembered, they would hold 200 MB (2,000 × 100 KB); young garbage is collected as it goes.
    assert.ok(grown < 60 * 1024 * 1024, `the heap grew ${Math.round(grown / 1024 / 1024)} MB`);
    assert.ok(findModelPrice(table, 'gpt-4o-mini'), 'known names are still found');
  });
});
