import { adminSession, analyticsJson, proxyJson, type Account } from './api.js';
import { accountsView } from './accounts-view.js';
import { h, mount, type Child } from './dom.js';
import { dateTime, money, num, usdToNano, utcDay } from './format.js';
import { t, type MessageKey } from './i18n.js';
import { actionForm, errorText, field, notify, operatorSignIn, section, startPage } from './shell.js';
import './style.css';

/** The admin API with the operator's token. */
const admin = <T>(method: string, path: string, body?: unknown) => proxyJson<T>(method, `/admin/v1${path}`, body, adminSession.key() ?? '');
const analytics = <T>(path: string, params: Record<string, string | number | null> = {}) => analyticsJson<T>(path, params, adminSession.key() ?? '');

interface Totals {
  requests: number;
  errors: number;
  requests_per_second: number;
  error_share: number;
  revenue_usd: string;
  upstream_cost_usd: string;
}
interface Overview {
  last_5_minutes: Totals;
  last_hour: Totals;
  hourly: (Totals & { hour: string })[];
  top_accounts: (Totals & { account_id: string })[];
  top_models: (Totals & { model: string })[];
  upstreams_last_hour: UpstreamUse[];
  consumer_lag: { messages_by_group?: Record<string, number>; unavailable?: string };
  spool: { bytes?: number; unavailable?: string };
}
interface Upstream {
  id: string;
  pool_id: string;
  base_url: string;
  organization: string | null;
  models: string[] | null;
  weight: number;
  key_prefix: string;
  status: string;
  reason: string;
  cooldown_until: string | null;
  in_flight: number;
  limit_requests: number | null;
  remaining_requests: number | null;
  limit_tokens: number | null;
  remaining_tokens: number | null;
  requests_reset_at: string | null;
  tokens_reset_at: string | null;
}
interface UpstreamUse {
  upstream_key_id: string;
  attempts: number;
  requests_by_outcome: Record<string, number>;
}
interface PriceVersion {
  version: string;
  source: string;
  created_at: string;
  models: number;
  current: boolean;
}
interface PriceTable {
  version: string;
  models: { id: string; rates: Record<string, unknown> }[];
}

const percent = (share: number) => new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 }).format(share);
const usd = (text: string) => money(usdToNano(text));
const list = (text: string | undefined) =>
  text
    ? text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
const table = (id: string, head: MessageKey[], rows: Child[][]) =>
  h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { id },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          head.map((k) => h('th', null, t(k))),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            null,
            r.map((c) => h('td', null, c)),
          ),
        ),
      ),
    ),
  );

/** A button that asks first, calls, and re-renders what it changed. */
function action(label: MessageKey, cls: string, confirmText: string | null, act: () => Promise<void>, data: Record<string, string> = {}): HTMLButtonElement {
  return h(
    'button',
    {
      type: 'button',
      class: cls,
      ...data,
      onclick: async () => {
        if (confirmText && !confirm(confirmText)) return;
        try {
          await act();
        } catch (err) {
          notify(errorText(err), 'error');
        }
      },
    },
    t(label),
  );
}

