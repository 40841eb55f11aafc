// Admin API through the real gateway: tenants, validation, redaction, keys,
// revocation taking effect at once.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { test, startStack, newSecret, assertNoLeaks, findSecrets, SECRETS } from './harness.mjs';
import { assertNothingGatewaySideUpstream } from './setup.mjs';

let stack;
let gw;
let TOKEN;
let HVAL;
let OKEY;
let AKEY;
let OKEY2;

before(async () => {
  TOKEN = newSecret('admin test mcp token', 'mcp_tok_');
  HVAL = newSecret('admin test header', 'hdr_');
  stack = await startStack({ mcp: { crm: { type: 'bearer', token: TOKEN }, files: { type: 'headers', headers: { 'X-Api-Key': HVAL } } } });
  gw = stack.gw;
  OKEY = stack.openaiKey('admin tenant');
  AKEY = stack.anthropicKey('admin tenant');
  OKEY2 = stack.openaiKey('admin tenant 2');
});

after(async () => {
  await stack?.close();
});

const tenantBody = () => ({
  providers: { openai: { api_key: OKEY }, anthropic: { api_key: AKEY } },
  mcp_servers: {
    crm: { url: stack.servers.crm.url, auth: { type: 'bearer', token: TOKEN }, allowed_tools: ['search', 'lookup'], require_approval: 'never' },
    files: { url: stack.servers.files.url, auth: { type: 'headers', headers: { 'X-Api-Key': HVAL } } },
    public: { url: 'https://docs.example.com/mcp', auth: { type: 'none' } },
  },
  allow_unmanaged_mcp_servers: false,
});

/** Walks JSON and returns the string values found at paths whose last key matches. */
function valuesAt(obj, pathMatch, p = '') {
  const out = [];
  if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) {
      const q = `${p}/${k}`;
      if (typeof v === 'string' && pathMatch.test(q)) out.push([q, v]);
      out.push(...valuesAt(v, pathMatch, q));
    }
  }
  return out;
}

const SECRET_PATHS = /\/(api_key|token|X-Api-Key)$/;

test('PUT creates a tenant and answers it redacted; GET shows every secret as "[redacted]"', async () => {
  const r = await gw.admin('PUT', '/admin/tenants/acme-1', tenantBody());
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /application\/json/);
  assert.deepEqual(findSecrets(r.text), []);
  const g = await gw.getTenant('acme-1');
  assert.equal(g.status, 200);
  assert.deepEqual(findSecrets(g.text), []);
  for (const doc of [r.json, g.json]) {
    const secrets = valuesAt(doc, SECRET_PATHS);
    assert.deepEqual(secrets.map(([p]) => p).sort(), [
      '/mcp_servers/crm/auth/token',
      '/mcp_servers/files/auth/headers/X-Api-Key',
      '/providers/anthropic/api_key',
      '/providers/openai/api_key',
    ]);
    for (const [p, v] of secrets) assert.equal(v, '[redacted]', p);
    // Non-secret configuration is shown as stored.
    assert.equal(doc.mcp_servers.crm.url, stack.servers.crm.url);
    assert.deepEqual(doc.mcp_servers.crm.allowed_tools, ['search', 'lookup']);
    assert.equal(doc.mcp_servers.crm.require_approval, 'never');
    assert.equal(doc.mcp_servers.crm.auth.type, 'bearer');
    assert.equal(doc.mcp_servers.files.auth.type, 'headers');
    assert.equal(doc.mcp_servers.public.auth.type, 'none');
    assert.equal(doc.mcp_servers.public.url, 'https://docs.example.com/mcp');
  }
});

test('PUT replaces the whole tenant', async () => {
  const b = { providers: { openai: { api_key: OKEY2 } } };
  assert.equal((await gw.admin('PUT', '/admin/tenants/acme-1', b)).status, 200);
  const g = await gw.getTenant('acme-1');
  assert.equal(g.status, 200);
  assert.equal(g.json.providers.anthropic ?? null, null);
  assert.ok(!g.json.mcp_servers || Object.keys(g.json.mcp_servers).length === 0);
  assert.equal(g.json.providers.openai.api_key, '[redacted]');
  // The new provider key is used.
  const { key } = await gw.createKey('acme-1');
  stack.reset();
  const m = await gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(m.status, 200);
  assert.equal(stack.openaiEmu.requests.at(-1).headers.authorization, `Bearer ${OKEY2}`);
  // Restore for the next tests.
  assert.equal((await gw.admin('PUT', '/admin/tenants/acme-1', tenantBody())).status, 200);
});

