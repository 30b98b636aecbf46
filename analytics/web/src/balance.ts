import { analyticsJson, downloadCsv, type LineItem, type Me, type RateLimits, type Use, type UsageRow } from './api.js';
import { stackedBars, type DaySeries } from './chart.js';
import { formValues, h, mount } from './dom.js';
import { availableNano, dateTime, money, num, usdToNano, utc, utcDay } from './format.js';
import { t, type MessageKey } from './i18n.js';
import { errorText, field, notify, section, startPage } from './shell.js';
import './style.css';

const DAY_MS = 86_400_000;
const STATUSES = ['ok', 'upstream_error', 'client_abort', 'rejected'] as const;

function card(id: string, label: string, value: Node | string, sub?: Node | string | null): HTMLElement {
  return h('div', { class: 'stat', id }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub muted' }, sub) : null);
}

/** Balance and what may still be spent, straight from the account API (the ledger's figures). */
function balanceCards(me: Me): HTMLElement[] {
  const line = usdToNano(me.credit_limit_usd);
  const available = availableNano(me);
  return [
    card('balance', t('card.balance'), h('span', { 'data-nano': me.balance_nano }, money(me.balance_nano))),
    card('available', t('card.available'), h('span', { 'data-nano': available.toString() }, money(available)), line > 0n ? t('card.creditLimit', { amount: money(line) }) : null),
  ];
}

/** Today and this month in the reader's time zone, from hourly buckets. */
async function spendCards(): Promise<HTMLElement[]> {
  const now = new Date();
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const monthStart = new Date(now.getFullYear(), now.getMonth(), 1);
  const rows = (await analyticsJson<{ data: UsageRow[] }>('/usage', { interval: 'hour', from: utcDay(monthStart), to: utcDay(now) })).data;
  let today = 0n;
  let month = 0n;
  let todayN = 0;
  let monthN = 0;
  for (const r of rows) {
    const at = utc(r.bucket ?? '');
    if (at >= monthStart) {
      month += BigInt(r.cost_nano);
      monthN += r.requests;
    }
    if (at >= midnight) {
      today += BigInt(r.cost_nano);
      todayN += r.requests;
    }
  }
  return [
    card('today', t('card.today'), h('span', { 'data-nano': today.toString() }, money(today)), t('card.requests', { n: num(todayN) })),
    card('month', t('card.month'), h('span', { 'data-nano': month.toString() }, money(month)), t('card.requests', { n: num(monthN) })),
  ];
}

function meter(id: string, label: string, u: Use): HTMLElement {
  const pct = u.limit ? Math.min(100, Math.round((u.used / u.limit) * 100)) : 0;
  return h(
    'div',
    { class: 'meter', id },
    h(
      'div',
      { class: 'meter-label' },
      h('span', null, label),
      h('span', { class: 'muted' }, u.limit === null ? `${num(u.used)} · ${t('limits.none')}` : t('limits.of', { used: num(u.used), limit: num(u.limit) })),
    ),
    h(
      'div',
      { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': u.limit ?? 0, 'aria-valuenow': u.used, 'aria-label': label },
      h('div', { class: pct >= 90 ? 'fill hot' : 'fill', style: { width: `${pct}%` } }),
    ),
  );
}

/** The tighter of the key's and its own account's limits is what a request meets first. */
function tightest(a: Use, b: Use | undefined): Use {
  if (!b || b.limit === null) return a;
  if (a.limit === null) return b;
  return (a.remaining ?? 0) <= (b.remaining ?? 0) ? a : b;
}

async function limits(): Promise<Node[]> {
  const r = await analyticsJson<RateLimits>('/rate_limits');
  const own = r.accounts.at(-1);
  return [
    meter('rpm', t('limits.rpm'), tightest(r.key.rpm, own?.rpm)),
    meter('tpm', t('limits.tpm'), tightest(r.key.tpm, own?.tpm)),
    h('p', { class: 'muted small' }, t('limits.resets', { s: Math.ceil(r.window_resets_in_ms / 1000) })),
  ];
}

function models(me: Me): Node {
  const list = me.key.models ?? me.models;
  if (!list || list.length === 0) return h('p', { id: 'models' }, t('models.all'));
  return h(
    'ul',
    { class: 'chips', id: 'models' },
    list.map((m) => h('li', null, m)),
  );
}

async function usageByModel(): Promise<Node[]> {
  const now = new Date();
  const range = { from: utcDay(new Date(now.getTime() - 29 * DAY_MS)), to: utcDay(now) };
  const [daily, totals] = await Promise.all([
    analyticsJson<{ data: UsageRow[] }>('/usage', { ...range, interval: 'day', group_by: 'model' }),
    analyticsJson<{ data: UsageRow[] }>('/usage', { ...range, interval: 'total', group_by: 'model' }),
  ]);
  const series: DaySeries = { days: [], models: [], cost: new Map() };
  for (let d = new Date(`${range.from}T00:00:00Z`).getTime(); d <= new Date(`${range.to}T00:00:00Z`).getTime(); d += DAY_MS) series.days.push(utcDay(new Date(d)));
  const byModel = [...totals.data].sort((a, b) => (BigInt(b.cost_nano) > BigInt(a.cost_nano) ? 1 : -1));
  series.models = byModel.map((r) => r.group ?? '');
  for (const r of daily.data) {
    const day = (r.bucket ?? '').slice(0, 10);
    const m = series.cost.get(day) ?? new Map<string, bigint>();
    m.set(r.group ?? '', (m.get(r.group ?? '') ?? 0n) + BigInt(r.cost_nano));
    series.cost.set(day, m);
  }
  const chart = byModel.length === 0 ? h('p', { class: 'empty' }, t('chart.empty')) : stackedBars(series, t('chart.title'));
  const head = (k: MessageKey, cls?: string) => h('th', { class: cls }, t(k));
  const table =
    byModel.length === 0
      ? null
      : h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { id: 'tokens' },
            h('thead', null, h('tr', null, head('tokens.model'), head('tokens.prompt', 'num'), head('tokens.cached', 'num'), head('tokens.completion', 'num'), head('tokens.cost', 'num'))),
            h(
              'tbody',
              null,
              byModel.map((r) =>
                h(
                  'tr',
                  null,
                  h('td', null, r.group),
                  h('td', { class: 'num' }, num(r.tokens.prompt)),
                  h('td', { class: 'num' }, num(r.tokens.cached)),
                  h('td', { class: 'num' }, num(r.tokens.completion)),
                  h('td', { class: 'num' }, money(r.cost_nano)),
                ),
              ),
            ),
          ),
        );
  return [h('h2', null, t('chart.title')), chart, table ? h('h2', null, t('tokens.title')) : null, table].filter((n): n is HTMLElement => n !== null);
}

