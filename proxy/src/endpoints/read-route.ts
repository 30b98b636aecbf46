import type { AccountView, ClientKey } from '../auth/projections.js';
import type { ApiError } from '../errors.js';

export interface Answer {
  status: number;
  body: unknown;
}

export interface ReadAsk {
  suffix: string;
  query: URLSearchParams;
  key: ClientKey;
  accounts: AccountView[];
}

/** A GET under /v1 that costs nothing and goes nowhere upstream: answered from this node's own state. */
export interface ReadRoute {
  /** The metrics label. */
  label: 'models' | 'billing';
  matches(suffix: string): boolean;
  answer(ask: ReadAsk): Promise<Answer | ApiError> | Answer | ApiError;
}
