import type { Account, ApiKey } from './api.js';
import { h, mount, type Child } from './dom.js';
import { availableNano, dateTime, money, nanoToDecimal, num, usdToNano } from './format.js';
import { t, type MessageKey } from './i18n.js';
import { actionForm, errorText, field, notify, section } from './shell.js';

const list = (text: string | undefined) =>
  text
    ? text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
/** Digits become numbers; anything else goes as typed, so the API names what is wrong with it. */
const count = (text: string | undefined) => (!text ? null : /^\d+$/.test(text) ? Number(text) : text);
const when = (text: string | undefined) => (text ? new Date(text).toISOString() : null);
const localInput = (iso: string | null) => {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

/** Settings shared by the create and edit forms, named as the account API names them. */
function settingsFields(a: Partial<Account>): Child[] {
  return [
    field('console.name', h('input', { name: 'name', value: a.name ?? '', maxlength: 200 })),
    field('console.multiplier', h('input', { name: 'multiplier', value: a.multiplier ?? 1, inputmode: 'decimal' })),
    field(
      'console.quota',
      h('input', {
        name: 'credit_limit_usd',
        value: a.credit_limit_usd && usdToNano(a.credit_limit_usd) > 0n ? nanoToDecimal(usdToNano(a.credit_limit_usd)) : '',
        inputmode: 'decimal',
        placeholder: '0',
      }),
    ),
    field('console.rpm', h('input', { name: 'rpm', value: a.rpm ?? '', inputmode: 'numeric' })),
    field('console.tpm', h('input', { name: 'tpm', value: a.tpm ?? '', inputmode: 'numeric' })),
    field('console.models', h('input', { name: 'models', value: (a.models ?? []).join(', ') })),
    field('console.ips', h('input', { name: 'ip_allowlist', value: (a.ip_allowlist ?? []).join(', ') })),
    field('console.expires', h('input', { name: 'expires_at', type: 'datetime-local', value: localInput(a.expires_at ?? null) })),
  ];
}

function settingsBody(v: Record<string, string>) {
  return {
    name: v.name || undefined,
    credit_limit_usd: v.credit_limit_usd || null,
    rpm: count(v.rpm),
    tpm: count(v.tpm),
    models: list(v.models),
    ip_allowlist: list(v.ip_allowlist),
    expires_at: when(v.expires_at),
  };
}

function keyShownOnce(key: string): HTMLElement {
  const copy = h(
    'button',
    {
      type: 'button',
      class: 'ghost',
      id: 'copy-key',
      onclick: async () => {
        const input = document.getElementById('new-key') as HTMLInputElement;
        input.select();
        try {
          await navigator.clipboard.writeText(key);
        } catch {
          // Clipboard needs a secure context; the selected text can still be copied by hand.
          document.execCommand('copy');
        }
        copy.textContent = t('console.copied');
      },
    },
    t('console.copy'),
  );
  return h(
    'div',
    { class: 'notice ok once', role: 'status' },
    h('p', null, t('console.keyCreated')),
    h('div', { class: 'copy-row' }, h('input', { id: 'new-key', readonly: true, value: key, spellcheck: 'false' }), copy),
  );
}

/** An account API (`/account/v1` with an account's key, `/admin/v1` with the operator's token): method, path after the base, body. */
export type AccountApi = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export interface AccountsViewOptions {
  api: AccountApi;
  /** The top of the tree shown. */
  rootId: string;
  /** The caller's own account, which it sees but does not manage; null for the operator. */
  selfId: string | null;
}

/**
 * An account tree with each account's figures, settings, top-ups and keys: the sub-account
 * console of an account and the operator console's accounts section, over the same routes.
 */
export function accountsView(box: HTMLElement, { api, rootId, selfId }: AccountsViewOptions): void {
  let selected = rootId;
  const treeBox = h('section', { class: 'card tree-card', id: 'tree' });
  const detail = h('section', { class: 'card', id: 'detail' });
  mount(box, h('div', { class: 'console' }, treeBox, detail));

  async function refresh(): Promise<void> {
    let accounts: Account[] = [];
    await section(treeBox, async () => {
      accounts = (await api<{ data: Account[] }>('GET', `/accounts?under=${encodeURIComponent(rootId)}`)).data;
      return [h('h2', null, t('console.tree')), tree(accounts)];
    });
    const current = accounts.find((a) => a.id === selected) ?? accounts.find((a) => a.id === rootId);
    if (current) await showAccount(current);
  }

  function tree(accounts: Account[]): HTMLElement {
    const children = new Map<string, Account[]>();
    for (const a of accounts) if (a.parent_id) children.set(a.parent_id, [...(children.get(a.parent_id) ?? []), a]);
    const node = (a: Account): HTMLElement => {
      const kids = children.get(a.id) ?? [];
      return h(
        'li',
        { role: 'treeitem', 'aria-expanded': kids.length ? 'true' : undefined, 'aria-selected': a.id === selected ? 'true' : 'false' },
        h(
          'button',
          {
            type: 'button',
            class: a.id === selected ? 'node selected' : 'node',
            'data-account-id': a.id,
            onclick: () => {
              selected = a.id;
              void refresh();
            },
          },
          h(
            'span',
            { class: 'node-name' },
            a.name === a.id ? a.id : `${a.name} · ${a.id}`,
            a.id === selfId ? h('em', null, ` (${t('console.you')})`) : null,
            a.status !== 'active' ? h('span', { class: 'badge rejected' }, t('console.disabled')) : null,
          ),
          h(
            'span',
            { class: 'node-figures muted' },
            h('span', { 'data-field': 'available', 'data-nano': availableNano(a).toString() }, t('console.available', { amount: money(availableNano(a)) })),
            ' · ',
            h('span', { 'data-field': 'spent', 'data-nano': a.spent_nano }, t('console.spent', { amount: money(a.spent_nano) })),
            ' · ',
            `×${a.multiplier}`,
          ),
        ),
        kids.length ? h('ul', { role: 'group' }, kids.map(node)) : null,
      );
    };
    const top = accounts.find((a) => a.id === rootId);
    return h('div', null, h('ul', { role: 'tree', class: 'tree' }, top ? node(top) : null), (children.get(rootId) ?? []).length === 0 ? h('p', { class: 'empty' }, t('console.noSubs')) : null);
  }

  async function showAccount(a: Account): Promise<void> {
    const own = a.id === selfId;
    const facts: [MessageKey, Child][] = [
      ['console.balance', h('span', { id: 'detail-balance', 'data-nano': a.balance_nano }, money(a.balance_nano))],
      ['card.available', h('span', { id: 'detail-available', 'data-nano': availableNano(a).toString() }, money(availableNano(a)))],
      ['console.quota', usdToNano(a.credit_limit_usd) > 0n ? money(usdToNano(a.credit_limit_usd)) : '—'],
      ['console.multiplier', `×${a.multiplier}`],
      ['console.requests', num(a.requests)],
      ['console.rpm', a.rpm === null ? t('limits.none') : num(a.rpm)],
      ['console.tpm', a.tpm === null ? t('limits.none') : num(a.tpm)],
      ['console.expires', a.expires_at ? dateTime(a.expires_at) : t('console.never')],
    ];
    const keysBox = h('div', { id: 'keys' });
    const newKey = h('div', { id: 'new-key-box' });
    mount(
      detail,
      h('h2', null, a.name === a.id ? a.id : `${a.name} (${a.id})`, a.status !== 'active' ? h('span', { class: 'badge rejected' }, t('console.disabled')) : null),
      h(
        'dl',
        { class: 'facts' },
        facts.flatMap(([k, v]) => [h('dt', null, t(k)), h('dd', null, v)]),
      ),
      own ? h('p', { class: 'muted' }, t('console.self')) : manage(a),
      h('h3', null, t('console.keys')),
      keysBox,
      newKey,
      actionForm(
        'create-key',
        null,
        [
          field('console.keyName', h('input', { name: 'name', maxlength: 200 })),
          field('console.models', h('input', { name: 'models' })),
          field('console.rpm', h('input', { name: 'rpm', inputmode: 'numeric' })),
          field('console.tpm', h('input', { name: 'tpm', inputmode: 'numeric' })),
        ],
        t('console.createKey'),
        async (v) => {
          const created = await api<{ key: string }>('POST', `/accounts/${encodeURIComponent(a.id)}/keys`, { name: v.name ?? '', models: list(v.models), rpm: count(v.rpm), tpm: count(v.tpm) });
          mount(newKey, keyShownOnce(created.key));
          await keys();
        },
      ),
      a.status === 'active'
        ? actionForm(
            'create-account',
            t('console.createUnder', { id: a.id }),
            [field('console.id', h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9_\\-]+', maxlength: 64 })), ...settingsFields({ multiplier: 1 })],
            t('console.create'),
            async (v) => {
              const body = { id: v.id, parent_id: a.id, multiplier: v.multiplier || undefined, ...settingsBody(v) };
              const created = await api<Account>('POST', '/accounts', body);
              selected = created.id;
              await refresh();
              return t('console.created', { id: created.id });
            },
          )
        : null,
    );

    async function keys(): Promise<void> {
      await section(keysBox, async () => {
        const data = (await api<{ data: ApiKey[] }>('GET', `/accounts/${encodeURIComponent(a.id)}/keys`)).data;
        if (data.length === 0) return h('p', { class: 'empty' }, t('console.noKeys'));
        return h(
          'ul',
          { class: 'keys' },
          data.map((k) =>
            h(
              'li',
              { 'data-key-id': k.id },
              h('code', null, `${k.prefix}…`),
              ' ',
              k.name,
              ' ',
              h('span', { class: 'muted small' }, dateTime(k.created_at)),
              k.status === 'active'
                ? h(
                    'button',
                    {
                      type: 'button',
                      class: 'danger small',
                      onclick: async () => {
                        if (!confirm(t('console.revokeConfirm', { prefix: k.prefix }))) return;
                        try {
                          await api('DELETE', `/accounts/${encodeURIComponent(a.id)}/keys/${encodeURIComponent(k.id)}`);
                          await keys();
                        } catch (err) {
                          notify(errorText(err), 'error');
                        }
                      },
                    },
                    t('console.revoke'),
                  )
                : h('span', { class: 'badge rejected' }, t('console.revoked')),
            ),
          ),
        );
      });
    }
    await keys();
  }

  /** What a parent may do with a descendant: edit, change its multiplier, top it up, disable it. */
  function manage(a: Account): Child {
    const path = `/accounts/${encodeURIComponent(a.id)}`;
    let topUpKey = crypto.randomUUID();
    return [
      actionForm('edit-account', t('console.settings'), settingsFields(a), t('console.save'), async (v) => {
        await api('PATCH', path, settingsBody(v));
        if (v.multiplier && v.multiplier !== String(a.multiplier)) await api('POST', `${path}/multiplier`, { multiplier: v.multiplier });
        await refresh();
        return t('console.saved');
      }),
      actionForm(
        'top-up',
        t('console.topup'),
        [field('console.amount', h('input', { name: 'amount_usd', required: true, inputmode: 'decimal' })), field('console.note', h('input', { name: 'note', maxlength: 500 }))],
        t('console.topup'),
        async (v) => {
          // One idempotency key per intended top-up: a double click or a retry credits once.
          await api('POST', `${path}/credits`, { amount_usd: v.amount_usd, note: v.note ?? '', idempotency_key: topUpKey });
          topUpKey = crypto.randomUUID();
          await refresh();
          return t('console.toppedUp', { amount: money(usdToNano(v.amount_usd ?? '')) });
        },
      ),
      a.status === 'active'
        ? h(
            'button',
            {
              type: 'button',
              class: 'danger',
              id: 'disable',
              onclick: async () => {
                if (!confirm(t('console.disableConfirm', { id: a.id }))) return;
                try {
                  await api('POST', `${path}/disable`, { reason: 'disabled in the console' });
                  await refresh();
                  notify(t('console.disabledDone'));
                } catch (err) {
                  notify(errorText(err), 'error');
                }
              },
            },
            t('console.disable'),
          )
        : null,
    ];
  }

  void refresh();
}