function overview(box: HTMLElement): Promise<void> {
  return section(box, async () => {
    const o = await analytics<Overview>('/overview');
    const lag = o.consumer_lag.messages_by_group;
    const stat = (id: string, label: MessageKey, value: string, detail: Child = null, raw?: number) =>
      h('div', { class: 'stat', id, 'data-value': raw }, h('div', { class: 'label' }, t(label)), h('div', { class: 'value' }, value), detail ? h('div', { class: 'muted small' }, detail) : null);
    // Group names carry the deployment's prefix and suffix: the role is what an operator reads.
    const groups = Object.entries(lag ?? {})
      .map(([g, n]) => `${g.replace(/^yugong-ledger-/, '').replace(/-[0-9a-f]{8}-[0-9a-f-]{27}$/, '')} ${num(n)}`)
      .join(' · ');
    return [
      h('h2', null, t('op.overview')),
      h(
        'div',
        { class: 'stats' },
        stat('ov-rps', 'op.rps', num(o.last_5_minutes.requests_per_second)),
        stat('ov-errors', 'op.errorShare', percent(o.last_5_minutes.error_share)),
        stat('ov-hour', 'op.lastHour', num(o.last_hour.requests), null, o.last_hour.requests),
        stat('ov-revenue', 'op.revenueHour', usd(o.last_hour.revenue_usd)),
        lag ? stat('ov-lag', 'op.lag', num(Object.values(lag).reduce((a, b) => a + b, 0)), groups) : stat('ov-lag', 'op.lag', '—', t('op.unavailable', { reason: o.consumer_lag.unavailable ?? '' })),
        stat('ov-spool', 'op.spool', o.spool.bytes !== undefined ? `${num(o.spool.bytes)} B` : t('op.unavailable', { reason: o.spool.unavailable ?? '' })),
      ),
      h('h3', null, t('op.hourly')),
      o.hourly.length
        ? table(
            'ov-hourly',
            ['op.hour', 'op.requests', 'op.errorShare', 'op.revenue'],
            o.hourly.map((x) => [dateTime(`${x.hour.replace(' ', 'T')}Z`), num(x.requests), percent(x.error_share), usd(x.revenue_usd)]),
          )
        : h('p', { class: 'empty' }, t('op.none')),
      h(
        'div',
        { class: 'two' },
        h(
          'div',
          null,
          h('h3', null, t('op.topAccounts')),
          table(
            'ov-accounts',
            ['op.account', 'op.requests', 'op.revenue'],
            o.top_accounts.map((a) => [a.account_id, num(a.requests), usd(a.revenue_usd)]),
          ),
        ),
        h(
          'div',
          null,
          h('h3', null, t('op.topModels')),
          table(
            'ov-models',
            ['op.model', 'op.requests', 'op.errorShare'],
            o.top_models.map((m) => [m.model, num(m.requests), percent(m.error_share)]),
          ),
        ),
      ),
    ];
  });
}

function pool(box: HTMLElement): Promise<void> {
  const render = () =>
    section(box, async () => {
      const [keys, o] = await Promise.all([admin<{ data: Upstream[] }>('GET', '/upstreams'), analytics<Overview>('/overview')]);
      const lastHour = new Map(o.upstreams_last_hour.map((u) => [u.upstream_key_id, u]));
      const remaining = (rem: number | null, lim: number | null, reset: string | null) =>
        rem === null ? '—' : `${num(rem)} / ${num(lim ?? 0)}${reset ? ` · ${t('op.resets', { at: dateTime(reset) })}` : ''}`;
      const rows = keys.data.map((k) => {
        const u = lastHour.get(k.id);
        return [
          h('code', { 'data-upstream-id': k.id }, k.id),
          h('code', null, `${k.key_prefix}…`),
          k.pool_id,
          (k.models ?? ['*']).join(', '),
          num(k.weight),
          k.organization ?? '—',
          h('span', { class: `badge ${k.status === 'active' ? 'ok' : 'rejected'}`, 'data-field': 'status' }, t(k.status === 'active' ? 'op.active' : 'op.disabled')),
          k.reason || '—',
          k.cooldown_until ? dateTime(k.cooldown_until) : '—',
          remaining(k.remaining_requests, k.limit_requests, k.requests_reset_at),
          remaining(k.remaining_tokens, k.limit_tokens, k.tokens_reset_at),
          num(k.in_flight),
          h(
            'span',
            { 'data-field': 'outcomes' },
            u
              ? [
                  `${num(u.attempts)} · `,
                  Object.entries(u.requests_by_outcome)
                    .map(([s, n]) => `${t(`status.${s}` as MessageKey)} ${num(n)}`)
                    .join(' · '),
                ]
              : '0',
          ),
          h(
            'span',
            { class: 'row-actions' },
            k.status === 'active'
              ? action(
                  'op.disable',
                  'ghost small',
                  null,
                  async () => {
                    await admin('POST', `/upstreams/${k.id}/disable`);
                    await render();
                  },
                  { 'data-action': 'disable' },
                )
              : action(
                  'op.enable',
                  'ghost small',
                  null,
                  async () => {
                    await admin('POST', `/upstreams/${k.id}/enable`);
                    await render();
                  },
                  { 'data-action': 'enable' },
                ),
            action(
              'op.remove',
              'danger small',
              t('op.removeConfirm', { id: k.id }),
              async () => {
                await admin('DELETE', `/upstreams/${k.id}`);
                await render();
              },
              { 'data-action': 'remove' },
            ),
          ),
        ];
      });
      return [
        h('h2', null, t('op.pool')),
        keys.data.length
          ? table(
              'pool',
              [
                'op.key',
                'op.prefix',
                'op.poolId',
                'op.models',
                'op.weight',
                'op.org',
                'op.status',
                'op.reason',
                'op.cooldown',
                'op.remainingRequests',
                'op.remainingTokens',
                'op.inFlight',
                'op.attemptsErrors',
                'op.actions',
              ],
              rows,
            )
          : h('p', { class: 'empty' }, t('op.noKeys')),
        actionForm(
          'add-upstream',
          t('op.addKey'),
          [
            field('op.baseUrl', h('input', { name: 'base_url', required: true, value: 'https://api.openai.com/v1' })),
            field('op.secret', h('input', { name: 'key', type: 'password', required: true, autocomplete: 'off' })),
            field('op.org', h('input', { name: 'organization' })),
            field('op.models', h('input', { name: 'models' })),
            field('op.weight', h('input', { name: 'weight', inputmode: 'numeric', value: '1' })),
            field('op.poolId', h('input', { name: 'pool_id', value: 'default' })),
          ],
          t('op.add'),
          async (v, f) => {
            const added = await admin<{ id: string; created: boolean }>('POST', '/upstreams', {
              base_url: v.base_url,
              key: v.key,
              organization: v.organization || null,
              models: list(v.models),
              weight: /^\d+$/.test(v.weight ?? '') ? Number(v.weight) : v.weight,
              pool_id: v.pool_id || undefined,
            });
            // The secret leaves the page once sent: only its prefix is ever shown again.
            f.reset();
            await render();
            return t(added.created ? 'op.added' : 'op.alreadyThere', { id: added.id });
          },
        ),
      ];
    });
  return render();
}

