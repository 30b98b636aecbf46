import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { redisKeys, sqlStringArray } from '@yugong/schemas';

export interface Drift {
  accountId: string;
  /** What Redis says the account spent (the balances consumer). */
  redisSpentNano: bigint;
  /** The same account's costs summed from ClickHouse line items (the line-items consumer). */
  lineItemsNano: bigint;
  creditedNano: bigint;
  drift: bigint;
}

const SLICE = 500;

/**
 * Compares the two independent folds of the same events, account by account: Redis
 * balances and ClickHouse line items (every account of every path, at its own cost). Run it
 * when the consumers have caught up; any drift then means an event applied on one side and
 * not the other, or twice.
 */
export async function reconcile(redis: Redis, clickhouse: ClickHouseClient, only?: string[]): Promise<Drift[]> {
  const roots = await redis.hgetall(redisKeys.accountRoots());
  const ids = (only ?? Object.keys(roots)).filter((id) => roots[id] !== undefined).sort();
  const out: Drift[] = [];
  for (let i = 0; i < ids.length; i += SLICE) {
    const slice = ids.slice(i, i + SLICE);
    const rs = await clickhouse.query({
      query: `SELECT path_account AS account_id, toString(sum(path_cost)) AS cost
        FROM line_items ARRAY JOIN account_path AS path_account, costs_nano AS path_cost
        WHERE path_account IN ${sqlStringArray(slice).replace(/^\[/, '(').replace(/\]$/, ')')}
        GROUP BY account_id`,
      format: 'JSONEachRow',
    });
    const sums = new Map((await rs.json<{ account_id: string; cost: string }>()).map((r) => [r.account_id, BigInt(r.cost)]));
    const p = redis.pipeline();
    for (const id of slice) p.hmget(redisKeys.account(roots[id] ?? id, id), 'spent', 'credited');
    const results = (await p.exec()) ?? [];
    slice.forEach((id, j) => {
      const [err, fields] = results[j] ?? [];
      if (err) throw err;
      const [spent, credited] = (fields as (string | null)[]) ?? [];
      const redisSpentNano = BigInt(spent ?? '0');
      const lineItemsNano = sums.get(id) ?? 0n;
      out.push({ accountId: id, redisSpentNano, lineItemsNano, creditedNano: BigInt(credited ?? '0'), drift: redisSpentNano - lineItemsNano });
    });
  }
  return out;
}
