/**
 * Every Redis key is built here. Keys of one account tree carry the hash tag {root}, so a
 * single Lua script can touch a whole tree on one Redis Cluster slot.
 */
const PREFIX = 'yg';

function tree(root: string): string {
  return `${PREFIX}:{${root}}`;
}

export const redisKeys = {
  /** Hash: the account's projection (parent, multiplier, limits, balance, spent, credit limit). */
  account: (root: string, accountId: string) => `${tree(root)}:acct:${accountId}`,
  /** Sorted set of hold ids scored by expiry (ms); the amounts live in `holdAmounts`. */
  holds: (root: string, accountId: string) => `${tree(root)}:holds:${accountId}`,
  holdAmounts: (root: string, accountId: string) => `${tree(root)}:holdamt:${accountId}`,
  /**
   * What finished requests held alone cost, by hold id, until the ledger settles them: their
   * holds have come down to it, and their sum is the account's `settling` (a part of `held`
   * that is spent, not reserved).
   */
  holdCosts: (root: string, accountId: string) => `${tree(root)}:holdcost:${accountId}`,
  /**
   * Admission leases (a proxy node's slice of an account's funds): ids scored by expiry and
   * what each still reserves; their sum is the account's `leased` field, as holds' is `held`.
   */
  leases: (root: string, accountId: string) => `${tree(root)}:leases:${accountId}`,
  leaseAmounts: (root: string, accountId: string) => `${tree(root)}:leaseamt:${accountId}`,
  /** Set: ids of the direct children of an account. */
  children: (root: string, accountId: string) => `${tree(root)}:children:${accountId}`,
  /** String: marks an event applied to this tree; outlives Kafka retention. */
  applied: (root: string, eventId: string) => `${tree(root)}:applied:${eventId}`,
  /** Rate windows: requests and tokens per minute for an account or key. */
  rpm: (root: string, subject: string, minute: number) => `${tree(root)}:rpm:${subject}:${minute}`,
  tpm: (root: string, subject: string, minute: number) => `${tree(root)}:tpm:${subject}:${minute}`,
  /** Set: key ids of an account; hash: one key's metadata (never its secret or hash). */
  keysOf: (root: string, accountId: string) => `${tree(root)}:keys:${accountId}`,
  keyMeta: (root: string, keyId: string) => `${tree(root)}:key:${keyId}`,
  /** Hash: API key projection by SHA-256 of the key (global lookup, not tree-tagged). */
  apiKey: (hash: string) => `${PREFIX}:apikey:${hash}`,
  /** Hash: account id → root, so a lookup by account finds its tree. */
  accountRoots: () => `${PREFIX}:account-roots`,
  /** Hash: upstream key id → JSON projection (encrypted key, pool, models, health). */
  upstreamKeys: () => `${PREFIX}:upstream-keys`,
  /** Hash: price version → JSON table; string: the current version. */
  priceTables: () => `${PREFIX}:price-tables`,
  currentPriceVersion: () => `${PREFIX}:price-current`,
  /** Pub/sub channel on which projection changes are announced to proxy nodes. */
  changes: () => `${PREFIX}:changes`,
  /** Counter: failed authentications of one address (or IPv6 /64) in one minute, shared by every node. */
  authFailures: (subject: string, minute: number) => `${PREFIX}:authfail:${subject}:${minute}`,
  /** Hash: a client request made with an Idempotency-Key (its fingerprint, state and kept answer), 24 h. */
  idempotentRequest: (root: string, accountId: string, keyHash: string) => `${tree(root)}:idemreq:${accountId}:${keyHash}`,
  /** Hash: idempotency key hash → the top-up it was first used for, per account. */
  creditRequests: (root: string, accountId: string) => `${tree(root)}:creditreq:${accountId}`,
  /** Idempotency of operator/self-service writes (top-ups). */
  idempotency: (scope: string, key: string) => `${PREFIX}:idem:${scope}:${key}`,
} as const;