function accounts(box: HTMLElement): void {
  const results = h('div', { id: 'account-results' });
  const tree = h('div', { id: 'account-tree' });
  const open = (id: string) => accountsView(tree, { api: (m, p, b) => admin(m, p, b), rootId: id, selfId: null });
  const spend = async (a: Account) => {
    const today = utcDay(new Date());
    const month = `${today.slice(0, 8)}01`;
    const [d, m] = await Promise.all([today, month].map((from) => analytics<{ data: { cost_nano: string }[] }>('/usage', { account_id: a.id, from, to: today })));
    return [d?.data[0]?.cost_nano ?? '0', m?.data[0]?.cost_nano ?? '0'];
  };
  const search = async (q: string) =>
    section(results, async () => {
      const found = (await admin<{ data: Account[]; next_cursor: string | null }>('GET', `/accounts?limit=50&q=${encodeURIComponent(q)}`)).data;
      if (!found.length) return h('p', { class: 'empty' }, t('op.noAccounts'));
      const figures = await Promise.all(found.map(spend));
      return table(
        'accounts',
        ['op.account', 'op.name', 'console.balance', 'op.creditLine', 'op.today', 'op.month', 'op.limits', 'op.status', 'op.actions'],
        found.map((a, i) => [
          h('code', null, a.id),
          a.name,
          money(a.balance_nano),
          money(usdToNano(a.credit_limit_usd)),
          money(figures[i]?.[0] ?? '0'),
          money(figures[i]?.[1] ?? '0'),
          `${a.rpm ?? '∞'} RPM · ${a.tpm ?? '∞'} TPM`,
          h('span', { class: `badge ${a.status === 'active' ? 'ok' : 'rejected'}` }, t(a.status === 'active' ? 'op.active' : 'op.disabled')),
          h('button', { type: 'button', class: 'ghost small', 'data-open-account': a.id, onclick: () => open(a.id) }, t('op.open')),
        ]),
      );
    });
  const searchForm = actionForm('account-search', null, [field('op.search', h('input', { name: 'q', type: 'search', placeholder: 'acme' }))], t('op.find'), async (v) => {
    await search(v.q ?? '');
  });
  const create = actionForm(
    'create-root',
    t('op.createRoot'),
    [
      field('op.accountId', h('input', { name: 'id', required: true, pattern: '[a-z0-9][a-z0-9_\\-]*', maxlength: 64 })),
      field('console.name', h('input', { name: 'name', maxlength: 200 })),
      field('console.multiplier', h('input', { name: 'multiplier', inputmode: 'decimal', value: '1' })),
    ],
    t('op.createAccount'),
    async (v) => {
      const a = await admin<Account>('POST', '/accounts', { id: v.id, name: v.name || undefined, multiplier: v.multiplier || undefined });
      await search(a.id);
      open(a.id);
      return t('console.created', { id: a.id });
    },
  );
  mount(box, h('h2', null, t('op.accounts')), searchForm, results, create, tree);
  void search('');
}

