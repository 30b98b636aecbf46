import type { ClickHouseClient } from '@clickhouse/client';
import { decodeAccount, nanoToCents, redisKeys, sqlDate, sqlString, type RedisClient } from '@yugong/schemas';
import type { ClientKey } from '../auth/projections.js';
import { apiError, clientErrors, type ApiError } from '../errors.js';
import type { Answer, ReadRoute } from './read-route.js';

/**
 * OpenAI's legacy billing endpoints, which chat UIs and scripts still call to show a key's
 * balance. For the key's account (a sub-account too): hard_limit_usd is everything it may
 * ever spend (its credits plus its credit line), total_usage is what it spent in the range
 * at its own price, in cents; hard_limit_usd − total_usage/100 over all time is its balance.
 */
const SUFFIXES: readonly string[] = ['/dashboard/billing/subscription', '/dashboard/billing/usage', '/dashboard/billing/credit_grants'];

export const isBillingSuffix = (suffix: string): boolean => SUFFIXES.includes(suffix);

export function billingRoute(redis: RedisClient, clickhouse: ClickHouseClient | null): ReadRoute {
  return {
    label: 'billing',
    matches: isBillingSuffix,
    answer: ({ suffix, query, key }) => billingAnswer(suffix, query, key, redis, clickhouse),
  };
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_DAYS = 100;

function day(text: string | null, param: string): Date | ApiError {
  if (!text || !DAY.test(text)) return clientErrors.invalidValue(param, `'${param}' must be a date as YYYY-MM-DD.`);
  const d = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) return clientErrors.invalidValue(param, `'${param}' is not a real date.`);
  return d;
}

async function billingAnswer(suffix: string, query: URLSearchParams, key: ClientKey, redis: RedisClient, clickhouse: ClickHouseClient | null): Promise<Answer | ApiError> {
  const account = decodeAccount(await redis.hgetall(redisKeys.account(key.root, key.accountId)));
  const limitNano = (account?.creditedNano ?? 0n) + (account?.creditLimitNano ?? 0n);
  const usd = (nano: bigint) => Number(nanoToCents(nano).toFixed(7)) / 100;
  if (suffix === '/dashboard/billing/subscription') {
    const limit = usd(limitNano);
    return {
      status: 200,
      body: {
        object: 'billing_subscription',
        has_payment_method: true,
        canceled: false,
        canceled_at: null,
        delinquent: null,
        access_until: Math.floor(Date.now() / 1000) + 365 * 86_400,
        soft_limit: Number(limitNano / 1_000_000n),
        hard_limit: Number(limitNano / 1_000_000n),
        system_hard_limit: Number(limitNano / 1_000_000n),
        soft_limit_usd: limit,
        hard_limit_usd: limit,
        system_hard_limit_usd: limit,
        plan: { title: 'Pay-as-you-go', id: 'payg' },
        account_name: account?.name ?? key.accountId,
        po_number: null,
        billing_email: null,
        tax_ids: null,
        billing_address: null,
        business_address: null,
        created_at: account?.createdAt ? Math.floor(Date.parse(account.createdAt) / 1000) : null,
      },
    };
  }
  if (suffix === '/dashboard/billing/credit_grants') {
    const used = account?.spentNano ?? 0n;
    return {
      status: 200,
      body: {
        object: 'credit_summary',
        total_granted: usd(limitNano),
        total_used: usd(used),
        total_available: usd(limitNano - used),
        total_paid_available: usd(limitNano - used),
        grants: { object: 'list', data: [] },
      },
    };
  }
  const from = day(query.get('start_date'), 'start_date');
  if (!(from instanceof Date)) return from;
  const to = day(query.get('end_date'), 'end_date');
  if (!(to instanceof Date)) return to;
  if (to <= from) return clientErrors.invalidValue('end_date', "'end_date' must be after 'start_date' (the end date is exclusive).");
  if ((to.getTime() - from.getTime()) / 86_400_000 > MAX_DAYS) return clientErrors.invalidValue('end_date', `The range may span at most ${MAX_DAYS} days.`);
  if (!clickhouse) return apiError(503, 'server_error', 'usage_unavailable', 'Usage history is not configured on this gateway (YUGONG_CLICKHOUSE_URL).');
  // OpenAI's end_date is exclusive.
  const rs = await clickhouse.query({
    query: `SELECT toString(bucket) AS day, model, toString(sum(cost_nano)) AS cost FROM usage_daily
      WHERE account_id = ${sqlString(key.accountId)} AND bucket >= ${sqlDate(from)} AND bucket < ${sqlDate(to)}
      GROUP BY day, model ORDER BY day, model`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ day: string; model: string; cost: string }>();
  const byDay = new Map<string, { name: string; cost: number }[]>();
  let total = 0n;
  for (const r of rows) {
    const list = byDay.get(r.day) ?? [];
    list.push({ name: r.model, cost: nanoToCents(BigInt(r.cost)) });
    byDay.set(r.day, list);
    total += BigInt(r.cost);
  }
  return {
    status: 200,
    body: {
      object: 'list',
      daily_costs: [...byDay].map(([d, line_items]) => ({ timestamp: Date.parse(`${d}T00:00:00Z`) / 1000, line_items })),
      total_usage: nanoToCents(total),
    },
  };
}
