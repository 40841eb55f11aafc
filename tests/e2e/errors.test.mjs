// Every row of the error table (README "Errors"), in both wire shapes, through the
// real gateway. Each rejected request must reach neither provider nor MCP server.
// This gateway runs with a small MAX_BODY_BYTES to test 413 cheaply; the
// upstream-unreachable rows run last, after the emulators are shut down.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';
import { test, rejects, assertNoLeaks, SEEN } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream } from './setup.mjs';

const MAX = 65536;
let S;
let stack;
let gw;

before(async () => {
  S = await standardStack({ vars: { MAX_BODY_BYTES: String(MAX) } });
  ({ stack, gw } = S);
});

after(async () => {
  await stack?.close();
});

const V = '2023-06-01';
const oaiAuth = (k) => ({ authorization: `Bearer ${k}` });
const antAuth = (k) => ({ 'x-api-key': k, 'anthropic-version': V });
const MODEL = 'claude-sonnet-4-6';

/** Checks a gateway-made error: status, wire shape, type (and code), no upstream traffic. */
function checkError(r, { status, shape, type, code, retry = status < 500, mentions }) {
  assert.equal(r.status, status, `${r.status} ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  const j = r.json;
  assert.ok(j, `JSON body: ${r.text}`);
  if (shape === 'openai') {
    assert.deepEqual(Object.keys(j), ['error']);
    assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(j.error.type, type);
    if (code !== undefined) assert.equal(j.error.code, code);
    assert.equal(typeof j.error.message, 'string');
    assert.ok(j.error.message.length > 0);
  } else {
    assert.equal(j.type, 'error');
    assert.equal(j.error.type, type);
    assert.equal(typeof j.error.message, 'string');
    assert.ok(j.error.message.length > 0);
  }
  if (mentions) assert.match(j.error.message, mentions);
  if (retry) assert.equal(r.headers.get('x-should-retry'), 'false', 'x-should-retry: false on an error retrying cannot fix');
}

/** Sends a request that the gateway must reject itself, and checks nothing went upstream. */
async function rejected(method, path, opts, expect) {
  stack.reset();
  const r = await gw.request(method, path, opts);
  try {
    checkError(r, expect);
  } catch (e) {
    throw new Error(`${method} ${path} ${JSON.stringify(opts.body)?.slice(0, 200)} -> ${r.status} ${r.text.slice(0, 300)}\n${e.message}`, { cause: e });
  }
  assert.equal(stack.providers.all().length, 0, `${method} ${path} reached the provider`);
  for (const s of Object.values(S.servers)) assert.equal(s.calls.length + s.rejections.length, 0, `${method} ${path} reached MCP server ${s.name}`);
  return r;
}

/** A request with a literal path (no client-side URL normalisation). */
function rawRequest(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, method, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        SEEN.push({ method, url: path, status: res.statusCode, headers: [...h.entries()], body: Buffer.from(text), allowSecrets: [], done: Promise.resolve() });
        resolve({ status: res.statusCode, headers: h, text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const OAI_401 = { status: 401, shape: 'openai', type: 'invalid_request_error', code: 'invalid_api_key' };
const ANT_401 = { status: 401, shape: 'anthropic', type: 'authentication_error' };
const OAI_400 = { status: 400, shape: 'openai', type: 'invalid_request_error' };
const ANT_400 = { status: 400, shape: 'anthropic', type: 'invalid_request_error' };

test('401: missing, unknown, malformed or conflicting gateway keys (both shapes)', async () => {
  const body = { model: 'gpt-4.1', input: 'hi' };
  const abody = { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };
  await rejected('POST', '/openai/v1/responses', { body }, OAI_401);
  await rejected('GET', '/openai/v1/models', {}, OAI_401);
  await rejected('POST', '/openai/v1/chat/completions', { headers: oaiAuth('mgk_unknown_key_0000000000000000'), body }, OAI_401);
  await rejected('POST', '/openai/v1/responses', { headers: { authorization: `Basic ${S.keys.acme}` }, body }, OAI_401);
  await rejected('POST', '/openai/v1/responses', { headers: { authorization: 'Bearer ' }, body }, OAI_401);
  await rejected('POST', '/openai/v1/responses', { headers: { authorization: `Bearer ${S.keys.acme}`, 'x-api-key': S.keys.globex }, body }, OAI_401);
  await rejected('POST', '/anthropic/v1/messages', { headers: { 'anthropic-version': V }, body: abody }, ANT_401);
  await rejected('POST', '/anthropic/v1/messages', { headers: antAuth('mgk_nope'), body: abody }, ANT_401);
  await rejected('POST', '/anthropic/v1/messages/count_tokens', { headers: antAuth('sk-ant-api03-not-a-gateway-key'), body: abody }, ANT_401);
  await rejected('POST', '/anthropic/v1/messages', { headers: { ...antAuth(S.keys.acme), authorization: `Bearer ${S.keys.globex}` }, body: abody }, ANT_401);
  // A provider key is not a gateway key.
  await rejected('GET', '/openai/v1/models', { headers: oaiAuth(S.pk.acmeOpenai) }, OAI_401);

  // The SDKs read them as authentication errors.
  stack.reset();
  const oe = await rejects(gw.openai('mgk_wrong').responses.create(body));
  assert.ok(oe instanceof OpenAI.AuthenticationError);
  assert.equal(oe.status, 401);
  assert.equal(oe.type, 'invalid_request_error');
  assert.equal(oe.code, 'invalid_api_key');
  const ae = await rejects(gw.anthropic('mgk_wrong').messages.create(abody));
  assert.ok(ae instanceof Anthropic.AuthenticationError);
  assert.equal(ae.status, 401);
  assert.equal(ae.type, 'authentication_error');
  assert.equal(ae.error.error.type, 'authentication_error');
  assert.equal(stack.providers.all().length, 0);
});

test('400: malformed JSON, non-object bodies and duplicate keys on every rewritten route', async () => {
  const routes = [
    ['/openai/v1/responses', oaiAuth(S.keys.acme), OAI_400],
    ['/anthropic/v1/messages', antAuth(S.keys.acme), ANT_400],
    ['/anthropic/v1/messages/count_tokens', antAuth(S.keys.acme), ANT_400],
    ['/anthropic/v1/messages?beta=true', antAuth(S.keys.acme), ANT_400],
  ];
  const bodies = [
    '{"model": "x", ',
    'not json at all',
    '[{"model":"x"}]',
    '"a string"',
    'null',
    '',
    '{"model":"a","model":"b","input":"x","messages":[],"max_tokens":1}',
    '{"model":"a","input":"x","messages":[],"max_tokens":1,"metadata":{"k":1,"k":2}}',
    '{"model":"a","input":"x","messages":[],"max_tokens":1,"tools":[{"type":"mcp","type":"mcp","server_label":"crm"}]}',
  ];
  for (const [path, headers, expect] of routes) {
    for (const body of bodies) {
      await rejected('POST', path, { headers: { ...headers, 'content-type': 'application/json' }, body }, expect);
    }
  }
});

test('400: tools / mcp_servers of the wrong type or shape; null counts as absent', async () => {
  const o = (extra) => ({ model: 'gpt-4.1', input: 'x', ...extra });
  const a = (extra) => ({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], ...extra });
  const OH = oaiAuth(S.keys.acme);
  const AH = { ...antAuth(S.keys.acme), 'anthropic-beta': MCP_BETA_OLD };
  for (const tools of ['mcp', { type: 'mcp' }, [42], [{ type: 'mcp', server_label: 7 }], [{ type: 'mcp' }], [{ type: 'mcp', server_label: 'crm', headers: 'x' }]]) {
    await rejected('POST', '/openai/v1/responses', { headers: OH, body: o({ tools }) }, OAI_400);
  }
  for (const mcp_servers of ['crm', { name: 'crm' }, ['crm'], [{ type: 'url', name: 5 }], [{ type: 'url', url: 'https://x.example/mcp' }]]) {
    await rejected('POST', '/anthropic/v1/messages', { headers: AH, body: a({ mcp_servers }) }, ANT_400);
    await rejected('POST', '/anthropic/v1/messages/count_tokens', { headers: AH, body: a({ mcp_servers }) }, ANT_400);
  }
  await rejected('POST', '/anthropic/v1/messages', { headers: AH, body: a({ tools: 'x' }) }, ANT_400);

  stack.reset();
  const r1 = await gw.request('POST', '/openai/v1/responses', { headers: OH, body: o({ tools: null }) });
  assert.equal(r1.status, 200, r1.text);
  const r2 = await gw.request('POST', '/anthropic/v1/messages', { headers: antAuth(S.keys.acme), body: a({ mcp_servers: null, tools: null }) });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(stack.providers.all().length, 2);
});

test('400: unknown or unmanaged MCP server labels, naming the server', async () => {
  await rejected('POST', '/openai/v1/responses', {
    headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'nosuchserver' }] },
  }, { ...OAI_400, mentions: /nosuchserver/ });
  await rejected('POST', '/openai/v1/responses', {
    headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'elsewhere', server_url: 'https://mcp.elsewhere.example/mcp' }] },
  }, { ...OAI_400, mentions: /elsewhere/ });
  await rejected('POST', '/anthropic/v1/messages', {
    headers: { ...antAuth(S.keys.acme), 'anthropic-beta': MCP_BETA_OLD },
    body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], mcp_servers: [{ type: 'url', name: 'nosuchserver', url: 'https://mcp.elsewhere.example/mcp' }] },
  }, { ...ANT_400, mentions: /nosuchserver/ });
  // globex has crm but not strict.
  await rejected('POST', '/openai/v1/responses', {
    headers: oaiAuth(S.keys.globex), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'strict' }] },
  }, { ...OAI_400, mentions: /strict/ });
  // The SDK sees a BadRequestError.
  const e = await rejects(gw.openai(S.keys.acme).responses.create({ model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'nosuchserver' }] }));
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.type, 'invalid_request_error');
});

test('400: client-supplied location or credentials for a managed server', async () => {
  const t = (extra) => ({ model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', ...extra }] });
  const cases = [
    { server_url: 'https://evil.example/mcp' },
    { server_url: S.servers.crm.url },
    { headers: { 'X-Api-Key': 'client-value' } },
    { headers: { Authorization: 'Bearer client-token' } },
    { authorization: 'client-token' },
    { connector_id: 'connector_gmail' },
    { tunnel_id: 'tunnel_0123456789abcdef0123456789abcdef' },
  ];
  for (const extra of cases) {
    await rejected('POST', '/openai/v1/responses', { headers: oaiAuth(S.keys.acme), body: t(extra) }, { ...OAI_400, mentions: /crm|server_url|headers|authorization|connector_id|tunnel_id/ });
  }
  const a = (srv, beta = MCP_BETA_OLD, tools) => ({
    headers: { ...antAuth(S.keys.acme), 'anthropic-beta': beta },
    body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], mcp_servers: [srv], ...(tools ? { tools } : {}) },
  });
  await rejected('POST', '/anthropic/v1/messages', a({ type: 'url', name: 'crm', url: 'https://x.example/mcp', authorization_token: 'client-token' }), { ...ANT_400, mentions: /crm|authorization_token/ });
  await rejected('POST', '/anthropic/v1/messages/count_tokens', a({ type: 'url', name: 'crm', url: 'https://x.example/mcp', authorization_token: 'client-token' }), { ...ANT_400, mentions: /crm|authorization_token/ });
  await rejected('POST', '/anthropic/v1/messages', a({ type: 'url', name: 'crm', url: 'https://x.example/mcp', authorization_token: 'client-token' }, MCP_BETA_NEW, [{ type: 'mcp_toolset', mcp_server_name: 'crm' }]), ANT_400);
  // Header-style credentials cannot be sent to Anthropic.
  await rejected('POST', '/anthropic/v1/messages', a({ type: 'url', name: 'files', url: 'https://x.example/mcp' }), { ...ANT_400, mentions: /files/ });
  await rejected('POST', '/anthropic/v1/messages/count_tokens', a({ type: 'url', name: 'files', url: 'https://x.example/mcp' }), { ...ANT_400, mentions: /files/ });
  const e = await rejects(gw.anthropic(S.keys.acme).beta.messages.create({
    model: MODEL, max_tokens: 5, betas: [MCP_BETA_OLD], messages: [{ role: 'user', content: 'x' }],
    mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x.example/mcp', authorization_token: 'client-token' }],
  }));
  assert.ok(e instanceof Anthropic.BadRequestError);
  assert.equal(e.type, 'invalid_request_error');
});

test('400: invalid require_approval, allowed_tools, tool_configuration, mcp_toolset', async () => {
  const t = (extra) => ({ headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', ...extra }] } });
  for (const extra of [
    { require_approval: 'sometimes' }, { require_approval: 5 }, { require_approval: { always: 'x' } },
    { allowed_tools: 'search' }, { allowed_tools: [1, 2] }, { allowed_tools: { tool_names: 'search' } },
  ]) {
    await rejected('POST', '/openai/v1/responses', t(extra), OAI_400);
  }
  const a = (srv, beta, tools) => ({
    headers: { ...antAuth(S.keys.acme), 'anthropic-beta': beta },
    body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x.example/mcp', ...srv }], ...(tools ? { tools } : {}) },
  });
  for (const tc of ['yes', { allowed_tools: 'search' }, { enabled: 'true' }, { allowed_tools: [1] }]) {
    await rejected('POST', '/anthropic/v1/messages', a({ tool_configuration: tc }, MCP_BETA_OLD), ANT_400);
  }
  for (const ts of [
    { type: 'mcp_toolset', mcp_server_name: 'crm', configs: 'x' },
    { type: 'mcp_toolset', mcp_server_name: 'crm', default_config: 'x' },
    { type: 'mcp_toolset', mcp_server_name: 'crm', configs: { search: { enabled: 'yes' } } },
    { type: 'mcp_toolset', mcp_server_name: 5 },
  ]) {
    await rejected('POST', '/anthropic/v1/messages', a({}, MCP_BETA_NEW, [ts]), ANT_400);
  }
});

test('413: bodies over MAX_BODY_BYTES, rewritten and pass-through routes, both shapes', async () => {
  const pad = 'x'.repeat(MAX + 1);
  const OAI_413 = { status: 413, shape: 'openai', type: 'invalid_request_error' };
  const ANT_413 = { status: 413, shape: 'anthropic', type: 'request_too_large' };
  await rejected('POST', '/openai/v1/responses', { headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: pad } }, OAI_413);
  await rejected('POST', '/openai/v1/chat/completions', { headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', messages: [{ role: 'user', content: pad }] } }, OAI_413);
  const abody = { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: pad }] };
  await rejected('POST', '/anthropic/v1/messages', { headers: antAuth(S.keys.acme), body: abody }, ANT_413);
  await rejected('POST', '/anthropic/v1/messages/count_tokens', { headers: antAuth(S.keys.acme), body: abody }, ANT_413);
  const ae = await rejects(gw.anthropic(S.keys.acme).messages.create(abody));
  assert.equal(ae.status, 413);
  assert.equal(ae.type, 'request_too_large');
  // Just under the limit still goes through.
  stack.reset();
  const ok = await gw.request('POST', '/openai/v1/chat/completions', { headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'y'.repeat(MAX - 200) }] } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(stack.providers.all().length, 1);
});

test('403: tenant without a key for the provider (both shapes)', async () => {
  const OAI_403 = { status: 403, shape: 'openai', type: 'permission_error' };
  const ANT_403 = { status: 403, shape: 'anthropic', type: 'permission_error' };
  await rejected('POST', '/openai/v1/responses', { headers: oaiAuth(S.keys.antonly), body: { model: 'gpt-4.1', input: 'x' } }, OAI_403);
  await rejected('GET', '/openai/v1/models', { headers: oaiAuth(S.keys.antonly) }, OAI_403);
  await rejected('POST', '/anthropic/v1/messages', { headers: antAuth(S.keys.oaionly), body: { model: MODEL, max_tokens: 5, messages: [] } }, ANT_403);
  await rejected('POST', '/anthropic/v1/messages/count_tokens', { headers: antAuth(S.keys.oaionly), body: { model: MODEL, messages: [] } }, ANT_403);
  const oe = await rejects(gw.openai(S.keys.antonly).models.list());
  assert.ok(oe instanceof OpenAI.PermissionDeniedError);
  const ae = await rejects(gw.anthropic(S.keys.oaionly).messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(ae instanceof Anthropic.PermissionDeniedError);
  assert.equal(ae.type, 'permission_error');
  // The keys still work for the provider they have.
  stack.reset();
  assert.equal((await gw.request('GET', '/openai/v1/models', { headers: oaiAuth(S.keys.oaionly) })).status, 200);
});

test('404: unknown routes, and paths that would leave {BASE_URL}/v1/', async () => {
  const OAI_404 = { status: 404, shape: 'openai', type: 'not_found_error' };
  const ANT_404 = { status: 404, shape: 'anthropic', type: 'not_found_error' };
  await rejected('GET', '/nope', {}, OAI_404);
  await rejected('POST', '/v1/responses', { headers: oaiAuth(S.keys.acme), body: { model: 'x' } }, OAI_404);
  await rejected('GET', '/openai/v2/models', { headers: oaiAuth(S.keys.acme) }, OAI_404);
  await rejected('GET', '/openai/models', { headers: oaiAuth(S.keys.acme) }, OAI_404);
  await rejected('POST', '/anthropic/v2/messages', { headers: antAuth(S.keys.acme), body: {} }, ANT_404);
  await rejected('POST', '/anthropic/messages', { headers: antAuth(S.keys.acme), body: {} }, ANT_404);
  const e = await rejects(new OpenAI({ baseURL: `${gw.url}/openai/v9`, apiKey: S.keys.acme, maxRetries: 0 }).models.list());
  assert.ok(e instanceof OpenAI.NotFoundError);

  // Literal paths, not normalised by the client.
  const escapes = [
    ['/openai/v1/models%2F..%2F..%2Fhealthz', oaiAuth(S.keys.acme), 'openai'],
    ['/openai/v1/..%2F..%2Fhealthz', oaiAuth(S.keys.acme), 'openai'],
    ['/openai/v1/%2e%2e/%2e%2e/nowhere', oaiAuth(S.keys.acme), 'openai'],
    ['/openai/v1/../../nowhere', oaiAuth(S.keys.acme), 'openai'],
    ['/openai/v1/%2E%2E%2Fx', oaiAuth(S.keys.acme), 'openai'],
    ['/anthropic/v1/messages%2F..%2F..%2F..%2Fx', antAuth(S.keys.acme), 'anthropic'],
    ['/anthropic/v1/%2e%2e%2fv2%2fmessages', antAuth(S.keys.acme), 'anthropic'],
  ];
  for (const [p, headers, shape] of escapes) {
    stack.reset();
    const r = await rawRequest('GET', p, headers);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.text}`);
    assert.equal(r.json?.error?.type, 'not_found_error', `${p}: ${r.text}`);
    if (shape === 'anthropic') assert.equal(r.json.type, 'error', p);
    const outside = stack.providers.all().filter((u) => !u.path.startsWith('/v1/') || u.path.includes('..') || /%2f/i.test(u.url));
    assert.deepEqual(outside.map((u) => u.url), [], `${p} reached the provider outside /v1/`);
    assert.equal(stack.providers.all().length, 0, `${p} reached the provider`);
  }
});

