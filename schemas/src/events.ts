import { z } from 'zod';
import { accountId, isoTime, keyId, modelName, multiplierPpm, nanoString, nonNegInt, sha256Hex } from './ids.js';
import { endpoints, requestStatuses, SCHEMA_VERSION, usageSources } from './enums.js';
import { isValidUsageEvent } from './usage-fast-path.js';

export * from './enums.js';

export const limitsSchema = z
  .object({
    rpm: nonNegInt.nullable(),
    tpm: nonNegInt.nullable(),
  })
  .strict();

const attempt = z
  .object({
    upstreamKeyId: z.string().max(64),
    status: z.number().int().min(0).max(599),
    outcome: z.enum(['ok', 'retryable', 'fatal', 'timeout', 'connect_error', 'cut']),
    latencyMs: nonNegInt,
    errorCode: z.string().max(100).nullable(),
  })
  .strict();
export type Attempt = z.infer<typeof attempt>;

export const tokenCounts = z
  .object({
    prompt: nonNegInt,
    cached: nonNegInt,
    completion: nonNegInt,
    reasoning: nonNegInt,
    audioPrompt: nonNegInt,
    audioCompletion: nonNegInt,
    imagePrompt: nonNegInt,
    imageCompletion: nonNegInt,
  })
  .strict();
export type TokenCounts = z.infer<typeof tokenCounts>;

export const usageRecorded = z
  .object({
    requestId: z.string().min(1).max(100),
    apiKeyId: keyId,
    endpoint: z.enum(endpoints),
    model: modelName,
    status: z.enum(requestStatuses),
    httpStatus: z.number().int().min(0).max(599),
    errorCode: z.string().max(100).nullable(),
    stream: z.boolean(),
    tokens: tokenCounts,
    images: nonNegInt,
    imageSize: z.string().max(20).nullable(),
    imageQuality: z.string().max(20).nullable(),
    audioMs: nonNegInt,
    speechCharacters: nonNegInt,
    usageSource: z.enum(usageSources),
    /** Cost charged to each account of the envelope's accountPath, same order, nano-USD. */
    costs: z.array(nanoString).min(1).max(32),
    /** What the request cost at list price (the root's price before any multiplier). */
    listCostNano: nanoString,
    priceVersion: z.string().min(1).max(100),
    holdId: z.string().max(100).nullable(),
    attempts: z.array(attempt).max(20),
    upstreamKeyId: z.string().max(64).nullable(),
    upstreamOrg: z.string().max(100).nullable(),
    latencyMs: nonNegInt,
    ttftMs: nonNegInt.nullable(),
  })
  .strict();
export type UsageRecorded = z.infer<typeof usageRecorded>;

export const creditGranted = z
  .object({
    accountId,
    amountNano: nanoString,
    note: z.string().max(500),
    idempotencyKey: z.string().min(1).max(200),
    grantedBy: z.string().max(100),
  })
  .strict();

const accountSettings = {
  name: z.string().min(1).max(200),
  multiplierPpm,
  creditLimitNano: nanoString.nullable(),
  limits: limitsSchema,
  models: z.array(modelName).max(500).nullable(),
  ipAllowlist: z.array(z.string().max(50)).max(100).nullable(),
  expiresAt: isoTime.nullable(),
};

export const accountCreated = z.object({ accountId, parentId: accountId.nullable(), ...accountSettings }).strict();

export const accountUpdated = z
  .object({
    accountId,
    patch: z.object(accountSettings).partial().strict(),
  })
  .strict();

export const accountDisabled = z.object({ accountId, reason: z.string().max(500) }).strict();

export const apiKeyCreated = z
  .object({
    keyId,
    accountId,
    hash: sha256Hex,
    prefix: z.string().max(20),
    name: z.string().max(200),
    models: z.array(modelName).max(500).nullable(),
    limits: limitsSchema,
    ipAllowlist: z.array(z.string().max(50)).max(100).nullable(),
    origins: z.array(z.string().max(200)).max(100).nullable(),
    expiresAt: isoTime.nullable(),
  })
  .strict();

export const apiKeyRevoked = z.object({ keyId, accountId, hash: sha256Hex }).strict();

export const upstreamKeyAdded = z
  .object({
    keyId,
    poolId: z.string().min(1).max(64),
    baseUrl: z.string().url().max(500),
    organization: z.string().max(100).nullable(),
    models: z.array(modelName).max(500).nullable(),
    weight: z.number().int().min(1).max(1000),
    /** AES-256-GCM ciphertext (base64) of the key; the plaintext never enters an event. */
    encryptedKey: z.string().min(1).max(2000),
  })
  .strict();

