import { zeroTokens } from '@yugong/metering';
import type { BillableUsage, Endpoint as EndpointName } from '@yugong/schemas';
import type { ApiError } from '../errors.js';

export type Obj = Record<string, unknown>;

/** A multipart/form-data body: its text fields and its files. */
export interface MultipartView {
  fields: Record<string, string>;
  files: { field: string; filename: string; data: Buffer }[];
}

/** A request as its endpoint sees it, after the checks every endpoint shares. */
export interface EndpointRequest {
  model: string;
  /** The JSON body; empty for a form. */
  json: Obj;
  multipart: MultipartView | null;
  bodyBytes: number;
}

export interface Estimate {
  usage: BillableUsage;
  /** Tokens counted against TPM: the prompt bound plus the completion budget. */
  tokens: number;
  /** The audio's likely length (not its bound), billed when upstream reports none. */
  audioMs: number;
}

export interface Billed {
  usage: BillableUsage;
  source: 'upstream' | 'estimated' | 'none';
}

/** How a request ended when upstream reported no usage for it. */
export interface Unreported {
  req: EndpointRequest;
  hold: Estimate;
  /** The text that reached the client of a stream. */
  delivered: string;
  outcome: 'served' | 'failed';
  /** A stream upstream cut after some of it was sent. */
  partial: boolean;
}

/**
 * One metered OpenAI endpoint: its route, its own checks, the upper bound of its cost that
 * admission holds, and what it bills when upstream says nothing.
 */
export interface MeteredEndpoint {
  name: EndpointName;
  method: 'POST';
  /** The path after /v1. */
  suffix: string;
  body: 'json' | 'multipart';
  defaultModel?: string;
  /** Accepts `stream: true` and answers with SSE. */
  streamable: boolean;
  /** Streams whose usage OpenAI sends only when asked (`stream_options.include_usage`). */
  usageOnRequest?: boolean;
  /** The form field a multipart request must carry. */
  upload?: 'file' | 'image';
  /** Checks of its own, after the shared ones (stream, token budgets, n). */
  validate?(json: Obj): ApiError | null;
  hold(req: EndpointRequest, defaultCompletion: number): Estimate;
  /** What upstream's token report leaves out (pictures priced one by one). */
  fromReport?(usage: BillableUsage, req: EndpointRequest, hold: Estimate): BillableUsage;
  unreported(u: Unreported): Billed;
}

export function emptyUsage(): BillableUsage {
  return { tokens: zeroTokens(), images: 0, imageSize: null, imageQuality: null, audioMs: 0, speechCharacters: 0 };
}

/** The hold's usage with every billable quantity at zero (its image size and quality stay, for pricing). */
export function nothing(hold: Estimate): BillableUsage {
  return { ...hold.usage, tokens: zeroTokens(), images: 0, audioMs: 0, speechCharacters: 0 };
}

/** For endpoints priced by what was asked: a failed request bills nothing, a served one `served`. */
export function whenServed(served: (u: Unreported) => Billed): (u: Unreported) => Billed {
  return (u) => (u.outcome === 'failed' ? { usage: nothing(u.hold), source: 'none' } : served(u));
}

export const positiveInt = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