function statusBadge(status: string): HTMLElement {
  const known = (STATUSES as readonly string[]).includes(status);
  return h('span', { class: `badge ${status}` }, known ? t(`status.${status}` as MessageKey) : status);
}

async function showDetails(eventId: string): Promise<void> {
  const dialog = document.getElementById('details') as HTMLDialogElement;
  const body = h('div', { class: 'details-body' });
  mount(dialog, h('form', { method: 'dialog', class: 'dialog-head' }, h('h2', null, t('items.details')), h('button', { class: 'ghost', value: 'close' }, t('items.close'))), body);
  dialog.showModal();
  await section(body, async () => {
    const item = await analyticsJson<LineItem>(`/line_items/${encodeURIComponent(eventId)}`);
    const { attempt_details: attempts, object: _o, ...fields } = item;
    const show = (v: unknown) => (Array.isArray(v) ? v.join(' → ') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? ''));
    return [
      h(
        'dl',
        { class: 'fields' },
        Object.entries(fields).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, k === 'time' ? dateTime(String(v)) : k === 'cost_nano' ? `${money(String(v))} (${show(v)})` : show(v))]),
      ),
      h('h3', null, t('items.attempts')),
      h(
        'ol',
        { class: 'attempts' },
        (attempts ?? []).map((a) => h('li', null, `HTTP ${a.status} · ${a.outcome} · ${a.latencyMs} ms${a.errorCode ? ` · ${a.errorCode}` : ''}`)),
      ),
    ];
  });
}

