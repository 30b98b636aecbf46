import { z } from 'zod';
import { divRoundHalfUp, type Nano } from '../money.js';
import type { TokenCounts } from '../events.js';

/**
 * Every rate is an integer number of nano-USD per one million units (tokens, seconds of
 * audio, characters of speech). "$X per 1M tokens" is X*1e9 here, so any list price with up
 * to nine decimals is exact; the cost of a request is rounded half up once, at the end.
 */
const rate = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const ratesSchema = z
  .object({
    input: rate.optional(),
    cachedInput: rate.optional(),
    output: rate.optional(),
    audioInput: rate.optional(),
    cachedAudioInput: rate.optional(),
    audioOutput: rate.optional(),
    imageInput: rate.optional(),
    cachedImageInput: rate.optional(),
    imageOutput: rate.optional(),
    audioSecond: rate.optional(),
    speechCharacter: rate.optional(),
    /** "1024x1024/standard" (or "1024x1024" for any quality) → nano-USD per image. */
    perImage: z.record(z.string(), rate).optional(),
  })
  .strict();
export type Rates = z.infer<typeof ratesSchema>;

export type MatchRule = { equals: string } | { starts_with: string } | { ends_with: string } | { contains: string } | { regex: string } | { or: MatchRule[] } | { and: MatchRule[] };

export const matchRuleSchema: z.ZodType<MatchRule> = z.lazy(() =>
  z.union([
    z.object({ equals: z.string() }).strict(),
    z.object({ starts_with: z.string() }).strict(),
    z.object({ ends_with: z.string() }).strict(),
    z.object({ contains: z.string() }).strict(),
    z.object({ regex: z.string().max(500) }).strict(),
    z.object({ or: z.array(matchRuleSchema).max(100) }).strict(),
    z.object({ and: z.array(matchRuleSchema).max(100) }).strict(),
  ]),
);

export const modelPriceSchema = z
  .object({
    id: z.string().min(1).max(200),
    match: matchRuleSchema,
    rates: ratesSchema,
    /** Long-context tiers: the rates of the highest tier whose threshold the prompt reaches. */
    tiers: z
      .array(z.object({ minPromptTokens: z.number().int().positive(), rates: ratesSchema }).strict())
      .max(10)
      .optional(),
  })
  .strict();
export type ModelPrice = z.infer<typeof modelPriceSchema>;

export const priceTableSchema = z
  .object({
    version: z.string().min(1).max(100),
    source: z.string().max(200),
    createdAt: z.string(),
    models: z.array(modelPriceSchema).max(5000),
  })
  .strict();
export type PriceTable = z.infer<typeof priceTableSchema>;

export function matches(rule: MatchRule, model: string): boolean {
  if ('equals' in rule) return model === rule.equals;
  if ('starts_with' in rule) return model.startsWith(rule.starts_with);
  if ('ends_with' in rule) return model.endsWith(rule.ends_with);
  if ('contains' in rule) return model.includes(rule.contains);
  if ('regex' in rule) return new RegExp(rule.regex).test(model);
  if ('or' in rule) return rule.or.some((r) => matches(r, model));
  return rule.and.every((r) => matches(r, model));
}

const lookups = new WeakMap<PriceTable, Map<string, ModelPrice>>();
/** Names that are remembered: model ids are short (OpenAI's are well under this). */
const CACHED_NAME_CHARS = 256;
const CACHED_NAMES = 4096;

/**
 * The first entry that matches wins; operator overrides are placed first for that reason.
 * Answers are remembered per table (tables are immutable once published), since every
 * request asks several times and some rules are regular expressions. Only names that have a
 * price are remembered, at most CACHED_NAMES short ones: a client's garbage model names cost
 * a scan of the table each, never memory.
 */
export function findModelPrice(table: PriceTable, model: string): ModelPrice | undefined {
  let cache = lookups.get(table);
  if (!cache) {
    cache = new Map();
    lookups.set(table, cache);
  }
  const hit = cache.get(model);
  if (hit) return hit;
  const found = table.models.find((m) => matches(m.match, model));
  if (found && model.length <= CACHED_NAME_CHARS && cache.size < CACHED_NAMES) cache.set(model, found);
  return found;
}

export interface BillableUsage {
  tokens: TokenCounts;
  images: number;
  imageSize: string | null;
  imageQuality: string | null;
  audioMs: number;
  speechCharacters: number;
}

export type CostResult = { ok: true; nano: Nano; modelId: string } | { ok: false; reason: 'unknown_model' | 'unpriced_image_size' };

function ratesFor(price: ModelPrice, promptTokens: number): Rates {
  let chosen = price.rates;
  for (const tier of price.tiers ?? []) {
    if (promptTokens >= tier.minPromptTokens) chosen = { ...price.rates, ...tier.rates };
  }
  return chosen;
}

/**
 * The list-price cost of one request. Prompt and completion counts follow OpenAI's usage
 * objects: prompt includes cached, audio and image prompt tokens; completion includes
 * reasoning and audio/image output tokens. A kind without its own rate is billed at the
 * text rate of the same direction, as OpenAI did before it priced that kind separately.
 */
export function costOf(table: PriceTable, model: string, usage: BillableUsage): CostResult {
  const price = findModelPrice(table, model);
  if (!price) return { ok: false, reason: 'unknown_model' };
  const t = usage.tokens;
  const r = ratesFor(price, t.prompt);
  const input = r.input ?? 0;
  const output = r.output ?? 0;
  const cachedText = Math.max(0, t.cached);
  const textIn = Math.max(0, t.prompt - t.cached - t.audioPrompt - t.imagePrompt);
  const textOut = Math.max(0, t.completion - t.audioCompletion - t.imageCompletion);

  let perMillion = 0n;
  const add = (units: number, perMillionRate: number | undefined) => {
    if (units > 0 && perMillionRate) perMillion += BigInt(units) * BigInt(perMillionRate);
  };
  add(textIn, input);
  add(cachedText, r.cachedInput ?? input);
  add(t.audioPrompt, r.audioInput ?? input);
  add(t.imagePrompt, r.imageInput ?? input);
  add(textOut, output);
  add(t.audioCompletion, r.audioOutput ?? output);
  add(t.imageCompletion, r.imageOutput ?? output);
  // Whisper is billed per second of audio; OpenAI rounds to the nearest second.
  add(Math.round(usage.audioMs / 1000), r.audioSecond);
  add(usage.speechCharacters, r.speechCharacter);

  if (usage.images > 0 && r.perImage) {
    const size = usage.imageSize ?? '1024x1024';
    const each = r.perImage[`${size}/${usage.imageQuality ?? 'standard'}`] ?? r.perImage[size];
    if (each === undefined) return { ok: false, reason: 'unpriced_image_size' };
    perMillion += BigInt(usage.images) * BigInt(each) * 1_000_000n;
  }
  return { ok: true, nano: divRoundHalfUp(perMillion, 1_000_000n), modelId: price.id };
}
