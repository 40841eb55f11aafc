// The admin console in a real headless browser: Chromium from the system's
// packages (`make chromium` installs it) driven by playwright-core, against
// the real gateway, the provider emulators, an MCP server with a bearer token
// and one behind the OAuth emulator (whose consent page is an HTML form the
// test clicks). A screenshot of each page goes to tests/.scratch/screenshots/.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startOAuthServer } from '../emulators/oauth-server.mjs';
import { test, startStack, assertNoLeaks, newSecret, SECRETS, REPO_ROOT } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'tests/.scratch/screenshots');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let as;
let stack;
let gw;
let context;
let profileDir;
let page;
let bearerToken;
const cspViolations = [];
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`make chromium\` (apt-get install chromium)`);
  mkdirSync(SHOTS, { recursive: true });
  as = await startOAuthServer({ consent: true, accessTtlSec: 600, onIssue: (v, kind) => SECRETS.set(v, `oauth ${kind}`) });
  bearerToken = newSecret('console crm token', 'mcp_tok_');
  stack = await startStack({ mcp: { crm: { type: 'bearer', token: bearerToken }, docs: { type: 'oauth', as, scope: 'mcp:tools' } } });
  gw = stack.gw;
  profileDir = mkdtempSync(path.join(os.tmpdir(), 'mcpgate-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  await context?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await stack?.close();
  await as?.close();
});

const shot = (name, p = page) => p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** The console never puts the admin token into a URL. */
function assertTokenNotInUrl(p = page) {
  assert.ok(!p.url().includes(gw.adminToken), 'the admin token is in the URL');
}

test('console files carry a strict CSP and no inline script', async () => {
  for (const [file, type] of [['/admin/', /text\/html/], ['/admin/console.js', /javascript/], ['/admin/console.css', /text\/css/]]) {
    const r = await gw.request('GET', file);
    assert.equal(r.status, 200, file);
    assert.match(r.headers.get('content-type'), type);
    const csp = r.headers.get('content-security-policy');
    assert.ok(csp, `CSP on ${file}`);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe|https?:|\*/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.match(r.headers.get('mcpgate-request-id'), /^[0-9a-f]{16}$/);
    if (file === '/admin/') assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i, 'inline script');
    if (file === '/admin/console.js') assert.doesNotMatch(r.text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  }
  assert.equal((await gw.request('POST', '/admin/')).status, 405);
  assert.equal((await gw.request('GET', '/admin/nothing.js')).status, 404);
});

