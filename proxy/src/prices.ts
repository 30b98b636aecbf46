import { makeEvent, priceTableSchema, redisKeys, seedPriceTable, type PriceTable, type RedisClient } from '@yugong/schemas';
import type { EventSink } from './events/sink.js';

/**
 * The price table in force. It lives in Redis (published as an event, projected by the
 * ledger); a node that finds none seeds it from the maintained price package and publishes it.
 */
export class PriceBook {
  private table: PriceTable | null = null;

  constructor(private readonly redis: RedisClient) {}

  get current(): PriceTable {
    if (!this.table) throw new Error('price book not loaded');
    return this.table;
  }

  async load(sink: EventSink, source: string): Promise<void> {
    const version = await this.redis.get(redisKeys.currentPriceVersion());
    if (version && (await this.reload(version))) return;
    const seeded = seedPriceTable();
    this.table = seeded;
    await sink.emit(makeEvent('price.table.published', { id: `price:${seeded.version}`, source, accountPath: [], data: { version: seeded.version, source: seeded.source, table: seeded } }));
  }

  /** Switches to a published version; false if Redis does not have it (yet). */
  async reload(version: string): Promise<boolean> {
    const raw = await this.redis.hget(redisKeys.priceTables(), version);
    if (!raw) return false;
    this.table = priceTableSchema.parse(JSON.parse(raw));
    return true;
  }
}
