import { adminSession, ApiError, proxyJson, session, type Me } from './api.js';
import { byId, formValues, h, mount, type Child } from './dom.js';
import { currentLang, setLang, t, type MessageKey } from './i18n.js';

export type PageName = 'balance' | 'console' | 'operator';

/** Who signs in on a page, with what, and how the credential is checked. */
interface SignIn<W> {
  store: typeof session;
  /** Resolves with who the credential belongs to; an ApiError 401/403 means it is not valid. */
  check(credential?: string): Promise<W>;
  who(w: W): string;
  title: MessageKey;
  label: MessageKey;
  help: MessageKey;
  placeholder: string;
}

const accountSignIn: SignIn<Me> = {
  store: session,
  check: (key) => proxyJson<Me>('GET', '/account/v1/me', undefined, key),
  who: (me) => (me.name === me.id ? me.id : `${me.name} (${me.id})`),
  title: 'signin.title',
  label: 'signin.key',
  help: 'signin.help',
  placeholder: 'sk-yg-…',
};

/** The operator signs in with the admin token, checked against the admin API. */
export const operatorSignIn: SignIn<{ operator: true }> = {
  store: adminSession,
  check: async (token) => {
    await proxyJson('GET', '/admin/v1/prices', undefined, token ?? adminSession.key() ?? '');
    return { operator: true };
  },
  who: () => '',
  title: 'op.signin.title',
  label: 'op.signin.token',
  help: 'signin.help',
  placeholder: 'YUGONG_ADMIN_TOKEN',
};

/** A form control with its label above it. */
export function field(label: MessageKey, input: HTMLElement): HTMLLabelElement {
  return h('label', null, h('span', null, t(label)), input);
}

/** The message to show for a refused call: the API's own words, or what went wrong on the way. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.status === 0 ? t('error.network') : err.message;
  return err instanceof Error ? err.message : t('error.generic');
}

/** One live region per page for results and refusals, read out by screen readers. */
export function notify(message: string, kind: 'ok' | 'error' = 'ok'): void {
  const box = byId('notice');
  mount(
    box,
    h(
      'div',
      { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      message,
      h('button', { type: 'button', class: 'link', 'aria-label': '×', onclick: () => box.replaceChildren() }, '×'),
    ),
  );
}

export function loading(): HTMLElement {
  return h('p', { class: 'muted loading', 'aria-busy': 'true' }, t('loading'));
}

/** Runs a section's loader into its element, with a loading state and a retry on failure. */
export async function section(el: HTMLElement, load: () => Promise<Node | Node[]>): Promise<void> {
  mount(el, loading());
  try {
    const out = await load();
    mount(el, out);
  } catch (err) {
    mount(el, h('div', { class: 'notice error', role: 'alert' }, errorText(err), ' ', h('button', { type: 'button', class: 'link', onclick: () => void section(el, load) }, t('retry'))));
  }
}

function header(page: PageName, who: string | null, store: typeof session, rerender: () => void): HTMLElement {
  const link = (to: PageName, href: string, label: MessageKey) => h('a', { href, class: to === page ? 'active' : undefined, 'aria-current': to === page ? 'page' : undefined }, t(label));
  return h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '/' }, t('app.name')),
    h('nav', null, page === 'operator' ? link('operator', '/operator', 'nav.operator') : [link('balance', '/', 'nav.balance'), link('console', '/console', 'nav.console')]),
    h('div', { class: 'spacer' }),
    who ? h('span', { class: 'who', title: t('signin.signedInAs') }, who) : null,
    h(
      'button',
      {
        type: 'button',
        class: 'ghost',
        id: 'lang',
        lang: currentLang() === 'en' ? 'zh-CN' : 'en',
        onclick: () => {
          setLang(currentLang() === 'en' ? 'zh-CN' : 'en');
          rerender();
        },
      },
      t('lang.switch'),
    ),
    who !== null
      ? h(
          'button',
          {
            type: 'button',
            class: 'ghost',
            id: 'signout',
            onclick: () => {
              store.signOut();
              rerender();
            },
          },
          t('signin.out'),
        )
      : null,
  );
}

function signInForm<W>(auth: SignIn<W>, onDone: () => void, message: string | null): HTMLElement {
  const error = h('div', { id: 'signin-error', role: 'alert', class: message ? 'notice error' : undefined }, message ?? '');
  const input = h('input', { id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true, placeholder: auth.placeholder, spellcheck: 'false' });
  const button = h('button', { type: 'submit', class: 'primary' }, t('signin.submit'));
  const form = h(
    'form',
    {
      class: 'card signin',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const key = input.value.trim();
        button.disabled = true;
        try {
          await auth.check(key);
          auth.store.signIn(key);
          onDone();
        } catch (err) {
          mount(error, errorText(err));
          error.className = 'notice error';
          button.disabled = false;
        }
      },
    },
    h('h1', null, t(auth.title)),
    h('label', { for: 'api-key' }, t(auth.label)),
    input,
    h('p', { class: 'muted small' }, t(auth.help)),
    error,
    button,
  );
  return form;
}

const titles: Record<PageName, MessageKey> = { balance: 'nav.balance', console: 'nav.console', operator: 'nav.operator' };

/** Sign-in, header and language switch around a page's own content (an account's page by default). */
export function startPage(page: PageName, render: (me: Me, main: HTMLElement) => Promise<void>): void;
export function startPage<W>(page: PageName, render: (who: W, main: HTMLElement) => Promise<void>, auth: SignIn<W>): void;
export function startPage<W>(page: PageName, render: (who: W, main: HTMLElement) => Promise<void>, auth: SignIn<W> = accountSignIn as unknown as SignIn<W>): void {
  const run = async (message: string | null = null): Promise<void> => {
    document.documentElement.lang = currentLang();
    document.title = `${t(titles[page])} · ${t('app.name')}`;
    const root = byId('app');
    const main = h('main', { id: 'main' });
    mount(
      root,
      header(page, null, auth.store, () => void run()),
      h('div', { id: 'notice' }),
      main,
    );
    if (!auth.store.key()) {
      mount(
        main,
        signInForm(auth, () => void run(), message),
      );
      return;
    }
    mount(main, loading());
    let who: W;
    try {
      who = await auth.check();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        auth.store.signOut();
        return run(errorText(err));
      }
      mount(main, h('div', { class: 'notice error', role: 'alert' }, errorText(err), ' ', h('button', { type: 'button', class: 'link', onclick: () => void run() }, t('retry'))));
      return;
    }
    mount(
      root,
      header(page, auth.who(who), auth.store, () => void run()),
      h('div', { id: 'notice', 'aria-live': 'polite' }),
      main,
    );
    mount(main);
    await render(who, main);
  };
  void run();
}

/** A form whose submit calls the API and shows the API's own refusal, or what the action answers on success. */
// biome-ignore lint/suspicious/noConfusingVoidType: an action answers with a message to show, or with nothing
export function actionForm(id: string, title: string | null, fields: Child[], submit: string, act: (values: Record<string, string>, form: HTMLFormElement) => Promise<string | void>): HTMLFormElement {
  const button = h('button', { type: 'submit', class: 'primary' }, submit);
  const form: HTMLFormElement = h(
    'form',
    {
      id,
      class: 'form',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        try {
          const done = await act(formValues(form), form);
          if (done) notify(done);
        } catch (err) {
          notify(errorText(err), 'error');
        } finally {
          button.disabled = false;
        }
      },
    },
    title ? h('h3', null, title) : null,
    h('div', { class: 'fields-grid' }, fields),
    button,
  );
  return form;
}