test('full flow: sign in, tenant, key once, OAuth connect in a popup, request, usage chart, revoke, sign out', async () => {
  const res = await page.goto(`${gw.url}/admin/`);
  assert.ok(res.headers()['content-security-policy'], 'the browser got the CSP header');
  await page.locator('#signin').waitFor();
  await shot('01-sign-in');

  // A wrong token is refused with a clear message and not kept.
  await page.fill('#token', 'not-the-admin-token');
  await page.click('#signin button[type=submit]');
  await page.locator('#error').filter({ hasText: 'not accepted' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await shot('02-wrong-token');

  await page.fill('#token', gw.adminToken);
  await page.click('#signin button[type=submit]');
  await page.locator('#tenants').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('mcpgate.adminToken')), gw.adminToken);
  assertTokenNotInUrl();
  await shot('03-tenants-empty');

  // Create a tenant with a bearer server and an oauth2 server.
  const openaiKey = stack.openaiKey('console');
  await page.click('text=New tenant >> nth=0');
  await page.locator('#tenant-form').waitFor();
  await page.fill('[name=tenant_id]', 'acme');
  await page.fill('[name=openai_key]', openaiKey);
  await page.click('#add-server');
  let fs = page.locator('fieldset.server').nth(0);
  await fs.locator('[name=name]').fill('crm');
  await fs.locator('[name=url]').fill(stack.servers.crm.url);
  await fs.locator('[name=auth_type]').selectOption('bearer');
  await fs.locator('[name=token]').fill(bearerToken);
  await fs.locator('[name=allowed_tools]').fill('whoami, search');
  await page.click('#add-server');
  fs = page.locator('fieldset.server').nth(1);
  await fs.locator('[name=name]').fill('docs');
  await fs.locator('[name=url]').fill(stack.servers.docs.url);
  await fs.locator('[name=auth_type]').selectOption('oauth2');
  await shot('04-new-tenant-form');
  await page.click('#save');
  await page.locator('#tenant-id').filter({ hasText: 'acme' }).waitFor();
  const crmRow = page.locator('tr[data-server=crm]');
  assert.match(await crmRow.innerText(), /bearer \[redacted\]/);
  assert.doesNotMatch(await page.content(), new RegExp(bearerToken), 'the token is not shown');
  await page.locator('tr[data-server=docs] .oauth-status').filter({ hasText: 'not connected' }).waitFor();
  await shot('05-tenant-detail');

  // Edit without retyping secrets keeps them (sent back as "[redacted]").
  await page.click('text=Edit');
  await page.locator('#tenant-form').waitFor();
  assert.equal(await page.inputValue('[name=openai_key]'), '', 'secrets are write-only');
  assert.match(await page.getAttribute('[name=openai_key]', 'placeholder'), /\[redacted\]/);
  await page.fill('[name=rpm]', '100');
  await page.click('#save');
  await page.locator('#tenant-id').filter({ hasText: 'acme' }).waitFor();
  assert.match(await page.locator('#tenant').innerText(), /100 requests\/minute/);

  // A key is shown once.
  await page.click('#create-key');
  const key = (await page.locator('#new-key code').innerText()).trim();
  assert.match(key, /^mgk_/);
  SECRETS.set(key, 'gateway key of acme (console)');
  await shot('06-key-created');
  await page.reload();
  await page.locator('#keys tr[data-key]').first().waitFor();
  assert.equal(await page.locator('#new-key').count(), 0, 'the key is not shown again');
  assert.ok(!(await page.content()).includes(key));

  // Connect the oauth2 server in a popup; the consent page is a form.
  const docsRow = page.locator('tr[data-server=docs]');
  const [popup] = await Promise.all([page.waitForEvent('popup'), docsRow.locator('button.connect').click()]);
  await popup.waitForLoadState();
  await popup.locator('#approve').waitFor();
  await shot('07-oauth-consent', popup);
  await Promise.all([popup.waitForURL(/\/oauth\/callback/), popup.click('#approve')]);
  assert.match(await popup.locator('body').innerText(), /connected/i);
  await shot('08-oauth-callback', popup);
  await popup.close();
  await docsRow.locator('.oauth-status').filter({ hasText: /^connected$/ }).waitFor({ timeout: 20_000 });
  await shot('09-oauth-connected');

  // A request through the gateway with the key, calling a tool of each server.
  for (const server of ['docs', 'crm']) {
    const r = await gw.fetch('/openai/v1/responses', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: server }] }),
    });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    const call = body.output.find((o) => o.type === 'mcp_call');
    assert.equal(call?.status, 'completed', JSON.stringify(body.output));
  }

  // The usage chart shows them (usage is counted just after each answer).
  let total = '';
  for (let i = 0; i < 40 && !/^Total: 2 requests/.test(total); i++) {
    await page.reload();
    total = await page.locator('#usage-total').innerText();
    if (!/^Total: 2 requests/.test(total)) await sleep(250);
  }
  assert.match(total, /^Total: 2 requests, \d+ input tokens, \d+ output tokens, 2 MCP calls\./);
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(await page.getAttribute(`#chart-requests rect[data-date="${today}"]`, 'data-value'), '2');
  for (const s of ['docs', 'crm']) {
    assert.equal(await page.getAttribute(`#chart-mcp rect[data-series="${s}"][data-date="${today}"]`, 'data-value'), '1');
  }
  assert.ok(await page.locator('#chart-tokens rect').count() >= 1);
  await page.locator('#usage').scrollIntoViewIfNeeded();
  await shot('10-usage-chart');

  // Revoke the key: it stops working.
  await page.locator('#keys button.revoke').first().click();
  await page.locator('#keys').filter({ hasText: 'No keys.' }).waitFor();
  const denied = await gw.fetch('/openai/v1/responses', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', input: 'hi' }),
  });
  assert.equal(denied.status, 401);
  await denied.text();
  await shot('11-key-revoked');

  await page.click('#signout');
  await page.locator('#signin').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign out forgets the token');
  assertTokenNotInUrl();
  await shot('12-signed-out');
});

test('values with HTML in them are rendered as text; names with HTML are refused by the API', async () => {
  const html = '<img src=x onerror="window.__xss=1">';
  const r = await gw.admin('PUT', '/admin/tenants/markup', {
    mcp_servers: {
      crm: { url: stack.servers.crm.url, auth: { type: 'none' }, allowed_tools: [html, '<b>bold</b>'] },
      docs: { url: stack.servers.docs.url, auth: { type: 'oauth2', client_id: '<script>window.__xss=2</script>', scope: '<i>x</i>' } },
    },
  });
  assert.equal(r.status, 200, r.text);
  for (const bad of ['<b>x</b>', '"><img src=x>']) {
    const n = await gw.admin('PUT', '/admin/tenants/markup2', { mcp_servers: { [bad]: { url: stack.servers.crm.url, auth: { type: 'none' } } } });
    assert.equal(n.status, 400, 'server names are plain identifiers');
  }
  await page.goto(`${gw.url}/admin/`);
  await page.fill('#token', gw.adminToken);
  await page.click('#signin button[type=submit]');
  await page.locator('a.tenant-link', { hasText: 'markup' }).click();
  await page.locator('tr[data-server=crm]').waitFor();
  const text = await page.locator('tr[data-server=crm]').innerText();
  assert.ok(text.includes(html), 'the markup shows as text');
  assert.ok(text.includes('<b>bold</b>'));
  assert.equal(await page.locator('#main img, #main b, #main script').count(), 0, 'no element was made from data');
  await page.click('text=Edit');
  await page.locator('#tenant-form').waitFor();
  assert.equal(await page.inputValue('fieldset.server >> nth=1 >> [name=client_id]'), '<script>window.__xss=2</script>');
  await shot('13-html-as-text');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected script ran');
  // An API error is shown as the API's own message, naming the field.
  await page.locator('fieldset.server >> nth=0 >> [name=url]').fill('ftp://nope.example/mcp');
  await page.click('#save');
  await page.locator('#error').filter({ hasText: 'mcp_servers.crm.url' }).waitFor();
  assert.match(await page.locator('#error').innerText(), /^HTTP 400: /);
  await shot('14-api-error');
});

test('the browser reported no CSP violation and no script error', () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
});

test('no secret leaked to clients, upstream, KV or the log', async () => {
  await assertNoLeaks(stack);
});
