import { z } from 'zod';

/** One segment of an account id: what a caller chooses when it creates an account. */
export const ACCOUNT_SEGMENT = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/**
 * Account ids are URL/Redis/ClickHouse safe, so they can live in keys and paths. The operator's
 * are one segment; a sub-account made through the self-service API is named under its parent
 * (`acme.shop`), so it can never take or reveal an id outside its creator's subtree.
 */
export const ACCOUNT_ID = /^(?=.{1,200}$)[a-z0-9][a-z0-9_-]{0,63}(\.[a-z0-9][a-z0-9_-]{0,63})*$/;
export const accountSegment = z.string().regex(ACCOUNT_SEGMENT, 'account id: 1-64 of a-z 0-9 _ -');
export const accountId = z.string().regex(ACCOUNT_ID, "account id: segments of 1-64 of a-z 0-9 _ -, joined by '.', at most 200 characters");
export const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'key id: 1-64 of A-Z a-z 0-9 _ -');
export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'SHA-256 as 64 lowercase hex digits');
/** An integer amount of nano-USD carried as a decimal string, so sums never lose precision. */
export const nanoString = z.string().regex(/^-?\d{1,30}$/, 'integer nano-USD as a decimal string');
export const nonNegInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** Parts per million: 1_000_000 is ×1. Zero or below is never a valid price multiplier. */
export const multiplierPpm = z.number().int().positive().max(1_000_000_000);
export const modelName = z.string().min(1).max(200);
export const isoTime = z.string().datetime({ offset: true });

/**
 * A proxy node's admission lease, named as the hold of the requests it admits. The prefix tells
 * the ledger's settlement script which kind of hold an event names (one lookup, not two); the
 * node's id is cut so that the whole id fits an event's `holdId` (100 characters).
 */
export const LEASE_PREFIX = 'lease:';
export const leaseHoldId = (nodeId: string, seq: number, nonce: string) => `${LEASE_PREFIX}${nodeId.slice(0, 64)}:${seq.toString(36)}:${nonce}`;