function prices(box: HTMLElement): Promise<void> {
  const diffBox = h('div', { id: 'price-diff' });
  const render = () =>
    section(box, async () => {
      const versions = (await admin<{ data: PriceVersion[] }>('GET', '/prices')).data;
      const current = versions.find((v) => v.current);
      const choose = (name: string, selected: string | undefined) =>
        h(
          'select',
          { name },
          versions.map((v) => h('option', { value: v.version, selected: v.version === selected }, `${v.version.slice(0, 12)} · ${dateTime(v.created_at)}${v.current ? ` (${t('op.inForce')})` : ''}`)),
        );
      return [
        h('h2', null, t('op.prices')),
        table(
          'price-versions',
          ['op.version', 'op.source', 'op.created', 'op.models', 'op.status'],
          versions.map((v) => [h('code', null, v.version.slice(0, 12)), v.source, dateTime(v.created_at), num(v.models), v.current ? h('span', { class: 'badge ok' }, t('op.inForce')) : '']),
        ),
        actionForm(
          'price-compare',
          t('op.compare'),
          [field('op.from', choose('a', versions[1]?.version ?? current?.version)), field('op.to', choose('b', current?.version))],
          t('op.compare'),
          async (v) => {
            const [a, b] = await Promise.all([v.a, v.b].map((x) => admin<PriceTable>('GET', `/prices/${encodeURIComponent(x ?? '')}`)));
            // The first entry of a model is the one in force (an operator's override stands before the list price).
            const effective = (t?: PriceTable) => {
              const m = new Map<string, string>();
              for (const x of t?.models ?? []) if (!m.has(x.id)) m.set(x.id, JSON.stringify(x.rates));
              return m;
            };
            const [before, after] = [effective(a), effective(b)];
            const changes: Child[][] = [];
            for (const id of [...new Set([...before.keys(), ...after.keys()])].sort()) {
              const [x, y] = [before.get(id), after.get(id)];
              if (x !== y) changes.push([h('code', null, id), t(x === undefined ? 'op.new' : y === undefined ? 'op.removed' : 'op.changed'), x ?? '—', y ?? '—']);
            }
            mount(diffBox, changes.length ? table('price-changes', ['op.model', 'op.change', 'op.before', 'op.after'], changes) : h('p', { class: 'empty', id: 'price-same' }, t('op.noChanges')));
          },
        ),
        diffBox,
        actionForm(
          'price-publish',
          t('op.publish'),
          [
            field('op.base', h('select', { name: 'base' }, h('option', { value: 'current' }, t('op.baseCurrent')), h('option', { value: 'package' }, t('op.basePackage')))),
            field('op.model', h('input', { name: 'model', placeholder: 'gpt-4o-mini' })),
            field('op.input', h('input', { name: 'input', inputmode: 'decimal', placeholder: '0.15' })),
            field('op.output', h('input', { name: 'output', inputmode: 'decimal', placeholder: '0.6' })),
          ],
          t('op.publishButton'),
          async (v) => {
            const rates: Record<string, string> = {};
            if (v.input) rates.input = v.input;
            if (v.output) rates.output = v.output;
            const overrides = v.model ? [{ id: v.model, rates_usd_per_1m: rates }] : [];
            const published = await admin<{ version: string }>('POST', '/prices', { base: v.base, overrides });
            await render();
            return t('op.published', { version: published.version.slice(0, 12) });
          },
        ),
      ];
    });
  return render();
}

startPage(
  'operator',
  async (_who, main) => {
    const boxes = {
      overview: h('section', { class: 'card', id: 'overview' }),
      pool: h('section', { class: 'card', id: 'upstreams' }),
      accounts: h('section', { class: 'card', id: 'accounts-section' }),
      prices: h('section', { class: 'card', id: 'prices' }),
    };
    const nav = h(
      'nav',
      { class: 'sections' },
      (
        [
          ['overview', 'op.overview'],
          ['upstreams', 'op.pool'],
          ['accounts-section', 'op.accounts'],
          ['prices', 'op.prices'],
        ] as const
      ).map(([id, k]) => h('a', { href: `#${id}` }, t(k))),
    );
    mount(main, h('h1', null, t('op.title')), nav, ...Object.values(boxes));
    accounts(boxes.accounts);
    await Promise.all([overview(boxes.overview), pool(boxes.pool), prices(boxes.prices)]);
  },
  operatorSignIn,
);