export const upstreamKeyDisabled = z.object({ keyId, reason: z.string().max(500) }).strict();
export const upstreamKeyEnabled = z.object({ keyId, reason: z.string().max(500) }).strict();
/** The key leaves the pool for good (its encrypted secret is deleted from the projection). */
export const upstreamKeyRemoved = z.object({ keyId, reason: z.string().max(500) }).strict();

export const priceTablePublished = z
  .object({
    version: z.string().min(1).max(100),
    source: z.string().max(200),
    /** The table itself, validated by prices/table.ts where it is used. */
    table: z.unknown(),
  })
  .strict();

export const eventDataSchemas = {
  'usage.recorded': usageRecorded,
  'credit.granted': creditGranted,
  'account.created': accountCreated,
  'account.updated': accountUpdated,
  'account.disabled': accountDisabled,
  'apikey.created': apiKeyCreated,
  'apikey.revoked': apiKeyRevoked,
  'upstream.key.added': upstreamKeyAdded,
  'upstream.key.disabled': upstreamKeyDisabled,
  'upstream.key.enabled': upstreamKeyEnabled,
  'upstream.key.removed': upstreamKeyRemoved,
  'price.table.published': priceTablePublished,
} as const;

export type EventType = keyof typeof eventDataSchemas;
export const eventTypes = Object.keys(eventDataSchemas) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof eventDataSchemas)[T]>;

const envelopeBase = {
  id: z.string().min(1).max(200),
  time: isoTime,
  source: z.string().min(1).max(100),
  /** root → … → the account the event is about; [] for operator-wide events (prices, upstream keys). */
  accountPath: z.array(accountId).max(32),
  schemaVersion: z.literal(SCHEMA_VERSION),
};

function envelopeOf<T extends EventType>(type: T) {
  return z.object({ ...envelopeBase, type: z.literal(type), data: eventDataSchemas[type] }).strict();
}

export const eventSchema = z.discriminatedUnion('type', eventTypes.map((t) => envelopeOf(t)) as unknown as [ReturnType<typeof envelopeOf<EventType>>]);

export type EventOf<T extends EventType> = {
  id: string;
  type: T;
  time: string;
  source: string;
  accountPath: string[];
  schemaVersion: typeof SCHEMA_VERSION;
  data: EventData<T>;
};
export type YugongEvent = { [T in EventType]: EventOf<T> }[EventType];

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Invalid events are expected (they go to the dead-letter topic), so this returns a value. */
export function parseEvent(input: unknown): ParseResult<YugongEvent> {
  // The bulk of the traffic, checked without zod's copy; anything it doubts goes to zod.
  if (isValidUsageEvent(input)) return { ok: true, value: input };
  const result = eventSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(root)';
    return { ok: false, error: `${where}: ${issue?.message ?? 'invalid event'}` };
  }
  const event = result.data as YugongEvent;
  if (event.type === 'usage.recorded' && event.data.costs.length !== event.accountPath.length) {
    return { ok: false, error: 'data.costs: one cost per account of accountPath is required' };
  }
  return { ok: true, value: event };
}

export function decodeEvent(bytes: Buffer | string): ParseResult<YugongEvent> {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  return parseEvent(json);
}

/**
 * The value of a Kafka message on an event topic: one or more events of one partition key,
 * one JSON text per line. Producers pack what one send has for a key into one message
 * (kafkajs spends most of a send encoding messages, not bytes). JSON.stringify never writes
 * a raw newline, so the lines split unambiguously, and a message of one event is exactly the
 * JSON of that event, as messages were before packing.
 */
export function packEvents(events: readonly YugongEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n');
}

export interface UnpackedLine {
  /** The line as it was sent: what the dead-letter topic receives if it is invalid. */
  text: string;
  decoded: ParseResult<YugongEvent>;
}

/** Every event of a message, each decoded on its own: one bad line does not spoil the others. */
export function unpackEvents(bytes: Buffer | string): UnpackedLine[] {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  const lines = text.indexOf('\n') < 0 ? [text] : text.split('\n');
  return lines.map((line) => ({ text: line, decoded: decodeEvent(line) }));
}

export function makeEvent<T extends EventType>(type: T, fields: { id: string; source: string; accountPath: string[]; data: EventData<T>; time?: Date }): EventOf<T> {
  return {
    id: fields.id,
    type,
    time: (fields.time ?? new Date()).toISOString(),
    source: fields.source,
    accountPath: fields.accountPath,
    schemaVersion: SCHEMA_VERSION,
    data: fields.data,
  };
}
