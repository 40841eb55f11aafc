// GET /admin/tenants: every tenant exactly once across pages, in id order,
// limit and cursor checked, admin token required, deleted tenants gone.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { test, startStack, assertNoLeaks } from './harness.mjs';

let stack;
let gw;
const IDS = Array.from({ length: 7 }, (_, i) => `list-${String(i).padStart(2, '0')}`);

before(async () => {
  stack = await startStack();
  gw = stack.gw;
  for (const id of IDS) await gw.putTenant(id, { providers: { openai: { api_key: stack.openaiKey(id) } } });
  // A key of one tenant: gk: records must not show up as tenants.
  await gw.createKey(IDS[0]);
});

after(async () => {
  await stack?.close();
});

/** Follows the cursor to the end; returns the pages. */
async function allPages(limit) {
  const pages = [];
  let cursor = null;
  do {
    const q = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const r = await gw.admin('GET', `/admin/tenants?${q}`);
    assert.equal(r.status, 200, r.text);
    pages.push(r.json);
    cursor = r.json.cursor;
    assert.ok(pages.length <= IDS.length + 1, 'the cursor ends');
  } while (cursor);
  return pages;
}

test('without a limit one page holds every tenant, in id order, and cursor null', async () => {
  const r = await gw.admin('GET', '/admin/tenants');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.deepEqual(r.json, { tenants: IDS.map((tenant_id) => ({ tenant_id })), cursor: null });
});

test('paginated with limit=3: three pages, each tenant once', async () => {
  const pages = await allPages(3);
  assert.deepEqual(pages.map((p) => p.tenants.length), [3, 3, 1]);
  assert.deepEqual(pages.flatMap((p) => p.tenants.map((t) => t.tenant_id)), IDS);
  assert.equal(pages.at(-1).cursor, null);
});

test('limit=1 walks every tenant', async () => {
  const pages = await allPages(1);
  assert.deepEqual(pages.flatMap((p) => p.tenants.map((t) => t.tenant_id)), IDS);
});

test('a deleted tenant is no longer listed; a new one is', async () => {
  assert.equal((await gw.deleteTenant(IDS[3])).status, 204);
  await gw.putTenant('list-new', { providers: { openai: { api_key: stack.openaiKey('new') } } });
  const r = await gw.admin('GET', '/admin/tenants?limit=1000');
  const ids = r.json.tenants.map((t) => t.tenant_id);
  assert.ok(!ids.includes(IDS[3]));
  assert.deepEqual(ids, [...IDS.filter((id) => id !== IDS[3]), 'list-new'].sort());
});

test('bad limit or cursor: 400 naming the parameter', async () => {
  for (const limit of ['0', '1001', 'x', '-5']) {
    const r = await gw.admin('GET', `/admin/tenants?limit=${limit}`);
    assert.equal(r.status, 400, limit);
    assert.equal(r.json.error.param, 'limit');
  }
  const r = await gw.admin('GET', '/admin/tenants?cursor=not-a-real-cursor');
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.param, 'cursor');
  const spaced = await gw.admin('GET', '/admin/tenants?cursor=a%20b');
  assert.equal(spaced.status, 400);
});

test('admin token required; other methods are 405', async () => {
  assert.equal((await gw.admin('GET', '/admin/tenants', undefined, { token: null })).status, 401);
  assert.equal((await gw.admin('GET', '/admin/tenants', undefined, { token: 'wrong' })).status, 401);
  const r = await gw.admin('POST', '/admin/tenants', {});
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET');
});

test('no secret leaked to clients, KV or the log', async () => {
  await assertNoLeaks(stack);
});
