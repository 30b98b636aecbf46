/**
 * Calls to Yugong's public APIs, exactly as any other client makes them: the account API and
 * OpenAI's billing API on the proxy, the analytics API on this page's own origin. The API key
 * lives in sessionStorage only: it is gone when the tab closes, and never sits in a cookie.
 */
const KEY = 'yugong.apiKey';

export interface PageConfig {
  proxyUrl: string;
}

/** An API's refusal, with its OpenAI-shaped message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
    readonly param: string | null,
  ) {
    super(message);
  }
}

function stored(name: string) {
  return {
    key: (): string | null => sessionStorage.getItem(name),
    signIn: (key: string) => sessionStorage.setItem(name, key),
    signOut: () => sessionStorage.removeItem(name),
  };
}
export const session = stored(KEY);
/** The operator console's admin token: its own entry, so the two sign-ins never mix. */
export const adminSession = stored('yugong.adminToken');

let config: Promise<PageConfig> | null = null;
export function pageConfig(): Promise<PageConfig> {
  config ??= fetch('/web-config.json').then((r) => r.json() as Promise<PageConfig>);
  return config;
}

async function call(url: string, init: RequestInit = {}, key = session.key()): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  } catch {
    throw new ApiError(0, 'network', 'network_error', null);
  }
  if (res.ok) return res;
  let body: { error?: { message?: string; code?: string | null; param?: string | null } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: the status line is all we have
  }
  throw new ApiError(res.status, body.error?.message ?? `${res.status} ${res.statusText}`, body.error?.code ?? null, body.error?.param ?? null);
}

const query = (params: Record<string, string | number | null | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : '';
};

export async function proxyJson<T>(method: string, path: string, body?: unknown, key?: string): Promise<T> {
  const { proxyUrl } = await pageConfig();
  const res = await call(`${proxyUrl}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) }, key);
  return (await res.json()) as T;
}

export async function analyticsJson<T>(path: string, params: Record<string, string | number | null | undefined> = {}, key?: string): Promise<T> {
  return (await (await call(`/analytics/v1${path}${query(params)}`, {}, key)).json()) as T;
}

/** The CSV arrives with the key in a header, so it is saved from a blob rather than a link. */
export async function downloadCsv(path: string, params: Record<string, string | number | null | undefined>, fileName: string): Promise<void> {
  const blob = await (await call(`/analytics/v1${path}${query({ ...params, format: 'csv' })}`)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface Account {
  id: string;
  parent_id: string | null;
  name: string;
  status: string;
  multiplier: number;
  balance_usd: string;
  balance_nano: string;
  credited_nano: string;
  spent_nano: string;
  held_nano: string;
  leased_nano?: string;
  credit_limit_usd: string;
  requests: string | number;
  rpm: number | null;
  tpm: number | null;
  models: string[] | null;
  ip_allowlist: string[] | null;
  expires_at: string | null;
  created_at: string;
}

export interface Me extends Account {
  key: { id: string; models: string[] | null; rpm: number | null; tpm: number | null; expires_at: string | null };
}

export interface ApiKey {
  id: string;
  account_id: string;
  prefix: string;
  name: string;
  status: string;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  expires_at: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface UsageRow {
  bucket: string | null;
  group: string | null;
  requests: number;
  errors: number;
  tokens: { prompt: number; cached: number; completion: number; reasoning: number; audio_prompt: number; audio_completion: number };
  cost_nano: string;
}

export interface LineItem {
  event_id: string;
  request_id: string;
  time: string;
  caller_account_id: string;
  path: string[];
  cost_nano: string;
  price_version: string;
  api_key_id: string;
  endpoint: string;
  model: string;
  status: string;
  http_status: number;
  error_code: string;
  stream: boolean;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  usage_source: string;
  attempts: number;
  latency_ms: number;
  ttft_ms: number | null;
  attempt_details?: { status: number; outcome: string; latencyMs: number; errorCode: string | null }[];
  [field: string]: unknown;
}

export interface Use {
  limit: number | null;
  used: number;
  remaining: number | null;
}

export interface RateLimits {
  window_resets_in_ms: number;
  key: { rpm: Use; tpm: Use };
  accounts: { account_id: string; rpm: Use; tpm: Use }[];
}
