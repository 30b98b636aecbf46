import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { findProvider, type ModelInfo, type ModelPrice as PackagePrice } from '@pydantic/genai-prices';
import { divRoundHalfUp, numberToDecimal, scaleDecimal } from '../money.js';
import { supplementPrices } from './supplement.js';
import { priceTableSchema, type ModelPrice, type PriceTable, type Rates } from './table.js';

const PACKAGE = '@pydantic/genai-prices';

/** Package price keys (USD per 1M tokens) → our rate fields. */
const tokenKeys: Record<string, keyof Rates> = {
  input_mtok: 'input',
  cache_read_mtok: 'cachedInput',
  output_mtok: 'output',
  input_audio_mtok: 'audioInput',
  cache_audio_read_mtok: 'cachedAudioInput',
  output_audio_mtok: 'audioOutput',
  input_image_mtok: 'imageInput',
  cache_image_read_mtok: 'cachedImageInput',
  output_image_mtok: 'imageOutput',
};

function perMillionNano(usdPerMillion: number): number {
  return Number(scaleDecimal(numberToDecimal(usdPerMillion), 9));
}

/** USD per hour of audio → nano-USD per million seconds, rounded half up. */
function perMillionSecondsNano(usdPerHour: number): number {
  const nanoPerHourTimesMillion = scaleDecimal(numberToDecimal(usdPerHour), 9) * 1_000_000n;
  return Number(divRoundHalfUp(nanoPerHourTimesMillion, 3600n));
}

interface Tiered {
  base: number;
  tiers: { start: number; price: number }[];
}
function isTiered(v: unknown): v is Tiered {
  return typeof v === 'object' && v !== null && 'base' in v && 'tiers' in v;
}

function convertPrices(prices: PackagePrice): Pick<ModelPrice, 'rates' | 'tiers'> {
  const rates: Rates = {};
  const tiers = new Map<number, Rates>();
  for (const [key, value] of Object.entries(prices)) {
    if (value === undefined) continue;
    if (key === 'input_audio_hours' || key === 'audio_hours') {
      if (typeof value === 'number') rates.audioSecond = perMillionSecondsNano(value);
      continue;
    }
    const field = tokenKeys[key];
    if (!field) continue; // per-search and per-request surcharges are not OpenAI API line items we meter
    if (typeof value === 'number') {
      (rates as Record<string, number>)[field] = perMillionNano(value);
    } else if (isTiered(value)) {
      (rates as Record<string, number>)[field] = perMillionNano(value.base);
      for (const tier of value.tiers) {
        const at = tiers.get(tier.start) ?? {};
        (at as Record<string, number>)[field] = perMillionNano(tier.price);
        tiers.set(tier.start, at);
      }
    }
  }
  const sorted = [...tiers.entries()].sort((a, b) => a[0] - b[0]);
  return sorted.length ? { rates, tiers: sorted.map(([minPromptTokens, r]) => ({ minPromptTokens, rates: r })) } : { rates };
}

/** Conditional prices: the latest whose start date is on or before `asOf`. */
function pricesAt(model: ModelInfo, asOf: Date): PackagePrice {
  if (!Array.isArray(model.prices)) return model.prices;
  let chosen: PackagePrice = {};
  for (const c of model.prices) {
    const start = c.constraint?.type === 'start_date' ? new Date(c.constraint.start_date) : null;
    if (c.constraint && c.constraint.type !== 'start_date') continue;
    if (!start || start <= asOf) chosen = c.prices;
  }
  return chosen;
}

export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve(PACKAGE);
  let dir = dirname(entry);
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PACKAGE && pkg.version) return pkg.version;
    } catch {
      // not this folder: keep walking up
    }
    dir = dirname(dir);
  }
  throw new Error(`cannot find the version of ${PACKAGE}`);
}

/** The version is a content hash, so the same prices always get the same version. */
export function versionOf(models: ModelPrice[], label: string): string {
  const hash = createHash('sha256').update(JSON.stringify(models)).digest('hex').slice(0, 12);
  return `${label}-${hash}`;
}

/** OpenAI list prices from the maintained package, with the supplement, as of a date. */
export function seedPriceTable(asOf: Date = new Date()): PriceTable {
  const provider = findProvider({ providerId: 'openai' });
  if (!provider) throw new Error(`${PACKAGE} has no OpenAI provider`);
  const fromPackage: ModelPrice[] = provider.models.map((m) => ({
    id: m.id,
    match: m.match as ModelPrice['match'],
    ...convertPrices(pricesAt(m, asOf)),
  }));
  const models = [...fromPackage, ...supplementPrices];
  const pkgVersion = packageVersion();
  return priceTableSchema.parse({
    version: versionOf(models, `openai-${pkgVersion}`),
    source: `${PACKAGE}@${pkgVersion} + supplement`,
    createdAt: asOf.toISOString(),
    models,
  });
}

/** Operator overrides come first (first match wins) and make a new version. */
export function withOverrides(base: PriceTable, overrides: ModelPrice[], now: Date = new Date()): PriceTable {
  const models = [...overrides, ...base.models];
  return priceTableSchema.parse({
    version: versionOf(models, 'override'),
    source: `${base.source} + ${overrides.length} operator override(s) over ${base.version}`,
    createdAt: now.toISOString(),
    models,
  });
}
