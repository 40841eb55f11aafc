// GET /admin/tenants: every tenant exactly once across pages, in id order,
// limit and cursor checked, admin token required, deleted tenants gone.
// docs/openapi.json: a valid OpenAPI 3.1 document, served at
// /admin/openapi.json, covering every admin route; the response check that
// the harness runs on every admin answer catches a mismatch.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, startStack, assertNoLeaks } from './harness.mjs';
import { OPENAPI, OPENAPI_PATH, validateDocument, checkAdminResponse, findTemplate } from './openapi.mjs';

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
  // A cursor KV never issued: Cloudflare's KV rejects it (400 naming `cursor`); the local
  // simulator may answer a page instead. Never a 500.
  const r = await gw.admin('GET', '/admin/tenants?cursor=not-a-real-cursor');
  if (r.status === 400) assert.equal(r.json.error.param, 'cursor');
  else assert.equal(r.status, 200, r.text);
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

test('PUT with a secret sent as "[redacted]" keeps the stored one; with nothing stored it is a 400 naming the field', async () => {
  const key = stack.openaiKey('keep');
  await gw.putTenant('keep', { providers: { openai: { api_key: key } } });
  const gk = (await gw.createKey('keep')).key;
  const view = (await gw.getTenant('keep')).json;
  assert.equal(view.providers.openai.api_key, '[redacted]');
  // Send the GET view back (minus its id), as the console does.
  const { id, ...body } = view;
  assert.equal(id, 'keep');
  await gw.putTenant('keep', { ...body, rate_limit: { requests_per_minute: 50 } });
  const r = await gw.request('POST', '/openai/v1/responses', {
    headers: { authorization: `Bearer ${gk}` }, body: { model: 'gpt-4.1', input: 'hi' },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(stack.openaiEmu.requests.at(-1).headers.authorization, `Bearer ${key}`, 'the stored key was kept');
  const bad = await gw.admin('PUT', '/admin/tenants/keep', { providers: { anthropic: { api_key: '[redacted]' } } });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.param, 'providers.anthropic.api_key');
});

test('docs/openapi.json is a valid OpenAPI 3.1 document', () => {
  assert.equal(OPENAPI.openapi, '3.1.0');
  assert.deepEqual(validateDocument(), []);
});

test('GET /admin/openapi.json serves docs/openapi.json, behind the admin token', async () => {
  const r = await gw.admin('GET', '/admin/openapi.json');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.deepEqual(r.json, JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')));
  assert.equal((await gw.admin('GET', '/admin/openapi.json', undefined, { token: null })).status, 401);
});

test('the document covers every admin route', () => {
  const routes = [
    ['get', '/admin/tenants'],
    ['put', '/admin/tenants/{tenant_id}'], ['get', '/admin/tenants/{tenant_id}'], ['delete', '/admin/tenants/{tenant_id}'],
    ['post', '/admin/tenants/{tenant_id}/keys'], ['get', '/admin/tenants/{tenant_id}/keys'],
    ['delete', '/admin/tenants/{tenant_id}/keys/{key_id}'],
    ['get', '/admin/tenants/{tenant_id}/usage'],
    ['post', '/admin/tenants/{tenant_id}/mcp_servers/{server}/oauth/connect'],
    ['get', '/admin/tenants/{tenant_id}/mcp_servers/{server}/oauth'],
    ['delete', '/admin/tenants/{tenant_id}/mcp_servers/{server}/oauth'],
    ['get', '/admin/openapi.json'],
  ];
  for (const [m, p] of routes) assert.ok(OPENAPI.paths[p]?.[m], `${m.toUpperCase()} ${p} is documented`);
  assert.equal(findTemplate('/admin/tenants/acme/keys/key_1'), '/admin/tenants/{tenant_id}/keys/{key_id}');
  assert.equal(findTemplate('/admin/tenants?limit=2'), '/admin/tenants');
  const input = OPENAPI.components.schemas.TenantInput.properties;
  for (const f of ['providers', 'mcp_servers', 'allow_unmanaged_mcp_servers', 'rate_limit']) assert.ok(input[f], f);
  const server = OPENAPI.components.schemas.McpServerInput.properties;
  for (const f of ['url', 'auth', 'mode', 'service', 'allowed_tools', 'require_approval']) assert.ok(server[f], f);
  const auth = JSON.stringify(OPENAPI.components.schemas.McpAuthInput) + JSON.stringify(OPENAPI.components.schemas.OAuth2Input);
  for (const t of ['none', 'bearer', 'headers', 'oauth2']) assert.ok(auth.includes(`"const":"${t}"`), t);
});

test('the response check catches answers that do not match the document', async () => {
  const r = await gw.admin('GET', '/admin/tenants?limit=2');
  const changed = (text) => checkAdminResponse('GET', '/admin/tenants?limit=2', { ...r, text });
  assert.deepEqual(changed(r.text), []);
  assert.notDeepEqual(changed(JSON.stringify({ tenants: [] })), [], 'cursor missing');
  assert.notDeepEqual(changed(JSON.stringify({ ...r.json, extra: 1 })), [], 'unknown field');
  assert.notDeepEqual(changed(JSON.stringify({ tenants: [{ tenant_id: 'a b' }], cursor: null })), [], 'bad id');
  assert.notDeepEqual(checkAdminResponse('GET', '/admin/tenants', { ...r, status: 418 }), [], 'undocumented status');
  const noId = new Headers(r.headers);
  noId.delete('mcpgate-request-id');
  assert.notDeepEqual(checkAdminResponse('GET', '/admin/tenants', { ...r, headers: noId }), [], 'request id missing');
  const del = { status: 204, headers: r.headers, text: '{}' };
  assert.notDeepEqual(checkAdminResponse('DELETE', '/admin/tenants/x', del), [], '204 with a body');
});

test('no secret leaked to clients, KV or the log', async () => {
  await assertNoLeaks(stack);
});
