import { proxyJson } from './api.js';
import { h, mount } from './dom.js';
import { accountsView } from './accounts-view.js';
import { t } from './i18n.js';
import { startPage } from './shell.js';
import './style.css';

startPage('console', async (me, main) => {
  const box = h('div');
  mount(main, h('h1', null, t('console.title')), box);
  accountsView(box, { api: (method, path, body) => proxyJson(method, `/account/v1${path}`, body), rootId: me.id, selfId: me.id });
});
