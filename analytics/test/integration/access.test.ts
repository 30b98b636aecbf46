import assert from 'node:assert/strict';
import { pino } from 'pino';
import { silentWav } from '@yugong/metering';
import { READONLY_USER } from '@yugong/infra';
import { ADMIN_TOKEN, startStack, type Stack } from '@yugong/proxy/testing';
import { loadConfig } from '../../src/config.js';
import { startAnalyticsService, type AnalyticsService } from '../../src/service.js';

/** The test's requests all come from 127.0.0.1, which both services trust as their balancer. */
const TRUSTED = '127.0.0.1';
const CLIENT_IP = '203.0.113.9';

interface Route {
  service: 'proxy' | 'self-service' | 'analytics';
  method: string;
  path: (accountId: string) => string;
  body?: () => { contentType: string; data: string | FormData };
}

const json = (v: unknown) => () => ({ contentType: 'application/json', data: JSON.stringify(v) });
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 };

function transcription() {
  const f = new FormData();
  f.set('model', 'whisper-1');
  f.set('file', new File([silentWav(500)], 'a.wav', { type: 'audio/wav' }));
  return { contentType: '', data: f };
}

const ROUTES: Route[] = [
  { service: 'proxy', method: 'POST', path: () => '/v1/chat/completions', body: json(chat) },
  { service: 'proxy', method: 'POST', path: () => '/chat/completions', body: json(chat) },
  { service: 'proxy', method: 'POST', path: () => '/v1/completions', body: json({ model: 'gpt-3.5-turbo-instruct', prompt: 'x' }) },
  { service: 'proxy', method: 'POST', path: () => '/v1/embeddings', body: json({ model: 'text-embedding-3-small', input: 'x' }) },
  { service: 'proxy', method: 'POST', path: () => '/v1/images/generations', body: json({ model: 'dall-e-2', prompt: 'x' }) },
  { service: 'proxy', method: 'POST', path: () => '/v1/audio/speech', body: json({ model: 'tts-1', voice: 'alloy', input: 'x' }) },
  { service: 'proxy', method: 'POST', path: () => '/v1/audio/transcriptions', body: transcription },
  { service: 'proxy', method: 'POST', path: () => '/v1/moderations', body: json({ input: 'x' }) },
  { service: 'proxy', method: 'POST', path: () => '/v1/responses', body: json({ model: 'gpt-4o-mini', input: 'x' }) },
  { service: 'proxy', method: 'GET', path: () => '/v1/models' },
  { service: 'proxy', method: 'GET', path: () => '/v1/models/gpt-4o-mini' },
  { service: 'proxy', method: 'GET', path: () => '/v1/dashboard/billing/subscription' },
  { service: 'proxy', method: 'GET', path: () => '/v1/dashboard/billing/usage?start_date=2026-11-01&end_date=2026-11-02' },
  { service: 'proxy', method: 'GET', path: () => '/dashboard/billing/credit_grants' },
  { service: 'self-service', method: 'GET', path: () => '/account/v1/me' },
  { service: 'self-service', method: 'GET', path: () => '/account/v1/accounts' },
  { service: 'self-service', method: 'GET', path: (a) => `/account/v1/accounts/${a}` },
  { service: 'self-service', method: 'GET', path: (a) => `/account/v1/accounts/${a}/keys` },
  { service: 'self-service', method: 'POST', path: (a) => `/account/v1/accounts/${a}/keys`, body: json({ name: 'x' }) },
  { service: 'self-service', method: 'POST', path: () => '/account/v1/accounts', body: json({ id: 'never-made' }) },
  { service: 'self-service', method: 'DELETE', path: (a) => `/account/v1/accounts/${a}/keys/key_none` },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/usage?from=2026-11-01&to=2026-11-30' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/usage?from=2026-11-01&to=2026-11-30&group_by=model&format=csv' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/line_items?from=2026-11-01&to=2026-11-30' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/line_items?from=2026-11-01&to=2026-11-30&format=csv' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/line_items/usage:req_none' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/rate_limits' },
  { service: 'analytics', method: 'GET', path: () => '/analytics/v1/upstreams?from=2026-11-01&to=2026-11-30' },
];

