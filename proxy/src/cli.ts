#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * `yugong <group> <action> …`: the operator and self-service APIs for scripts. Prints the
 * API's JSON answer; on an error prints its message and exits 1.
 *
 *   YUGONG_URL          the proxy (default http://127.0.0.1:18080)
 *   YUGONG_ADMIN_TOKEN  the operator token, for /admin/v1
 *   YUGONG_API_KEY      an account's own key: account and key commands then use /account/v1
 */

type Kind = 'string' | 'number' | 'list' | 'json-file';
interface Command {
  summary: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Positional names, in order; `{name}` in the path takes their values. */
  args: string[];
  path: string;
  /** --flag → body field (or query parameter for GET). */
  flags?: Record<string, { field: string; kind: Kind }>;
  /** Positional → body field. */
  bodyArgs?: Record<string, string>;
  defaults?: () => Record<string, unknown>;
  operatorOnly?: boolean;
}

const limits = {
  rpm: { field: 'rpm', kind: 'number' },
  tpm: { field: 'tpm', kind: 'number' },
  models: { field: 'models', kind: 'list' },
  'ip-allowlist': { field: 'ip_allowlist', kind: 'list' },
  'expires-at': { field: 'expires_at', kind: 'string' },
} as const;
const accountFields = { name: { field: 'name', kind: 'string' }, 'credit-limit': { field: 'credit_limit_usd', kind: 'string' }, ...limits } as const;

const commands: Record<string, Command> = {
  'accounts create': {
    summary: 'create an account (a sub-account with --parent, or of your own account with YUGONG_API_KEY)',
    method: 'POST',
    args: ['id'],
    path: '/accounts',
    bodyArgs: { id: 'id' },
    flags: { ...accountFields, parent: { field: 'parent_id', kind: 'string' }, multiplier: { field: 'multiplier', kind: 'string' } },
  },
  'accounts get': { summary: 'show an account with its balance', method: 'GET', args: ['id'], path: '/accounts/{id}' },
  'accounts list': {
    summary: 'list accounts (--under: a subtree)',
    method: 'GET',
    args: [],
    path: '/accounts',
    flags: { under: { field: 'under', kind: 'string' }, limit: { field: 'limit', kind: 'number' }, cursor: { field: 'cursor', kind: 'string' } },
  },
  'accounts update': { summary: 'change name, credit limit, limits, models, IPs, expiry', method: 'PATCH', args: ['id'], path: '/accounts/{id}', flags: accountFields },
  'accounts multiplier': { summary: 'set the price multiplier', method: 'POST', args: ['id', 'multiplier'], path: '/accounts/{id}/multiplier', bodyArgs: { multiplier: 'multiplier' } },
  'accounts disable': { summary: 'disable an account and its subtree', method: 'POST', args: ['id'], path: '/accounts/{id}/disable', flags: { reason: { field: 'reason', kind: 'string' } } },
  'accounts credit': {
    summary: 'top up (USD); retrying with the same --idempotency-key never grants twice',
    method: 'POST',
    args: ['id', 'amount_usd'],
    path: '/accounts/{id}/credits',
    bodyArgs: { amount_usd: 'amount_usd' },
    flags: { note: { field: 'note', kind: 'string' }, 'idempotency-key': { field: 'idempotency_key', kind: 'string' } },
    defaults: () => ({ idempotency_key: randomUUID() }),
  },
  'keys create': {
    summary: 'create an API key (printed once)',
    method: 'POST',
    args: ['account'],
    path: '/accounts/{account}/keys',
    flags: { name: { field: 'name', kind: 'string' }, origins: { field: 'origins', kind: 'list' }, ...limits },
  },
  'keys list': { summary: "list an account's keys", method: 'GET', args: ['account'], path: '/accounts/{account}/keys' },
  'keys revoke': { summary: 'revoke a key', method: 'DELETE', args: ['account', 'key_id'], path: '/accounts/{account}/keys/{key_id}' },
  'upstreams add': {
    summary: 'add an upstream OpenAI key',
    method: 'POST',
    args: [],
    path: '/upstreams',
    operatorOnly: true,
    flags: {
      'base-url': { field: 'base_url', kind: 'string' },
      key: { field: 'key', kind: 'string' },
      organization: { field: 'organization', kind: 'string' },
      models: { field: 'models', kind: 'list' },
      weight: { field: 'weight', kind: 'number' },
      pool: { field: 'pool_id', kind: 'string' },
    },
  },
  'upstreams list': { summary: 'upstream keys and their health', method: 'GET', args: [], path: '/upstreams', operatorOnly: true },
  'upstreams enable': { summary: 'enable an upstream key', method: 'POST', args: ['id'], path: '/upstreams/{id}/enable', operatorOnly: true },
  'upstreams disable': { summary: 'disable an upstream key', method: 'POST', args: ['id'], path: '/upstreams/{id}/disable', operatorOnly: true },
  'prices list': { summary: 'published price table versions', method: 'GET', args: [], path: '/prices', operatorOnly: true },
  'prices show': { summary: 'one price table', method: 'GET', args: ['version'], path: '/prices/{version}', operatorOnly: true },
  'prices publish': {
    summary: 'publish prices: --base current|package, --overrides a JSON file of [{id, match?, rates_usd_per_1m}]',
    method: 'POST',
    args: [],
    path: '/prices',
    operatorOnly: true,
    flags: { base: { field: 'base', kind: 'string' }, overrides: { field: 'overrides', kind: 'json-file' } },
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(
    ([name, c]) => `  yugong ${name} ${c.args.map((a) => `<${a}>`).join(' ')}${c.flags ? ` [--${Object.keys(c.flags).join(' --')}]` : ''}\n      ${c.summary}`,
  );
  return `Usage:\n${lines.join('\n')}\n\nEnvironment: YUGONG_URL, YUGONG_ADMIN_TOKEN (operator) or YUGONG_API_KEY (an account's own key).\n`;
}

function convert(kind: Kind, text: string, flag: string): unknown {
  if (kind === 'number') {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new Error(`--${flag} must be a number`);
    return n;
  }
  if (kind === 'list')
    return text === ''
      ? null
      : text
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  if (kind === 'json-file') return JSON.parse(readFileSync(text, 'utf8')) as unknown;
  return text;
}

export async function run(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  // Asked for, the list of commands is an answer; given nothing or something unknown, a usage error.
  if (argv.length === 1 && (argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h')) {
    out(usage());
    return 0;
  }
  const name = argv.slice(0, 2).join(' ');
  const command = commands[name];
  if (!command) {
    err(argv.length ? `Unknown command "${name}".\n\n${usage()}` : usage());
    return 2;
  }
  const options = Object.fromEntries(Object.keys(command.flags ?? {}).map((f) => [f, { type: 'string' as const }]));
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv.slice(2), options, allowPositionals: true, strict: true });
  } catch (e) {
    err(`${(e as Error).message}\n\n${usage()}`);
    return 2;
  }
  if (parsed.positionals.length !== command.args.length) {
    err(`"yugong ${name}" takes ${command.args.map((a) => `<${a}>`).join(' ') || 'no arguments'}.\n`);
    return 2;
  }
  const positional = Object.fromEntries(command.args.map((a, i) => [a, parsed.positionals[i] as string]));
  const values: Record<string, unknown> = { ...(command.defaults?.() ?? {}) };
  for (const [arg, field] of Object.entries(command.bodyArgs ?? {})) values[field] = positional[arg];
  try {
    for (const [flag, text] of Object.entries(parsed.values)) {
      const spec = command.flags?.[flag];
      if (spec && typeof text === 'string') values[spec.field] = convert(spec.kind, text, flag);
    }
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 2;
  }

  const apiKey = env.YUGONG_API_KEY;
  const adminToken = env.YUGONG_ADMIN_TOKEN;
  const selfService = Boolean(apiKey) && !command.operatorOnly;
  const token = selfService ? apiKey : adminToken;
  if (!token) {
    err(command.operatorOnly ? 'Set YUGONG_ADMIN_TOKEN to the operator token.\n' : 'Set YUGONG_ADMIN_TOKEN (operator) or YUGONG_API_KEY (your account key).\n');
    return 2;
  }
  const base = (env.YUGONG_URL ?? 'http://127.0.0.1:18080').replace(/\/+$/, '');
  const path = command.path.replace(/\{(\w+)\}/g, (_m, a: string) => encodeURIComponent(positional[a] ?? ''));
  const url = new URL(`${base}${selfService ? '/account/v1' : '/admin/v1'}${path}`);
  const init: RequestInit = { method: command.method, headers: { authorization: `Bearer ${token}` } };
  if (command.method === 'GET') {
    for (const [k, v] of Object.entries(values)) url.searchParams.set(k, String(v));
  } else {
    init.body = JSON.stringify(values);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    err(`Cannot reach ${base}: ${(e as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // not JSON: print as is
    }
    err(`Error ${res.status}: ${message}\n`);
    return 1;
  }
  out(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
  return 0;
}

// Run when executed (also through npm's bin link), not when imported by the tests.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run(
    process.argv.slice(2),
    process.env,
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  );
}
