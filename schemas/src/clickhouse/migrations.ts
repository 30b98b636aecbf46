/**
 * Numbered ClickHouse migrations. Every statement runs on 18.16 (Debian's server) and on
 * modern servers: String/Int/DateTime/Array columns, (Replacing|Summing)MergeTree, and
 * materialized views `TO` a target table. Append new migrations; never edit an applied one.
 */
export interface Migration {
  id: number;
  name: string;
  statements: string[];
}

/** Columns of line_items in insert order; the ledger's ClickHouse sink writes exactly these. */
export const lineItemColumns = [
  'event_id',
  'request_id',
  'time',
  'root_account_id',
  'account_id',
  'account_path',
  'costs_nano',
  'cost_nano',
  'list_cost_nano',
  'price_version',
  'api_key_id',
  'endpoint',
  'model',
  'status',
  'http_status',
  'error_code',
  'stream',
  'prompt_tokens',
  'cached_tokens',
  'completion_tokens',
  'reasoning_tokens',
  'audio_prompt_tokens',
  'audio_completion_tokens',
  'image_prompt_tokens',
  'image_completion_tokens',
  'images',
  'image_size',
  'image_quality',
  'audio_ms',
  'speech_characters',
  'usage_source',
  'attempts',
  'attempts_json',
  'upstream_key_id',
  'upstream_org',
  'latency_ms',
  'ttft_ms',
] as const;
export type LineItemColumn = (typeof lineItemColumns)[number];

/** Columns of credits (top-ups) in insert order. */
export const creditColumns = ['event_id', 'time', 'root_account_id', 'account_id', 'account_path', 'amount_nano', 'note', 'idempotency_key', 'granted_by'] as const;
export type CreditColumn = (typeof creditColumns)[number];

const rollupMeasures = `
  requests UInt64,
  errors UInt64,
  retried UInt64,
  prompt_tokens UInt64,
  cached_tokens UInt64,
  completion_tokens UInt64,
  reasoning_tokens UInt64,
  audio_prompt_tokens UInt64,
  audio_completion_tokens UInt64,
  images UInt64,
  audio_ms UInt64,
  speech_characters UInt64,
  cost_nano Int64,
  list_cost_nano Int64,
  latency_ms_sum UInt64,
  ttft_ms_sum UInt64,
  ttft_count UInt64`;