test('405: wrong method on a known route', async () => {
  const OAI_405 = { status: 405, shape: 'openai', type: 'invalid_request_error' };
  await rejected('POST', '/healthz', {}, OAI_405);
  await rejected('DELETE', '/healthz', {}, OAI_405);
  await rejected('PATCH', '/admin/tenants/acme', { headers: { authorization: `Bearer ${gw.adminToken}` }, body: {} }, OAI_405);
  await rejected('PUT', '/admin/tenants/acme/keys', { headers: { authorization: `Bearer ${gw.adminToken}` }, body: {} }, OAI_405);
  await rejected('POST', '/admin/tenants/acme', { headers: { authorization: `Bearer ${gw.adminToken}` }, body: {} }, OAI_405);
  // Anthropic shape: a GET on the Messages endpoint (whether the gateway or the provider answers it).
  stack.reset();
  const r = await gw.request('GET', '/anthropic/v1/messages', { headers: antAuth(S.keys.acme) });
  assert.equal(r.status, 405, r.text);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'invalid_request_error');
  const r2 = await gw.request('GET', '/openai/v1/chat/completions', { headers: oaiAuth(S.keys.acme) });
  assert.equal(r2.status, 405, r2.text);
  assert.equal(r2.json.error.type, 'invalid_request_error');
  // The health check itself still answers.
  const h = await gw.request('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { status: 'ok' });
});

