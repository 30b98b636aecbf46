import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pino } from 'pino';
import { browserPackages, ensureDebPackages, READONLY_USER, realSystem, screenshotPackages, waitFor } from '@yugong/infra';
import { ADMIN_TOKEN, startStack, type Stack } from '@yugong/proxy/testing';
import { redisKeys } from '@yugong/schemas';
import { loadConfig } from '../../src/config.js';
import { startAnalyticsService, type AnalyticsService } from '../../src/service.js';

const SHOTS = process.env.YUGONG_SCREENSHOTS_DIR;
const SIZES = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

describe('operator console in a real browser against the real stack', function () {
  this.timeout(240_000);
  let s: Stack;
  let service: AnalyticsService;
  let base: string;
  let browser: Browser;
  let page: Page;
  let funded: { accountId: string; key: string; keyId: string };

  before(async () => {
    s = await startStack();
    // The ledger's own /metrics, as its process serves them.
    const config = loadConfig({
      ...s.infraEnv,
      YUGONG_CLICKHOUSE_USER: READONLY_USER,
      YUGONG_ANALYTICS_PORT: '0',
      YUGONG_ADMIN_TOKEN: ADMIN_TOKEN,
      YUGONG_PROXY_URL: s.url,
      YUGONG_LEDGER_URL: s.ledgerUrl ?? '',
      YUGONG_LOG_LEVEL: 'silent',
    });
    service = await startAnalyticsService(config, pino({ level: 'silent' }));
    base = service.url;
    ensureDebPackages(browserPackages);
    browser = await chromium.launch({ executablePath: realSystem.which('chromium') ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    page = await (await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', viewport: SIZES.desktop })).newPage();
    page.on('dialog', (d) => void d.accept());
    funded = await s.fundedKey({ usd: '3', account: { name: 'Operator Test Co' } });
    for (let i = 0; i < 3; i++) await s.client(funded.key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] });
    await s.lineItems(funded.accountId, 3);
  });

  after(async () => {
    await browser?.close();
    await service?.close();
    await s?.close();
  });

  const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
  /**
   * Waits for what an action through the ledger shows (the admin API answers once the ledger
   * has applied its event, within 10 s); a timeout says what the page showed instead.
   */
  const shown = async (what: ReturnType<Page['locator']>, state: 'visible' | 'detached' = 'visible') => {
    try {
      await what.waitFor({ state, timeout: 20_000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nthe page's notice: ${await text('#notice')}\nthe pool: ${await text('#upstreams')}`);
    }
  };

  it("refuses a wrong admin token with the API's message and keeps nothing", async () => {
    await page.goto(`${base}/operator`);
    await page.fill('#api-key', 'not-the-admin-token-at-all');
    await page.click('form.signin button[type=submit]');
    await page.locator('#signin-error.error').waitFor({ timeout: 10_000 });
    assert.match(await text('#signin-error'), /operator admin token/);
    assert.equal(await page.evaluate('sessionStorage.getItem("yugong.adminToken")'), null);
  });

  it('overview: traffic, revenue, top accounts and models, ledger lag and spool', async () => {
    await page.fill('#api-key', ADMIN_TOKEN);
    await page.click('form.signin button[type=submit]');
    await page.locator('#ov-hour .value').waitFor({ timeout: 15_000 });
    assert.ok(Number(await page.getAttribute('#ov-hour', 'data-value')) >= 3, 'the last hour holds the requests just made');
    assert.match(await text('#ov-accounts'), new RegExp(funded.accountId));
    assert.match(await text('#ov-models'), /gpt-4o-mini/);
    assert.match(await text('#ov-lag'), /balances \d+/, 'consumer lag from the ledger metrics');
    assert.match(await text('#ov-lag'), /line-items \d+/);
    assert.equal(await text('#ov-spool .value'), '0 B');
    assert.match(await text('#ov-hourly'), /\$/);
  });

  it('upstream pool: live figures; disable, enable, add (shown once, then its prefix) and remove', async () => {
    const [poolId] = s.nodes[0]?.config.poolIds ?? [];
    const row = (id: string) => page.locator(`#pool tr:has([data-upstream-id="${id}"])`);
    const first = page.locator('#pool [data-upstream-id]').first();
    await first.waitFor({ timeout: 15_000 });
    const id = (await first.getAttribute('data-upstream-id')) ?? '';
    assert.match((await row(id).textContent()) ?? '', /sk-ups…/);
    assert.match((await row(id).locator('[data-field=outcomes]').textContent()) ?? '', /^\d+ · OK \d+/, 'attempts and requests by outcome over the last hour');
    await row(id).locator('[data-action=disable]').click();
    await shown(row(id).locator('[data-field=status]', { hasText: 'disabled' }));
    assert.equal((await s.admin('GET', '/upstreams')).json.data.find((k: { id: string }) => k.id === id).status, 'disabled');
    await row(id).locator('[data-action=enable]').click();
    await shown(row(id).locator('[data-field=status]', { hasText: 'active' }));

    await page.fill('#add-upstream [name=base_url]', s.mock.baseURL);
    await page.fill('#add-upstream [name=key]', 'sk-added-by-the-console-0001');
    await page.fill('#add-upstream [name=organization]', 'org-console');
    await page.fill('#add-upstream [name=pool_id]', poolId ?? 'default');
    await page.click('#add-upstream button[type=submit]');
    await shown(page.locator('#notice .ok'));
    const added = /Added (up_[0-9a-f]+)/.exec(await text('#notice'))?.[1] ?? '';
    await shown(row(added));
    assert.match((await row(added).textContent()) ?? '', /sk-add…/);
    assert.ok(!(await page.content()).includes('sk-added-by-the-console-0001'), 'the secret is never shown again');
    await row(added).locator('[data-action=remove]').click();
    await shown(row(added), 'detached');
    assert.equal(await s.redis.hexists(redisKeys.upstreamKeys(), added), 0, 'removed through an event the ledger applied');
  });

  it('accounts: search, tree, top-up with an idempotency key, multiplier, a key, disable', async () => {
    await page.fill('#account-search [name=q]', 'operator test');
    await page.click('#account-search button[type=submit]');
    const open = page.locator(`[data-open-account="${funded.accountId}"]`);
    await open.waitFor({ timeout: 15_000 });
    assert.match(await text('#accounts'), /Operator Test Co/);
    await open.click();
    await page.locator(`#tree [data-account-id="${funded.accountId}"]`).waitFor({ timeout: 15_000 });
    const before = BigInt((await s.account(funded.accountId)).credited ?? '0');
    // Each action re-renders the account, then says so: the next form is filled only after that.
    const done = (message: RegExp) => shown(page.locator('#notice .ok', { hasText: message }));
    await page.fill('#top-up [name=amount_usd]', '1.25');
    await page.click('#top-up button[type=submit]');
    await done(/Added \$1\.25/);
    assert.equal(BigInt((await s.account(funded.accountId)).credited ?? '0'), before + 1_250_000_000n);
    await page.fill('#edit-account [name=multiplier]', '1.3');
    await page.click('#edit-account button[type=submit]');
    await done(/Saved/);
    assert.equal((await s.admin('GET', `/accounts/${funded.accountId}`)).json.multiplier_ppm, 1_300_000);
    await page.fill('#create-key [name=name]', 'from the operator');
    await page.click('#create-key button[type=submit]');
    assert.match(await page.locator('#new-key').inputValue({ timeout: 10_000 }), /^sk-yg-/);
    await page.locator('#disable').click();
    await waitFor('the account disabled', async () => ((await s.account(funded.accountId)).status === 'disabled' ? true : null), 10_000);
  });

  it('prices: versions, publish an override, and the difference between two versions', async () => {
    const before = (await s.admin('GET', '/prices')).json.data.find((v: { current: boolean }) => v.current).version as string;
    await page.locator('#price-versions').waitFor({ timeout: 10_000 });
    // A model no other test bills, so the override changes nobody else's charges.
    await page.fill('#price-publish [name=model]', 'gpt-4-32k');
    await page.fill('#price-publish [name=input]', '61');
    await page.fill('#price-publish [name=output]', '121');
    await page.click('#price-publish button[type=submit]');
    await page.locator('#notice .ok', { hasText: 'in force' }).waitFor({ timeout: 15_000 });
    const after = (await s.admin('GET', '/prices')).json.data.find((v: { current: boolean }) => v.current).version as string;
    assert.notEqual(after, before);
    await page.selectOption('#price-compare [name=a]', before);
    await page.selectOption('#price-compare [name=b]', after);
    await page.click('#price-compare button[type=submit]');
    await page.locator('#price-changes').waitFor({ timeout: 10_000 });
    assert.match(await text('#price-changes'), /gpt-4-32k/);
    // Back to the table that was in force before.
    const restored = await s.admin('POST', '/prices', { base: 'package' });
    assert.equal(restored.status, 201);
  });

  it('reads in Chinese and fits a phone', async () => {
    for (const [lang, size] of [
      ['zh-CN', 'phone'],
      ['en', 'phone'],
      ['zh-CN', 'desktop'],
    ] as const) {
      const ctx = await browser.newContext({ locale: lang, timezoneId: 'Asia/Shanghai', viewport: SIZES[size], isMobile: size === 'phone', hasTouch: size === 'phone' });
      const p = await ctx.newPage();
      await p.goto(`${base}/operator`);
      await p.evaluate(`sessionStorage.setItem('yugong.adminToken', ${JSON.stringify(ADMIN_TOKEN)}); localStorage.setItem('yugong.lang', ${JSON.stringify(lang)})`);
      await p.goto(`${base}/operator`);
      await p.locator('#pool [data-upstream-id]').first().waitFor({ timeout: 15_000 });
      await p.locator('#price-versions').waitFor({ timeout: 15_000 });
      assert.equal(await p.getAttribute('html', 'lang'), lang);
      assert.match((await p.locator('h1').textContent()) ?? '', lang === 'zh-CN' ? /运营控制台/ : /Operator console/);
      // Nothing but the wide tables may scroll sideways.
      const overflow = await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      assert.ok(Number(overflow) <= 1, `${lang} ${size}: the page is ${String(overflow)} px wider than the screen`);
      if (SHOTS) {
        ensureDebPackages(screenshotPackages);
        mkdirSync(SHOTS, { recursive: true });
        await p.waitForLoadState('networkidle');
        await p.screenshot({ path: join(SHOTS, `operator-${size}-${lang}.png`), fullPage: true });
      }
      await ctx.close();
    }
    if (SHOTS) {
      const p = await browser.newPage({ viewport: SIZES.desktop, locale: 'en' });
      await p.goto(`${base}/operator`);
      await p.evaluate(`sessionStorage.setItem('yugong.adminToken', ${JSON.stringify(ADMIN_TOKEN)}); localStorage.setItem('yugong.lang', 'en')`);
      await p.goto(`${base}/operator`);
      await p.locator('#pool [data-upstream-id]').first().waitFor({ timeout: 15_000 });
      await p.waitForLoadState('networkidle');
      await p.screenshot({ path: join(SHOTS, 'operator-desktop-en.png'), fullPage: true });
      await p.close();
    }
  });
});