function lineItems(el: HTMLElement): void {
  const now = new Date();
  const filter = { from: utcDay(new Date(now.getTime() - 6 * DAY_MS)), to: utcDay(now), model: '', status: '' };
  const rows = h('tbody');
  const more = h('button', { type: 'button', class: 'ghost', id: 'more', hidden: true }, t('items.more'));
  const state = h('div', { id: 'items-state' });
  let cursor: string | null = null;

  const row = (i: LineItem) =>
    h(
      'tr',
      {
        'data-event-id': i.event_id,
        'data-request-id': i.request_id,
        tabindex: 0,
        onclick: () => void showDetails(i.event_id),
        onkeydown: (e: KeyboardEvent) => {
          if (e.key === 'Enter') void showDetails(i.event_id);
        },
      },
      h('td', null, dateTime(i.time)),
      h('td', null, i.model),
      h('td', { class: 'hide-sm' }, i.endpoint),
      h('td', null, statusBadge(i.status)),
      h('td', { class: 'num' }, `${num(i.prompt_tokens)} / ${num(i.completion_tokens)}`),
      h('td', { class: 'num', 'data-nano': i.cost_nano }, money(i.cost_nano)),
      h('td', { class: 'num hide-sm' }, `${num(i.latency_ms)} ms`),
    );

  async function page(first: boolean): Promise<void> {
    more.disabled = true;
    if (first) {
      cursor = null;
      rows.replaceChildren();
      mount(state, h('p', { class: 'muted loading' }, t('loading')));
    }
    try {
      const r = await analyticsJson<{ data: LineItem[]; next_cursor: string | null }>('/line_items', { ...filter, limit: 50, cursor });
      for (const i of r.data) rows.appendChild(row(i));
      cursor = r.next_cursor;
      more.hidden = cursor === null;
      mount(state, rows.children.length === 0 ? h('p', { class: 'empty' }, t('items.empty')) : null);
    } catch (err) {
      mount(state, h('div', { class: 'notice error', role: 'alert' }, errorText(err)));
    }
    more.disabled = false;
  }
  more.addEventListener('click', () => void page(false));

  const form = h(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (e: Event) => {
        e.preventDefault();
        Object.assign(filter, formValues(form));
        void page(true);
      },
    },
    field('items.from', h('input', { type: 'date', name: 'from', value: filter.from, required: true })),
    field('items.to', h('input', { type: 'date', name: 'to', value: filter.to, required: true })),
    field('items.model', h('input', { type: 'text', name: 'model', placeholder: t('items.any'), size: 14 })),
    field(
      'items.status',
      h(
        'select',
        { name: 'status' },
        h('option', { value: '' }, t('items.any')),
        STATUSES.map((s) => h('option', { value: s }, t(`status.${s}` as MessageKey))),
      ),
    ),
    h('button', { type: 'submit', class: 'primary' }, t('items.apply')),
    h(
      'button',
      {
        type: 'button',
        class: 'ghost',
        id: 'csv',
        onclick: async () => {
          try {
            await downloadCsv('/line_items', filter, `yugong-line-items-${filter.from}-${filter.to}.csv`);
          } catch (err) {
            notify(errorText(err), 'error');
          }
        },
      },
      t('items.csv'),
    ),
  );

  const th = (k: MessageKey, cls?: string) => h('th', { class: cls }, t(k));
  mount(
    el,
    h('h2', null, t('items.title')),
    form,
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'line-items', class: 'clickable' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            th('items.time'),
            th('items.model'),
            th('items.endpoint', 'hide-sm'),
            th('items.status'),
            th('items.tokens', 'num'),
            th('items.cost', 'num'),
            th('items.latency', 'num hide-sm'),
          ),
        ),
        rows,
      ),
    ),
    state,
    more,
    h('dialog', { id: 'details' }),
  );
  void page(true);
}

startPage('balance', async (me, main) => {
  const cards = h('section', { class: 'stats', id: 'cards' });
  const limitsBox = h('div', { id: 'limits' });
  const usage = h('section', { class: 'card', id: 'usage' });
  const items = h('section', { class: 'card', id: 'items' });
  mount(
    main,
    cards,
    h('div', { class: 'two' }, h('section', { class: 'card' }, h('h2', null, t('limits.title')), limitsBox), h('section', { class: 'card' }, h('h2', null, t('models.title')), models(me))),
    usage,
    items,
  );
  await Promise.all([section(cards, async () => [...balanceCards(me), ...(await spendCards())]), section(limitsBox, limits), section(usage, usageByModel), Promise.resolve(lineItems(items))]);
});
