import type { EventOf } from '../events.js';
import { toClickHouseDateTime } from './sql.js';
import type { CreditColumn, LineItemColumn } from './migrations.js';

export type LineItemRow = Record<LineItemColumn, string | number | string[]>;

/** One line item per client request: every field of its usage event, flattened. */
export function toLineItemRow(event: EventOf<'usage.recorded'>): LineItemRow {
  const d = event.data;
  const path = event.accountPath;
  return {
    event_id: event.id,
    request_id: d.requestId,
    time: toClickHouseDateTime(new Date(event.time)),
    root_account_id: path[0] ?? '',
    account_id: path[path.length - 1] ?? '',
    account_path: path,
    costs_nano: d.costs,
    cost_nano: d.costs[d.costs.length - 1] ?? '0',
    list_cost_nano: d.listCostNano,
    price_version: d.priceVersion,
    api_key_id: d.apiKeyId,
    endpoint: d.endpoint,
    model: d.model,
    status: d.status,
    http_status: d.httpStatus,
    error_code: d.errorCode ?? '',
    stream: d.stream ? 1 : 0,
    prompt_tokens: d.tokens.prompt,
    cached_tokens: d.tokens.cached,
    completion_tokens: d.tokens.completion,
    reasoning_tokens: d.tokens.reasoning,
    audio_prompt_tokens: d.tokens.audioPrompt,
    audio_completion_tokens: d.tokens.audioCompletion,
    image_prompt_tokens: d.tokens.imagePrompt,
    image_completion_tokens: d.tokens.imageCompletion,
    images: d.images,
    image_size: d.imageSize ?? '',
    image_quality: d.imageQuality ?? '',
    audio_ms: d.audioMs,
    speech_characters: d.speechCharacters,
    usage_source: d.usageSource,
    attempts: d.attempts.length,
    attempts_json: JSON.stringify(d.attempts),
    upstream_key_id: d.upstreamKeyId ?? '',
    upstream_org: d.upstreamOrg ?? '',
    latency_ms: d.latencyMs,
    ttft_ms: d.ttftMs ?? -1,
  };
}

export type CreditRow = Record<CreditColumn, string | string[]>;

/** One row per top-up (credit.granted). */
export function toCreditRow(event: EventOf<'credit.granted'>): CreditRow {
  const d = event.data;
  return {
    event_id: event.id,
    time: toClickHouseDateTime(new Date(event.time)),
    root_account_id: event.accountPath[0] ?? d.accountId,
    account_id: d.accountId,
    account_path: event.accountPath,
    amount_nano: d.amountNano,
    note: d.note,
    idempotency_key: d.idempotencyKey,
    granted_by: d.grantedBy,
  };
}