describe('one authorization for every route of the proxy, the self-service API and analytics', function () {
  this.timeout(180_000);
  let s: Stack;
  let service: AnalyticsService;
  let analytics: string;

  before(async () => {
    s = await startStack({ env: { YUGONG_TRUSTED_PROXIES: TRUSTED } });
    const config = loadConfig({
      ...s.infraEnv,
      YUGONG_CLICKHOUSE_USER: READONLY_USER,
      YUGONG_ANALYTICS_PORT: '0',
      YUGONG_ADMIN_TOKEN: ADMIN_TOKEN,
      YUGONG_PROXY_URL: s.url,
      YUGONG_LOG_LEVEL: 'silent',
      YUGONG_TRUSTED_PROXIES: TRUSTED,
    });
    service = await startAnalyticsService(config, pino({ level: 'silent' }));
    analytics = service.url;
  });
  after(async () => {
    await service?.close();
    await s?.close();
  });

  async function call(route: Route, key: string, accountId: string, headers: Record<string, string> = {}) {
    const base = route.service === 'analytics' ? analytics : s.url;
    const body = route.body?.();
    const res = await fetch(`${base}${route.path(accountId)}`, {
      method: route.method,
      headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': CLIENT_IP, ...(body?.contentType ? { 'content-type': body.contentType } : {}), ...headers },
      body: body?.data,
    });
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      code = undefined;
    }
    return { status: res.status, code, acao: res.headers.get('access-control-allow-origin') };
  }

  const later = () => new Date(Date.now() + 1500).toISOString();
  const restrictions: { name: string; status: number; code: string; headers?: Record<string, string>; make(): Promise<{ key: string; accountId: string }> }[] = [
    {
      name: 'a revoked key',
      status: 401,
      code: 'invalid_api_key',
      async make() {
        const k = await s.fundedKey();
        assert.equal((await s.admin('DELETE', `/accounts/${k.accountId}/keys/${k.keyId}`)).status, 200);
        return k;
      },
    },
    {
      name: 'an expired key',
      status: 401,
      code: 'invalid_api_key',
      async make() {
        const k = await s.fundedKey({ key: { expires_at: later() } });
        await new Promise((r) => setTimeout(r, 1600));
        return k;
      },
    },
    {
      name: 'a disabled account',
      status: 403,
      code: 'account_disabled',
      async make() {
        const k = await s.fundedKey();
        assert.equal((await s.admin('POST', `/accounts/${k.accountId}/disable`, {})).status, 200);
        return k;
      },
    },
    {
      name: 'an expired account',
      status: 403,
      code: 'account_disabled',
      async make() {
        const k = await s.fundedKey({ account: { expires_at: later() } });
        await new Promise((r) => setTimeout(r, 1600));
        return k;
      },
    },
    { name: "the key's IP allowlist", status: 403, code: 'ip_not_allowed', make: () => s.fundedKey({ key: { ip_allowlist: ['198.51.100.0/24', '2001:db8::/32'] } }) },
    { name: "the account's IP allowlist", status: 403, code: 'ip_not_allowed', make: () => s.fundedKey({ account: { ip_allowlist: ['198.51.100.7'] } }) },
    { name: "the key's origins", status: 403, code: 'origin_not_allowed', headers: { origin: 'https://evil.example' }, make: () => s.fundedKey({ key: { origins: ['https://app.example'] } }) },
  ];

  for (const r of restrictions) {
    it(`refuses ${r.name} on every route of all three services`, async () => {
      const { key, accountId } = await r.make();
      const wrong: string[] = [];
      for (const route of ROUTES) {
        const got = await call(route, key, accountId, r.headers);
        if (got.status !== r.status || got.code !== r.code) wrong.push(`${route.method} ${route.path(accountId)}: ${got.status} ${got.code}`);
        if (r.headers?.origin && got.acao !== null) wrong.push(`${route.method} ${route.path(accountId)}: let ${got.acao} read the refusal`);
      }
      assert.deepEqual(wrong, []);
      const h = await s.account(accountId);
      assert.equal(h.requests, '0', 'nothing was billed');
    });
  }

  it('lets the same kinds of keys through where their restrictions allow it', async () => {
    const { key, accountId } = await s.fundedKey({ key: { ip_allowlist: ['203.0.113.0/24'], origins: ['https://app.example'] }, account: { ip_allowlist: [CLIENT_IP] } });
    for (const route of ROUTES.filter((x) => x.method === 'GET' && x.service !== 'analytics')) {
      const got = await call(route, key, accountId, { origin: 'https://app.example' });
      assert.equal(got.status, 200, `${route.path(accountId)}: ${got.status} ${got.code}`);
      assert.equal(got.acao, 'https://app.example');
    }
    const usage = await call(ROUTES.find((x) => x.service === 'analytics') as Route, key, accountId);
    assert.equal(usage.status, 200, String(usage.code));
  });
});

describe('client addresses through trusted proxies and the shared failure limiter', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ nodes: 2, env: { YUGONG_TRUSTED_PROXIES: TRUSTED } });
  });
  after(() => s.close());

  const models = (node: number, key: string, forwardedFor?: string) =>
    fetch(`${s.nodes[node]?.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) } });

  it('names a client by X-Forwarded-For through the balancer, never by what the client wrote itself', async () => {
    const { key } = await s.fundedKey({ key: { ip_allowlist: ['198.51.100.0/24'] } });
    assert.equal((await models(0, key, '198.51.100.4')).status, 200);
    // A forged entry left of the balancer's is not read.
    assert.equal((await models(0, key, '198.51.100.4, 203.0.113.1')).status, 403);
    const direct = await s.addNode({ YUGONG_TRUSTED_PROXIES: '' });
    const r = await fetch(`${direct.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': '198.51.100.4' } });
    assert.equal(r.status, 403, 'a node that trusts no proxy ignores the header');
  });

  it('limits failures per address across nodes, per /64 for IPv6, and never refuses a valid key', async () => {
    const { key } = await s.fundedKey();
    // Addresses of this run only: the counters live a minute in the shared Redis.
    const n = Math.floor(Math.random() * 250);
    const [v4, other, v6] = [`203.0.113.${n}`, `203.0.113.${n + 1}`, `2001:db8:${n.toString(16)}:7`];
    const junk = async (node: number, ip: string) => (await models(node, 'sk-yg-not-a-key-000000000000000000000', ip)).status;
    // 30 failures spread over both nodes use up one address's minute.
    for (let i = 0; i < 30; i++) assert.equal(await junk(i % 2, v4), 401);
    assert.equal(await junk(0, v4), 429);
    assert.equal(await junk(1, v4), 429, 'the other node knows too');
    assert.equal((await models(1, key, v4)).status, 200, 'a valid key from the same address still works');
    assert.equal(await junk(0, other), 401, 'other addresses are not locked out');
    for (let i = 0; i < 30; i++) await junk(i % 2, `${v6}::${(i + 1).toString(16)}`);
    assert.equal(await junk(0, `${v6}:ffff::1`), 429, 'an IPv6 /64 is one address');
    assert.equal(await junk(0, `${v6.slice(0, -1)}8::1`), 401);
  });
});
