import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { pino } from 'pino';
import { browserPackages, ensureDebPackages, READONLY_USER, realSystem, screenshotPackages, waitFor } from '@yugong/infra';
import { ADMIN_TOKEN, startStack, type Stack } from '@yugong/proxy/testing';
import { formatUsd } from '@yugong/schemas';
import { loadConfig } from '../../src/config.js';
import { startAnalyticsService, type AnalyticsService } from '../../src/service.js';

const uid = () => randomUUID().replace(/-/g, '').slice(0, 8);
/** Set to a folder (npm run screenshots) to also save the pages as PNG, both widths and languages. */
const SHOTS = process.env.YUGONG_SCREENSHOTS_DIR;

/** What the page must show for an amount, formatted the way an en-US reader sees it. */
function usdText(nano: bigint): string {
  const abs = nano < 0n ? -nano : nano;
  const digits = abs >= 1_000_000_000n || abs === 0n ? { minimumFractionDigits: 2, maximumFractionDigits: 4 } : { maximumSignificantDigits: 4 };
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', roundingMode: 'trunc', ...digits }).format(formatUsd(nano) as unknown as number);
}

describe('web pages in a real browser against the real stack', function () {
  this.timeout(180_000);
  let s: Stack;
  let service: AnalyticsService;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let parent: { accountId: string; key: string; keyId: string };

  before(async () => {
    s = await startStack();
    const config = loadConfig({
      ...s.infraEnv,
      YUGONG_CLICKHOUSE_USER: READONLY_USER,
      YUGONG_ANALYTICS_PORT: '0',
      YUGONG_ADMIN_TOKEN: ADMIN_TOKEN,
      YUGONG_PROXY_URL: s.url,
      YUGONG_LOG_LEVEL: 'silent',
    });
    service = await startAnalyticsService(config, pino({ level: 'silent' }));
    base = service.url;
    ensureDebPackages(browserPackages);
    browser = await chromium.launch({ executablePath: realSystem.which('chromium') ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext({ locale: 'en-US', timezoneId: 'Asia/Shanghai', acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('dialog', (d) => void d.accept());
    parent = await s.fundedKey({ usd: '5', key: { rpm: 60 } });
  });

  after(async () => {
    await browser?.close();
    await service?.close();
    await s?.close();
  });

  async function signIn(key: string): Promise<void> {
    await page.goto(`${base}/`);
    await page.fill('#api-key', key);
    await page.click('form.signin button[type=submit]');
  }

  it('a wrong key shows a clear message and is not kept', async () => {
    await signIn('sk-yg-not-a-real-key');
    await page.locator('#signin-error.error').waitFor({ timeout: 10_000 });
    const message = await page.locator('#signin-error').textContent();
    assert.match(message ?? '', /Incorrect API key provided/);
    assert.equal(await page.evaluate('sessionStorage.getItem("yugong.apiKey")'), null);
    await page.fill('#api-key', '');
  });

  it('after sign-in the balance equals the ledger and a request just made appears in the line items', async () => {
    const { response } = await s
      .client(parent.key)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from the browser test' }] })
      .withResponse();
    const requestId = response.headers.get('x-request-id') ?? '';
    const ledger = await s.settled(parent.accountId, 1);
    const [item] = await s.lineItems(parent.accountId, 1);
    assert.equal(item?.request_id, requestId);
    // The rollups the spend cards read are written just after the line item.
    await waitFor('the hourly rollup', async () => {
      const rs = await s.clickhouse.query({ query: `SELECT toString(sum(cost_nano)) AS c FROM usage_hourly WHERE account_id = '${parent.accountId}'`, format: 'JSONEachRow' });
      const [r] = await rs.json<{ c: string }>();
      return r?.c === ledger.spent ? true : null;
    });

    await signIn(parent.key);
    const balance = page.locator('#balance [data-nano]');
    await balance.waitFor({ timeout: 15_000 });
    const expected = BigInt(ledger.credited ?? '0') - BigInt(ledger.spent ?? '0');
    assert.equal(await balance.getAttribute('data-nano'), expected.toString());
    assert.equal(await balance.textContent(), usdText(expected));
    assert.ok(expected < 5_000_000_000n && expected > 0n, 'the request was charged');
    // Today's and this month's spend: the rollups, in the reader's time zone.
    await waitFor('spend cards', async () => ((await page.locator('#today [data-nano]').count()) ? true : null));
    assert.equal(await page.locator('#today [data-nano]').getAttribute('data-nano'), ledger.spent);
    assert.equal(await page.locator('#month [data-nano]').getAttribute('data-nano'), ledger.spent);
    assert.match((await page.locator('#rpm').textContent()) ?? '', /of 60/);
    assert.equal((await page.locator('#models').textContent())?.trim(), 'All models');

    const row = page.locator(`#line-items tr[data-request-id="${requestId}"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.equal(await row.locator('td[data-nano]').getAttribute('data-nano'), item?.cost_nano);
    assert.match((await row.textContent()) ?? '', /gpt-4o-mini/);
    await row.click();
    await page.locator('#details dl').waitFor();
    assert.match((await page.locator('#details').textContent()) ?? '', new RegExp(requestId));
    await page.click('#details button[value=close]');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const csv = readFileSync((await download.path()) ?? '', 'utf8');
    assert.match(csv.split('\n')[0] ?? '', /request_id/);
    assert.ok(csv.includes(requestId), 'the CSV holds the request');
  });

  it('the console creates a sub-account and a key; the key works and its spend shows in the parent tree', async () => {
    const chosen = `sub-${uid()}`;
    // Sub-accounts made with an account's key are named under it.
    const sub = `${parent.accountId}.${chosen}`;
    await page.goto(`${base}/console`);
    await page.locator(`#tree [data-account-id="${parent.accountId}"]`).waitFor({ timeout: 15_000 });
    assert.match((await page.locator('#tree').textContent()) ?? '', /No sub-accounts yet/);

    // A refusal shows the API's own message and creates nothing.
    await page.fill('#create-account [name=id]', chosen);
    await page.fill('#create-account [name=multiplier]', '0');
    await page.click('#create-account button[type=submit]');
    await page.locator('#notice .error').waitFor();
    assert.match((await page.locator('#notice').textContent()) ?? '', /Invalid 'multiplier': must be a number greater than 0/);
    assert.equal((await s.admin('GET', `/accounts/${sub}`)).status, 404);

    await page.fill('#create-account [name=multiplier]', '1.5');
    await page.fill('#create-account [name=credit_limit_usd]', '2');
    await page.fill('#create-account [name=rpm]', '30');
    await page.click('#create-account button[type=submit]');
    await page.locator(`#tree [data-account-id="${sub}"]`).waitFor({ timeout: 10_000 });
    const created = await s.admin('GET', `/accounts/${sub}`);
    assert.equal(created.json.parent_id, parent.accountId);
    assert.equal(created.json.multiplier_ppm, 1_500_000);
    assert.equal(created.json.rpm, 30);
    assert.equal(created.json.credit_limit_usd, '2.000000000');

    // The new sub-account is selected; its key is shown once.
    await page.fill('#create-key [name=name]', 'browser key');
    await page.click('#create-key button[type=submit]');
    const key = await page.locator('#new-key').inputValue({ timeout: 10_000 });
    assert.match(key, /^sk-yg-/);

    const reply = await s.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi from a sub-account' }] });
    assert.ok(reply.choices[0]?.message.content);
    const child = await s.settled(sub, 1, parent.accountId);
    assert.ok(BigInt(child.spent ?? '0') > 0n);

    await page.reload();
    const node = page.locator(`#tree [data-account-id="${sub}"] [data-field=spent]`);
    await node.waitFor({ timeout: 15_000 });
    assert.equal(await node.getAttribute('data-nano'), child.spent);
    const parentNow = await s.account(parent.accountId);
    assert.equal(await page.locator(`#tree [data-account-id="${parent.accountId}"] [data-field=spent]`).getAttribute('data-nano'), parentNow.spent);

    // Revoking from the console stops the key.
    await page.click(`#tree [data-account-id="${sub}"]`);
    await page.locator('#keys button.danger').click();
    await page.locator('#keys .badge').waitFor({ timeout: 10_000 });
    await waitFor(
      'the revoked key to be refused',
      async () => {
        try {
          await s.client(key).models.list();
          return null;
        } catch (err) {
          return (err as { status?: number }).status === 401 ? true : null;
        }
      },
      5_000,
    );
  });

  it('switches to Chinese and back', async () => {
    await page.goto(`${base}/`);
    await page.locator('#balance').waitFor({ timeout: 15_000 });
    await page.click('#lang');
    await page.locator('#balance').waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.match((await page.locator('#balance').textContent()) ?? '', /余额/);
    await page.click('#lang');
    await page.locator('#balance').waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
  });

  if (SHOTS) {
    it('saves screenshots of both pages (desktop and phone, English and Chinese)', async () => {
      ensureDebPackages(screenshotPackages);
      mkdirSync(SHOTS, { recursive: true });
      const client = s.client(parent.key);
      for (const [i, model] of ['gpt-4o-mini', 'gpt-4o', 'gpt-4o-mini', 'gpt-4.1-mini', 'gpt-4o'].entries()) {
        await client.chat.completions.create({ model, messages: [{ role: 'user', content: `Question ${i}: ${'tell me more '.repeat(i * 20)}` }] });
      }
      await client.embeddings.create({ model: 'text-embedding-3-small', input: 'screenshots' });
      await s.settled(parent.accountId, 8);
      const sizes = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };
      for (const lang of ['en', 'zh-CN'] as const) {
        for (const [size, viewport] of Object.entries(sizes)) {
          const ctx = await browser.newContext({ locale: lang, timezoneId: 'Asia/Shanghai', viewport, isMobile: size === 'phone', hasTouch: size === 'phone' });
          const p = await ctx.newPage();
          await p.goto(`${base}/`);
          await p.evaluate(`sessionStorage.setItem('yugong.apiKey', ${JSON.stringify(parent.key)}); localStorage.setItem('yugong.lang', ${JSON.stringify(lang)})`);
          for (const [name, path] of [
            ['balance', '/'],
            ['console', '/console'],
          ]) {
            await p.goto(`${base}${path}`);
            await p
              .locator(name === 'balance' ? '#line-items tbody tr' : '#keys')
              .first()
              .waitFor({ timeout: 15_000 });
            await p.waitForLoadState('networkidle');
            await p.screenshot({ path: join(SHOTS, `${name}-${size}-${lang}.png`), fullPage: true });
          }
          await ctx.close();
        }
      }
    });
  }
});