function rollupTable(name: string, bucketType: 'DateTime' | 'Date'): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
        account_id String, bucket ${bucketType}, api_key_id String, model String, caller_account_id String,${rollupMeasures}
      ) ENGINE = SummingMergeTree()
      PARTITION BY toYYYYMM(bucket)
      ORDER BY (account_id, bucket, model, api_key_id, caller_account_id)`;
}

/** Each account of the path gets its own rollup row, priced at its own cost. */
function rollupSelect(bucket: 'toStartOfHour' | 'toDate'): string {
  return `SELECT
    path_account AS account_id,
    ${bucket}(time) AS bucket,
    api_key_id,
    model,
    account_id AS caller_account_id,
    toUInt64(1) AS requests,
    toUInt64(status != 'ok') AS errors,
    toUInt64(attempts > 1) AS retried,
    toUInt64(prompt_tokens) AS prompt_tokens,
    toUInt64(cached_tokens) AS cached_tokens,
    toUInt64(completion_tokens) AS completion_tokens,
    toUInt64(reasoning_tokens) AS reasoning_tokens,
    toUInt64(audio_prompt_tokens) AS audio_prompt_tokens,
    toUInt64(audio_completion_tokens) AS audio_completion_tokens,
    toUInt64(images) AS images,
    toUInt64(audio_ms) AS audio_ms,
    toUInt64(speech_characters) AS speech_characters,
    path_cost AS cost_nano,
    list_cost_nano,
    toUInt64(latency_ms) AS latency_ms_sum,
    toUInt64(if(ttft_ms >= 0, ttft_ms, 0)) AS ttft_ms_sum,
    toUInt64(ttft_ms >= 0) AS ttft_count
  FROM line_items
  ARRAY JOIN account_path AS path_account, costs_nano AS path_cost`;
}

/**
 * Measures of the v2 rollups; every one is a plain sum, so SummingMergeTree keeps them. A
 * measure never takes the name of a line_items column: ClickHouse aliases are global to a
 * query, and `sum(images) AS images` would refer to itself (and 18.16 cannot push blocks
 * through a view that reads a subquery, which would otherwise rename them).
 */
const total = (c: string): [string, string, string] => [`${c}_total`, 'UInt64', `sum(toUInt64(${c}))`];
const sums: [name: string, type: string, expr: string][] = [
  ['requests', 'UInt64', 'count()'],
  ['errors', 'UInt64', "countIf(status != 'ok')"],
  ['retried', 'UInt64', 'countIf(attempts > 1)'],
  ...['attempts', 'prompt_tokens', 'cached_tokens', 'completion_tokens', 'reasoning_tokens', 'audio_prompt_tokens', 'audio_completion_tokens', 'images', 'audio_ms', 'speech_characters'].map(total),
  ['cost_nano', 'Int64', 'sum(path_cost)'],
  ['upstream_cost_nano', 'Int64', 'sum(list_cost_nano)'],
  ['latency_ms_sum', 'UInt64', 'sum(toUInt64(latency_ms))'],
  ['ttft_ms_sum', 'UInt64', 'sum(toUInt64(greatest(ttft_ms, 0)))'],
  ['ttft_count', 'UInt64', 'countIf(ttft_ms >= 0)'],
];

/** quantilesTiming is exact below 1,024 ms and within 16 ms up to 30 s; its states merge. */
export const QUANTILES = 'quantilesTiming(0.5, 0.9, 0.99)';
const states: [name: string, type: string, expr: string][] = [
  ['latency_q', `AggregateFunction(${QUANTILES}, UInt32)`, `${QUANTILES.replace('(', 'State(')}(latency_ms)`],
  ['ttft_q', `AggregateFunction(${QUANTILES}, UInt32)`, `${QUANTILES.replace('(', 'StateIf(')}(toUInt32(greatest(ttft_ms, 0)), ttft_ms >= 0)`],
  /** sumMerge(requests_state): how many requests the percentiles cover. */
  ['requests_state', 'AggregateFunction(sum, UInt64)', 'sumState(toUInt64(1))'],
];

const accountDims = ['account_id', 'bucket', 'model', 'api_key_id', 'child_account_id', 'caller_account_id'];
const upstreamDims = ['bucket', 'upstream_key_id', 'upstream_org', 'model'];

type Bucket = 'toStartOfHour' | 'toDate';
const bucketType = (b: Bucket) => (b === 'toDate' ? 'Date' : 'DateTime');

/**
 * One row per account of the path: the account, the child of it through which the request
 * came ('' for its own requests), the caller (the path's last account) and the cost at the
 * account's own price.
 */
function perPathAccount(bucket: Bucket, measures: string[], dims: string[]): string {
  return `SELECT path_account AS account_id, ${bucket}(time) AS bucket, model, api_key_id,
      if(depth < length(account_path), account_path[depth + 1], '') AS child_account_id,
      account_path[length(account_path)] AS caller_account_id,
      ${measures.join(', ')}
    FROM line_items
    ARRAY JOIN account_path AS path_account, costs_nano AS path_cost, arrayEnumerate(account_path) AS depth
    GROUP BY ${dims.join(', ')}`;
}

function accountRollup(table: string, bucket: Bucket): string[] {
  const select = perPathAccount(
    bucket,
    sums.map(([n, , e]) => `${e} AS ${n}`),
    accountDims,
  );
  return [
    `CREATE TABLE ${table} (
      account_id String, bucket ${bucketType(bucket)}, model String, api_key_id String, child_account_id String, caller_account_id String,
      ${sums.map(([n, t]) => `${n} ${t}`).join(', ')}
    ) ENGINE = SummingMergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (${accountDims.join(', ')})`,
    `CREATE MATERIALIZED VIEW ${table}_mv TO ${table} AS ${select}`,
    `INSERT INTO ${table} ${select}`,
  ];
}

/** Percentile states need AggregatingMergeTree: SummingMergeTree on 18.16 keeps one state of many. */
function latencyRollup(table: string, bucket: Bucket): string[] {
  const dims = accountDims.slice(0, 5);
  const select = perPathAccount(
    bucket,
    states.map(([n, , e]) => `${e} AS ${n}`),
    dims,
  ).replace(/\n\s*account_path\[length\(account_path\)\] AS caller_account_id,/, '');
  return [
    `CREATE TABLE ${table} (
      account_id String, bucket ${bucketType(bucket)}, model String, api_key_id String, child_account_id String,
      ${states.map(([n, t]) => `${n} ${t}`).join(', ')}
    ) ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (${dims.join(', ')})`,
    `CREATE MATERIALIZED VIEW ${table}_mv TO ${table} AS ${select}`,
    `INSERT INTO ${table} ${select}`,
  ];
}

/** For the operator: traffic per upstream key and organization, charged (the root's cost) against list cost. */
function upstreamRollup(): string[] {
  const measures = sums.filter(([n]) => n !== 'cost_nano');
  const select = `SELECT toStartOfHour(time) AS bucket, upstream_key_id, upstream_org, model,
      ${measures.map(([n, , e]) => `${e} AS ${n}`).join(', ')}, sum(costs_nano[1]) AS charged_nano
    FROM line_items GROUP BY ${upstreamDims.join(', ')}`;
  return [
    `CREATE TABLE upstream_hourly (
      bucket DateTime, upstream_key_id String, upstream_org String, model String,
      ${measures.map(([n, t]) => `${n} ${t}`).join(', ')}, charged_nano Int64
    ) ENGINE = SummingMergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (${upstreamDims.join(', ')})`,
    `CREATE MATERIALIZED VIEW upstream_hourly_mv TO upstream_hourly AS ${select}`,
    `INSERT INTO upstream_hourly ${select}`,
  ];
}

export const migrations: Migration[] = [
  {
    id: 1,
    name: 'line_items',
    statements: [
      `CREATE TABLE IF NOT EXISTS line_items (
        event_id String,
        request_id String,
        time DateTime,
        root_account_id String,
        account_id String,
        account_path Array(String),
        costs_nano Array(Int64),
        cost_nano Int64,
        list_cost_nano Int64,
        price_version String,
        api_key_id String,
        endpoint String,
        model String,
        status String,
        http_status UInt16,
        error_code String,
        stream UInt8,
        prompt_tokens UInt32,
        cached_tokens UInt32,
        completion_tokens UInt32,
        reasoning_tokens UInt32,
        audio_prompt_tokens UInt32,
        audio_completion_tokens UInt32,
        image_prompt_tokens UInt32,
        image_completion_tokens UInt32,
        images UInt32,
        image_size String,
        image_quality String,
        audio_ms UInt32,
        speech_characters UInt32,
        usage_source String,
        attempts UInt8,
        attempts_json String,
        upstream_key_id String,
        upstream_org String,
        latency_ms UInt32,
        ttft_ms Int32
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(time)
      ORDER BY (root_account_id, time, event_id)`,
    ],
  },
  {
    id: 2,
    name: 'hourly and daily rollups per account of the path, key and model',
    statements: [
      rollupTable('usage_hourly', 'DateTime'),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hourly_mv TO usage_hourly AS ${rollupSelect('toStartOfHour')}`,
      rollupTable('usage_daily', 'Date'),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS usage_daily_mv TO usage_daily AS ${rollupSelect('toDate')}`,
    ],
  },
  {
    id: 3,
    // The rollups are rebuilt from line_items (their source of truth) with the sub-account
    // each request came through, attempts, percentile states and an upstream rollup. The
    // ledger runs migrations before it consumes, so no insert races the backfill.
    name: 'rollups v2: child account, attempts, latency percentiles, upstream keys',
    statements: [
      // Dropping everything first makes the migration safe to repeat after a cut.
      ...['usage_hourly', 'usage_daily', 'latency_hourly', 'latency_daily', 'upstream_hourly'].flatMap((t) => [`DROP TABLE IF EXISTS ${t}_mv`, `DROP TABLE IF EXISTS ${t}`]),
      ...accountRollup('usage_hourly', 'toStartOfHour'),
      ...accountRollup('usage_daily', 'toDate'),
      ...latencyRollup('latency_hourly', 'toStartOfHour'),
      ...latencyRollup('latency_daily', 'toDate'),
      ...upstreamRollup(),
    ],
  },
  {
    id: 4,
    // Top-ups beside the line items, so reconcile checks credits against a second fold of the
    // event log, and analysts can see every top-up. The ledger backfills it from the kept log.
    name: 'credits',
    statements: [
      `CREATE TABLE IF NOT EXISTS credits (
        event_id String,
        time DateTime,
        root_account_id String,
        account_id String,
        account_path Array(String),
        amount_nano Int64,
        note String,
        idempotency_key String,
        granted_by String
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMM(time)
      ORDER BY (root_account_id, account_id, event_id)`,
    ],
  },
];
