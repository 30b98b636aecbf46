import { scaleDecimal } from '../money.js';
import type { ModelPrice } from './table.js';

/**
 * OpenAI list prices that @pydantic/genai-prices does not carry, because they are not per
 * token: DALL·E per image, TTS per character, and the free moderation models. Kept as data
 * in one place, applied below the package's own entries, and overridable by the operator
 * like any other price. Source: OpenAI's pricing page (per image / per 1M characters).
 */
const usd = (dollars: string) => Number(scaleDecimal(dollars, 9));
const perMillion = usd;

export const supplementPrices: ModelPrice[] = [
  {
    id: 'dall-e-3',
    match: { starts_with: 'dall-e-3' },
    rates: {
      perImage: {
        '1024x1024/standard': usd('0.04'),
        '1024x1024/hd': usd('0.08'),
        '1024x1792/standard': usd('0.08'),
        '1792x1024/standard': usd('0.08'),
        '1024x1792/hd': usd('0.12'),
        '1792x1024/hd': usd('0.12'),
      },
    },
  },
  {
    id: 'dall-e-2',
    match: { starts_with: 'dall-e-2' },
    rates: { perImage: { '256x256': usd('0.016'), '512x512': usd('0.018'), '1024x1024': usd('0.02') } },
  },
  { id: 'tts-1-hd', match: { starts_with: 'tts-1-hd' }, rates: { speechCharacter: perMillion('30') } },
  { id: 'tts-1', match: { starts_with: 'tts-1' }, rates: { speechCharacter: perMillion('15') } },
  {
    id: 'moderation',
    match: { or: [{ starts_with: 'omni-moderation' }, { starts_with: 'text-moderation' }] },
    rates: {},
  },
];