test('admin auth: wrong or missing token is 401 in the OpenAI shape', async () => {
  for (const token of [null, 'wrong-admin-token', `${gw.adminToken}x`, gw.adminToken.slice(0, -1)]) {
    const r = await gw.admin('GET', '/admin/tenants/acme-1', undefined, { token });
    assert.equal(r.status, 401, `token ${token}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
    const w = await gw.admin('PUT', '/admin/tenants/intruder', tenantBody(), { token });
    assert.equal(w.status, 401);
  }
  assert.equal((await gw.getTenant('intruder')).status, 404, 'nothing was written without the token');
  // A gateway key is not an admin token.
  const { key } = await gw.createKey('acme-1');
  assert.equal((await gw.admin('GET', '/admin/tenants/acme-1', undefined, { token: key })).status, 401);
});

test('validation errors are 400 and name the offending field', async () => {
  const cases = [
    [{ ...tenantBody(), surprise: 1 }, /surprise/],
    [{ ...tenantBody(), providers: { openai: { api_key: OKEY, extra_field: 1 } } }, /extra_field/],
    [{ ...tenantBody(), providers: { mistral: { api_key: 'x' } } }, /mistral/],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'none' }, colour: 'red' } } }, /colour/],
    [{ mcp_servers: { crm: { url: 'ftp://a.example/mcp', auth: { type: 'none' } } } }, /url/],
    [{ mcp_servers: { crm: { url: 'http://mcp.example.com/mcp', auth: { type: 'none' } } } }, /url/],
    [{ mcp_servers: { crm: { url: 'not a url', auth: { type: 'none' } } } }, /url/],
    [{ mcp_servers: { crm: { url: 'https://user:pw@a.example/mcp', auth: { type: 'none' } } } }, /url/],
    [{ mcp_servers: { 'bad name!': { url: 'https://a.example/mcp', auth: { type: 'none' } } } }, /bad name!|name/],
    [{ mcp_servers: { ['x'.repeat(65)]: { url: 'https://a.example/mcp', auth: { type: 'none' } } } }, /name|x{65}/],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'kerberos' } } } }, /type|auth/],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'bearer' } } } }, /token/],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'headers', headers: { 'X Bad': 'v' } } } } }, /X Bad|header/i],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'headers', headers: { 'X-Ok': 'a\r\nInjected: 1' } } } } }, /X-Ok|header/i],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'headers', headers: { 'X-Ok': 'a\u0000b' } } } } }, /X-Ok|header/i],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'none' }, require_approval: 'sometimes' } } }, /require_approval/],
    [{ mcp_servers: { crm: { url: 'https://a.example/mcp', auth: { type: 'none' }, allowed_tools: 'search' } } }, /allowed_tools/],
    [{ allow_unmanaged_mcp_servers: 'yes' }, /allow_unmanaged_mcp_servers/],
    [{ providers: { openai: { api_key: 5 } } }, /api_key/],
  ];
  for (const [body, re] of cases) {
    const r = await gw.admin('PUT', '/admin/tenants/invalid-1', { providers: { openai: { api_key: OKEY } }, ...body });
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, re, JSON.stringify(body));
    assert.deepEqual(findSecrets(r.text), []);
  }
  for (const raw of ['{"providers":', '[]', '"x"', '{"providers":{},"providers":{}}']) {
    const r = await gw.admin('PUT', '/admin/tenants/invalid-1', raw);
    assert.equal(r.status, 400, `${raw} -> ${r.status}`);
  }
  assert.equal((await gw.getTenant('invalid-1')).status, 404, 'nothing was stored');
  // Bad tenant ids.
  for (const id of ['x'.repeat(65), 'a.b', 'a%20b']) {
    const r = await gw.admin('PUT', `/admin/tenants/${id}`, { providers: { openai: { api_key: OKEY } } });
    assert.ok(r.status === 400 || r.status === 404, `${id} -> ${r.status}`);
  }
  assert.equal((await gw.admin('PUT', `/admin/tenants/${'y'.repeat(64)}`, { providers: { openai: { api_key: OKEY } } })).status, 200, '64 chars is fine');
  // Loopback http:// is accepted under ALLOW_INSECURE_MCP_URLS.
  const ok = await gw.admin('PUT', '/admin/tenants/loopback', { providers: { openai: { api_key: OKEY } }, mcp_servers: { a: { url: 'http://127.0.0.1:9/mcp', auth: { type: 'none' } }, b: { url: 'http://localhost:9/mcp', auth: { type: 'none' } } } });
  assert.equal(ok.status, 200, ok.text);
});

test('GET/DELETE unknown tenants are 404', async () => {
  assert.equal((await gw.getTenant('ghost')).status, 404);
  const d = await gw.deleteTenant('ghost');
  assert.ok(d.status === 404 || d.status === 204, `DELETE ghost -> ${d.status}`);
  const k = await gw.admin('POST', '/admin/tenants/ghost/keys');
  assert.equal(k.status, 404);
});

test('keys: POST issues mgk_ keys, GET lists no key material, DELETE revokes at once', async () => {
  const a = await gw.createKey('acme-1');
  assert.match(a.id, /^key_/);
  assert.match(a.key, /^mgk_/);
  assert.equal(a.tenant_id, 'acme-1');
  assert.ok(a.created_at !== undefined && a.created_at !== null);
  const b = await gw.createKey('acme-1');
  assert.notEqual(a.key, b.key);
  assert.notEqual(a.id, b.id);

  const list = await gw.admin('GET', '/admin/tenants/acme-1/keys');
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(a.key) && !list.text.includes(b.key), 'no key material in the list');
  assert.ok(!list.text.includes('mgk_'), 'no key material in the list');
  assert.ok(list.text.includes(a.id) && list.text.includes(b.id));

  const use = (key) => gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
  assert.equal((await use(a.key)).status, 200);
  assert.equal((await use(b.key)).status, 200);
  const d = await gw.admin('DELETE', `/admin/tenants/acme-1/keys/${a.id}`);
  assert.equal(d.status, 204);
  stack.reset();
  const gone = await use(a.key);
  assert.equal(gone.status, 401);
  assert.equal(gone.json.error.code, 'invalid_api_key');
  assert.equal(stack.providers.all().length, 0);
  assert.equal((await use(b.key)).status, 200, 'the other key still works');
  const list2 = await gw.admin('GET', '/admin/tenants/acme-1/keys');
  assert.ok(!list2.text.includes(a.id));
  assert.ok(list2.text.includes(b.id));
});

test("deleting a key through another tenant's path is 404 and the key keeps working", async () => {
  assert.equal((await gw.admin('PUT', '/admin/tenants/other-1', { providers: { openai: { api_key: OKEY2 } } })).status, 200);
  const k = await gw.createKey('acme-1');
  const r = await gw.admin('DELETE', `/admin/tenants/other-1/keys/${k.id}`);
  assert.equal(r.status, 404);
  assert.equal(r.json.error.type, 'not_found_error');
  assert.equal((await gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${k.key}` } })).status, 200);
  const r2 = await gw.admin('DELETE', '/admin/tenants/acme-1/keys/key_doesnotexist');
  assert.equal(r2.status, 404);
});

