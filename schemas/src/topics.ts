import type { EventType, YugongEvent } from './events.js';

/** Topic names live here only; every producer and consumer takes them from this map. */
export const topics = {
  /** usage.recorded, keyed by the root account so one tenant's events stay ordered. */
  usage: 'yugong.usage.v1',
  /** credits, accounts and API keys, keyed by the root account. */
  accounts: 'yugong.accounts.v1',
  /** operator-wide state: upstream keys and price tables, keyed by the entity. */
  control: 'yugong.control.v1',
  /** events that failed validation, with the reason in a header. */
  deadLetter: 'yugong.dlq.v1',
} as const;
export type TopicName = (typeof topics)[keyof typeof topics];

export const topicPartitions: Record<TopicName, number> = {
  'yugong.usage.v1': 6,
  'yugong.accounts.v1': 6,
  'yugong.control.v1': 1,
  'yugong.dlq.v1': 1,
};

const topicOfType: Record<EventType, TopicName> = {
  'usage.recorded': topics.usage,
  'credit.granted': topics.accounts,
  'account.created': topics.accounts,
  'account.updated': topics.accounts,
  'account.disabled': topics.accounts,
  'apikey.created': topics.accounts,
  'apikey.revoked': topics.accounts,
  'upstream.key.added': topics.control,
  'upstream.key.disabled': topics.control,
  'upstream.key.enabled': topics.control,
  'upstream.key.removed': topics.control,
  'price.table.published': topics.control,
};

export function topicFor(type: EventType): TopicName {
  return topicOfType[type];
}

/** The partition key: the root account for tenant events, the entity for control events. */
export function partitionKeyFor(event: YugongEvent): string {
  const root = event.accountPath[0];
  if (root !== undefined) return root;
  switch (event.type) {
    case 'upstream.key.added':
    case 'upstream.key.disabled':
    case 'upstream.key.enabled':
    case 'upstream.key.removed':
      return `upstream:${event.data.keyId}`;
    case 'price.table.published':
      return 'prices';
    default:
      throw new RangeError(`${event.type} needs an accountPath`);
  }
}

/** The little of kafkajs' admin client that topic creation needs. */
export interface TopicAdmin {
  listTopics(): Promise<string[]>;
  createTopics(options: {
    topics: { topic: string; numPartitions: number; replicationFactor?: number; configEntries?: { name: string; value: string }[] }[];
    waitForLeaders?: boolean;
  }): Promise<boolean>;
  alterConfigs(options: { validateOnly: boolean; resources: { type: number; name: string; configEntries: { name: string; value: string }[] }[] }): Promise<unknown>;
}

/**
 * The event log is the source of truth (the rebuild tool replays it from the beginning), so
 * the event topics keep everything; the dead-letter topic keeps the broker's default.
 */
const keepForever = [{ name: 'retention.ms', value: '-1' }];
const kept: TopicName[] = [topics.usage, topics.accounts, topics.control];
/** kafkajs' ConfigResourceTypes.TOPIC. */
const TOPIC_RESOURCE = 2;

/** Creates the topics that do not exist yet and keeps the event topics' retention unlimited; returns the ones it created. */
export async function ensureTopics(admin: TopicAdmin, replicationFactor = 1): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = (Object.keys(topicPartitions) as TopicName[]).filter((t) => !existing.has(t));
  if (missing.length > 0) {
    await admin.createTopics({
      topics: missing.map((topic) => ({ topic, numPartitions: topicPartitions[topic], replicationFactor, ...(kept.includes(topic) ? { configEntries: keepForever } : {}) })),
      waitForLeaders: true,
    });
  }
  const older = kept.filter((t) => existing.has(t));
  if (older.length > 0) {
    await admin.alterConfigs({ validateOnly: false, resources: older.map((name) => ({ type: TOPIC_RESOURCE, name, configEntries: keepForever })) });
  }
  return missing;
}

/**
 * How every service produces events. Not kafkajs's idempotent producer: after an ambiguous
 * failure (a leader killed between storing a batch and acknowledging it) kafkajs takes the
 * batch's sequence numbers back, and the next batch of the same size reuses them; the broker
 * then answers it as a duplicate of the stored one and drops it. Seen: 40 of 1,827 served
 * requests' events missing after a broker was killed. Events carry their own ids and every
 * consumer applies each id once, so a retried batch that lands twice is harmless; one dropped
 * is not. One request in flight per broker keeps a partition's events in order.
 */
export const producerOptions = { idempotent: false, maxInFlightRequests: 1, allowAutoTopicCreation: false } as const;
