import type { ClickHouseClient } from '@clickhouse/client';
import { decodeAccount, redisKeys, sqlStringSet, type RedisClient } from '@yugong/schemas';

export interface Drift {
  accountId: string;
  /** What Redis says the account spent (the balances consumer). */
  redisSpentNano: bigint;
  /** The same account's costs summed from ClickHouse line items (the line-items consumer). */
  lineItemsNano: bigint;
  /** Top-ups as Redis holds them, and as the ClickHouse credits table holds them. */
  creditedNano: bigint;
  creditsTableNano: bigint;
  /** Spent in Redis − line items. */
  drift: bigint;
  /** Credited in Redis − credits table. */
  creditDrift: bigint;
}

const SLICE = 500;

async function sums(clickhouse: ClickHouseClient, query: string): Promise<Map<string, bigint>> {
  const rs = await clickhouse.query({ query, format: 'JSONEachRow' });
  return new Map((await rs.json<{ account_id: string; total: string }>()).map((r) => [r.account_id, BigInt(r.total)]));
}

/**
 * Compares the two independent folds of the same events, account by account: Redis
 * balances and ClickHouse (line items for every account of every path at its own cost,
 * credits for top-ups). Run it when the consumers have caught up; any drift then means an
 * event applied on one side and not the other, or twice.
 */
export async function reconcile(redis: RedisClient, clickhouse: ClickHouseClient, only?: string[]): Promise<Drift[]> {
  const roots = await redis.hgetall(redisKeys.accountRoots());
  const ids = (only ?? Object.keys(roots)).filter((id) => roots[id] !== undefined).sort();
  const out: Drift[] = [];
  for (let i = 0; i < ids.length; i += SLICE) {
    const slice = ids.slice(i, i + SLICE);
    const set = sqlStringSet(slice);
    const spent = await sums(
      clickhouse,
      `SELECT path_account AS account_id, toString(sum(path_cost)) AS total
      FROM line_items ARRAY JOIN account_path AS path_account, costs_nano AS path_cost
      WHERE path_account IN ${set} GROUP BY account_id`,
    );
    // LIMIT 1 BY: a replaced row that is not merged yet counts once.
    const credited = await sums(
      clickhouse,
      `SELECT account_id, toString(sum(amount_nano)) AS total
      FROM (SELECT event_id, account_id, amount_nano FROM credits WHERE account_id IN ${set} LIMIT 1 BY event_id) GROUP BY account_id`,
    );
    // Accounts of many trees: separate calls, as a Redis Cluster refuses a pipeline across slots.
    const results = await Promise.all(slice.map(async (id) => decodeAccount(await redis.hgetall(redisKeys.account(roots[id] ?? id, id)))));
    slice.forEach((id, j) => {
      const redisSpentNano = results[j]?.spentNano ?? 0n;
      const lineItemsNano = spent.get(id) ?? 0n;
      const creditedNano = results[j]?.creditedNano ?? 0n;
      const creditsTableNano = credited.get(id) ?? 0n;
      out.push({ accountId: id, redisSpentNano, lineItemsNano, creditedNano, creditsTableNano, drift: redisSpentNano - lineItemsNano, creditDrift: creditedNano - creditsTableNano });
    });
  }
  return out;
}