test('a gateway key works for both providers and injects the stored MCP credentials', async () => {
  const { key } = await gw.createKey('acme-1');
  stack.reset();
  const r = await gw.openai(key).responses.create({ model: 'gpt-4.1', input: 'call search query=adm', tools: [{ type: 'mcp', server_label: 'crm' }] });
  assert.equal(r.output[1].type, 'mcp_call');
  assert.equal(stack.servers.crm.toolCalls('search')[0].credential, TOKEN);
  const m = await gw.anthropic(key).beta.messages.create({
    model: 'claude-sonnet-4-6', max_tokens: 32, betas: ['mcp-client-2025-04-04'],
    messages: [{ role: 'user', content: 'call lookup id=1' }],
    mcp_servers: [{ type: 'url', name: 'crm', url: 'https://placeholder.invalid/mcp' }],
  });
  assert.equal(m.content[1].name, 'lookup');
  assert.equal(stack.servers.crm.toolCalls('lookup')[0].credential, TOKEN);
  assert.equal(stack.anthropicEmu.requests.at(-1).headers['x-api-key'], AKEY);
});

test('DELETE tenant: 204, its keys stop at once, GET is 404', async () => {
  assert.equal((await gw.admin('PUT', '/admin/tenants/doomed', { providers: { openai: { api_key: OKEY } } })).status, 200);
  const k1 = await gw.createKey('doomed');
  const k2 = await gw.createKey('doomed');
  const use = (key) => gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
  assert.equal((await use(k1.key)).status, 200);
  const d = await gw.deleteTenant('doomed');
  assert.equal(d.status, 204);
  stack.reset();
  assert.equal((await use(k1.key)).status, 401);
  assert.equal((await use(k2.key)).status, 401);
  assert.equal(stack.providers.all().length, 0);
  assert.equal((await gw.getTenant('doomed')).status, 404);
  // Re-creating a tenant with the same id does not revive the old keys.
  assert.equal((await gw.admin('PUT', '/admin/tenants/doomed', { providers: { openai: { api_key: OKEY } } })).status, 200);
  assert.equal((await use(k1.key)).status, 401);
});

test('healthz answers without auth', async () => {
  const h = await gw.request('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { status: 'ok' });
});

test('no secret leaked to clients, upstream, KV or the log', async () => {
  assert.ok([...SECRETS.values()].some((l) => l.startsWith('gateway key')));
  assertNothingGatewaySideUpstream(stack);
  await assertNoLeaks(stack);
});