test('no gateway error is a 500, and none leaks a secret', async () => {
  for (const e of SEEN) assert.ok(e.status < 500, `${e.method} ${e.url} answered ${e.status}`);
  assertNothingGatewaySideUpstream(stack);
});

test('502: upstream unreachable (both shapes), after the emulators are shut down', async () => {
  await stack.providers.close();
  const e1 = await gw.request('POST', '/openai/v1/responses', { headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: 'x' } });
  checkError(e1, { status: 502, shape: 'openai', type: 'api_error' });
  const e2 = await gw.request('GET', '/openai/v1/models', { headers: oaiAuth(S.keys.acme) });
  checkError(e2, { status: 502, shape: 'openai', type: 'api_error' });
  const e3 = await gw.request('POST', '/openai/v1/responses', { headers: oaiAuth(S.keys.acme), body: { model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: 'crm' }] } });
  checkError(e3, { status: 502, shape: 'openai', type: 'api_error' });
  const e4 = await gw.request('POST', '/anthropic/v1/messages', { headers: antAuth(S.keys.acme), body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } });
  checkError(e4, { status: 502, shape: 'anthropic', type: 'api_error' });
  const e5 = await gw.request('POST', '/anthropic/v1/messages/count_tokens', { headers: antAuth(S.keys.acme), body: { model: MODEL, messages: [{ role: 'user', content: 'x' }] } });
  checkError(e5, { status: 502, shape: 'anthropic', type: 'api_error' });
  const oe = await rejects(gw.openai(S.keys.acme).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(oe instanceof OpenAI.InternalServerError);
  assert.equal(oe.status, 502);
  const ae = await rejects(gw.anthropic(S.keys.acme).messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(ae instanceof Anthropic.InternalServerError);
  assert.equal(ae.status, 502);
  assert.equal(ae.type, 'api_error');
});

test('no secret leaked to clients, KV or the log', async () => {
  await assertNoLeaks(stack);
});
