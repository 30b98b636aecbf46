import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from 'pino';

/** The replicas of one ClickHouse shard, used one at a time: the one that last answered. */
export interface ReplicaSet {
  /** Runs `work` on the current replica and, while it fails, at once on each next one; throws the last failure. */
  run<T>(what: string, work: (ch: ClickHouseClient) => Promise<T>): Promise<T>;
}

export function createReplicaSet(replicas: ClickHouseClient[], log: Logger): ReplicaSet {
  if (replicas.length === 0) throw new RangeError('the ledger needs a ClickHouse server');
  let current = 0;
  return {
    async run(what, work) {
      for (let tried = 1; ; tried++) {
        try {
          return await work(replicas[current] as ClickHouseClient);
        } catch (err) {
          if (tried >= replicas.length) throw err;
          const failed = current;
          current = (current + 1) % replicas.length;
          log.warn({ err: (err as Error).message, failed, next: current, what }, 'ClickHouse replica failed; trying the next');
        }
      }
    },
  };
}
