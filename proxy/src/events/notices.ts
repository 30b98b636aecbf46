import { decodeNotice, redisKeys, type ChangeNotice, type RedisClient } from '@yugong/schemas';

/**
 * Follows the change notices every process caches by. A lost subscription may have missed
 * some, so `resync` runs whenever it comes back: forget everything cached.
 */
export async function followChanges(subscriber: RedisClient, handlers: { notice(n: ChangeNotice): void; resync(): void }): Promise<void> {
  subscriber.on('message', (_channel: string, message: string) => {
    const n = decodeNotice(message);
    if (n) handlers.notice(n);
  });
  subscriber.on('ready', () => handlers.resync());
  await subscriber.subscribe(redisKeys.changes());
}
