// Anthropic routes through the real gateway: mcp_servers completion under both
// MCP betas, the beta flag added when missing, allowed tools, count_tokens,
// header handling, streaming.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { fingerprint } from '../emulators/mcp-server.mjs';
import { MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';
import { test, readSse, rejects, assertNoLeaks } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream, headerValues } from './setup.mjs';

let S;
let stack;
let gw;
let acme;
let globex;
const MODEL = 'claude-sonnet-4-6';
// Typed SDKs require `url`; the gateway replaces it for managed servers.
const PLACEHOLDER = 'https://placeholder.invalid/mcp';

before(async () => {
  S = await standardStack();
  ({ stack, gw } = S);
  acme = gw.anthropic(S.keys.acme);
  globex = gw.anthropic(S.keys.globex);
});

after(async () => {
  await stack?.close();
});

const lastMessagesReq = () => stack.anthropicEmu.requestsTo('/v1/messages').at(-1);
const server = (name, extra = {}) => ({ type: 'url', name, url: PLACEHOLDER, ...extra });
const user = (content) => [{ role: 'user', content }];
const betas = (rec) => (rec.headers['anthropic-beta'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);

test(`${MCP_BETA_OLD}: url and token injected, tool called with the tenant's token`, async () => {
  stack.reset();
  const m = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_OLD], messages: user('call whoami'), mcp_servers: [server('crm')],
  });
  assert.deepEqual(m.content.map((b) => b.type), ['text', 'mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.equal(m.content[1].server_name, 'crm');
  assert.equal(m.content[2].is_error, false);
  assert.deepEqual(JSON.parse(m.content[2].content[0].text), { server: 'crm', credential_fingerprint: fingerprint(S.TA) });
  assert.equal(S.servers.crm.toolCalls('whoami')[0].credential, S.TA);
  const up = lastMessagesReq();
  assert.deepEqual(headerValues(up, 'x-api-key'), [S.pk.acmeAnthropic]);
  assert.deepEqual(headerValues(up, 'authorization'), [], 'the gateway key is not forwarded in Authorization');
  assert.ok(betas(up).includes(MCP_BETA_OLD));
  assert.ok(!betas(up).includes(MCP_BETA_NEW), 'betas not mixed');
  const s = up.json.mcp_servers[0];
  assert.equal(s.url, S.servers.crm.url);
  assert.equal(s.authorization_token, S.TA);
  assert.ok(!JSON.stringify(m).includes(S.TA));
});

test(`${MCP_BETA_OLD}: allowed tools enforced through tool_configuration`, async () => {
  stack.reset();
  const m1 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_OLD], messages: user('call delete_everything'), mcp_servers: [server('crm')],
  });
  assert.match(m1.content.at(-1).text, /cannot call delete_everything/);
  // The client tries to enable it explicitly; the tenant list still wins.
  const m2 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_OLD], messages: user('call delete_everything'),
    mcp_servers: [server('crm', { tool_configuration: { enabled: true, allowed_tools: ['delete_everything', 'search'] } })],
  }).catch((e) => e);
  if (m2 instanceof Error) assert.equal(m2.status, 400);
  else assert.match(m2.content.at(-1).text, /cannot call delete_everything/);
  // Intersection: the client narrows to search.
  const m3 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_OLD], messages: user('call whoami'),
    mcp_servers: [server('crm', { tool_configuration: { allowed_tools: ['search'] } })],
  });
  assert.match(m3.content.at(-1).text, /cannot call whoami/);
  assert.equal(S.servers.crm.toolCalls('delete_everything').length, 0);
  assert.equal(S.servers.crm.toolCalls('whoami').length, 0);
});

test(`${MCP_BETA_NEW}: mcp_toolset shape, allowed tools enforced, tool called with the token`, async () => {
  stack.reset();
  const m1 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_NEW], messages: user('call search query=q7'),
    mcp_servers: [server('crm')], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm' }],
  });
  assert.equal(m1.content[1].name, 'search');
  assert.deepEqual(m1.content[1].input, { query: 'q7' });
  assert.equal(S.servers.crm.toolCalls('search')[0].credential, S.TA);
  const up = lastMessagesReq();
  assert.ok(betas(up).includes(MCP_BETA_NEW));
  assert.ok(!betas(up).includes(MCP_BETA_OLD), 'betas not mixed');
  assert.equal(up.json.mcp_servers[0].url, S.servers.crm.url);
  assert.equal(up.json.mcp_servers[0].authorization_token, S.TA);
  assert.equal(up.json.tools.filter((t) => t.type === 'mcp_toolset' && t.mcp_server_name === 'crm').length, 1);

  const m2 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_NEW], messages: user('call delete_everything'),
    mcp_servers: [server('crm')],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', configs: { delete_everything: { enabled: true } } }],
  }).catch((e) => e);
  if (m2 instanceof Error) assert.equal(m2.status, 400);
  else assert.match(m2.content.at(-1).text, /cannot call delete_everything/);
  // Client narrows with default_config.enabled:false + configs.
  const m3 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: [MCP_BETA_NEW], messages: user('call whoami'),
    mcp_servers: [server('crm')],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', default_config: { enabled: false }, configs: { lookup: { enabled: true } } }],
  });
  assert.match(m3.content.at(-1).text, /cannot call whoami/);
  assert.equal(S.servers.crm.toolCalls('delete_everything').length, 0);
  assert.equal(S.servers.crm.toolCalls('whoami').length, 0);
});

test('no MCP beta flag: the gateway adds one and keeps the client\'s other flags', async () => {
  stack.reset();
  // Non-beta client, no anthropic-beta header at all.
  const m1 = await acme.messages.create({ model: MODEL, max_tokens: 256, messages: user('call whoami'), mcp_servers: [server('crm')] });
  assert.equal(m1.content[1].type, 'mcp_tool_use');
  const up1 = lastMessagesReq();
  const b1 = betas(up1);
  assert.ok(b1.includes(MCP_BETA_OLD) || b1.includes(MCP_BETA_NEW), `anthropic-beta: ${up1.headers['anthropic-beta']}`);
  assert.equal(S.servers.crm.toolCalls('whoami')[0].credential, S.TA);
  // Beta client with other flags only.
  const m2 = await acme.beta.messages.create({
    model: MODEL, max_tokens: 256, betas: ['interleaved-thinking-2025-05-14', 'future-flag-2030-01-01'], messages: user('call lookup id=3'), mcp_servers: [server('crm')],
  });
  assert.deepEqual(JSON.parse(m2.content[2].content[0].text), { server: 'crm', id: '3', found: true });
  const b2 = betas(lastMessagesReq());
  assert.ok(b2.includes('interleaved-thinking-2025-05-14'));
  assert.ok(b2.includes('future-flag-2030-01-01'));
  assert.ok(b2.includes(MCP_BETA_OLD) || b2.includes(MCP_BETA_NEW));
  assert.equal(new Set(b2).size, b2.length, 'no duplicated flags');
  // Still allowed-tools enforced on the gateway-chosen beta.
  await acme.messages.create({ model: MODEL, max_tokens: 256, messages: user('call delete_everything'), mcp_servers: [server('crm')] });
  assert.equal(S.servers.crm.toolCalls('delete_everything').length, 0);
  // The beta added matches the body's shape: an mcp_toolset body needs 2025-11-20 ...
  const m3 = await acme.messages.create({
    model: MODEL, max_tokens: 256, messages: user('call search query=shape'), mcp_servers: [server('crm')],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm' }],
  });
  assert.equal(m3.content[1].name, 'search');
  assert.ok(betas(lastMessagesReq()).includes(MCP_BETA_NEW));
  // ... and a tool_configuration body needs 2025-04-04.
  const m4 = await acme.messages.create({
    model: MODEL, max_tokens: 256, messages: user('call lookup id=9'), mcp_servers: [server('crm', { tool_configuration: { enabled: true } })],
  });
  assert.equal(m4.content[1].name, 'lookup');
  assert.ok(betas(lastMessagesReq()).includes(MCP_BETA_OLD));
});

test('two tenants with the same server name each reach the MCP server with their own token', async () => {
  stack.reset();
  const ma = await acme.beta.messages.create({ model: MODEL, max_tokens: 64, betas: [MCP_BETA_OLD], messages: user('call whoami'), mcp_servers: [server('crm')] });
  const mb = await globex.beta.messages.create({ model: MODEL, max_tokens: 64, betas: [MCP_BETA_OLD], messages: user('call whoami'), mcp_servers: [server('crm')] });
  assert.equal(JSON.parse(ma.content[2].content[0].text).credential_fingerprint, fingerprint(S.TA));
  assert.equal(JSON.parse(mb.content[2].content[0].text).credential_fingerprint, fingerprint(S.TB));
  assert.deepEqual(S.servers.crm.toolCalls('whoami').map((c) => c.credential), [S.TA, S.TB]);
  assert.deepEqual(stack.anthropicEmu.requestsTo('/v1/messages').map((r) => r.headers['x-api-key']), [S.pk.acmeAnthropic, S.pk.globexAnthropic]);
});

test('a server without credentials gets no token; mixed servers each get theirs', async () => {
  stack.reset();
  const m = await acme.beta.messages.create({
    model: MODEL, max_tokens: 64, betas: [MCP_BETA_OLD], messages: user('call whoami on public'),
    mcp_servers: [server('crm'), server('public')],
  });
  assert.equal(m.content[1].server_name, 'public');
  const up = lastMessagesReq().json.mcp_servers;
  assert.equal(up.find((s) => s.name === 'public').url, S.servers.public.url);
  assert.ok(up.find((s) => s.name === 'public').authorization_token == null);
  assert.equal(up.find((s) => s.name === 'crm').authorization_token, S.TA);
});

test('header-style credentials cannot be expressed for Anthropic: 400 naming the server', async () => {
  stack.reset();
  const e = await rejects(acme.beta.messages.create({ model: MODEL, max_tokens: 64, betas: [MCP_BETA_OLD], messages: user('call whoami'), mcp_servers: [server('files')] }));
  assert.ok(e instanceof Anthropic.BadRequestError);
  assert.equal(e.status, 400);
  assert.equal(e.type, 'invalid_request_error');
  assert.match(e.message, /files/);
  assert.equal(stack.providers.all().length, 0);
  assert.equal(S.servers.files.calls.length, 0);
});

test('count_tokens: passthrough without MCP, rewritten with MCP servers', async () => {
  stack.reset();
  const c1 = await acme.messages.countTokens({ model: MODEL, messages: user('how many tokens is this') });
  assert.ok(c1.input_tokens > 0);
  const up1 = stack.anthropicEmu.requestsTo('/v1/messages/count_tokens').at(-1);
  assert.equal(up1.headers['x-api-key'], S.pk.acmeAnthropic);
  const c2 = await acme.beta.messages.countTokens({ model: MODEL, betas: [MCP_BETA_OLD], messages: user('how many tokens is this'), mcp_servers: [server('crm')] });
  assert.ok(c2.input_tokens > c1.input_tokens, 'the MCP tool definitions were counted');
  const up2 = stack.anthropicEmu.requestsTo('/v1/messages/count_tokens').at(-1);
  assert.equal(up2.json.mcp_servers[0].url, S.servers.crm.url);
  assert.equal(up2.json.mcp_servers[0].authorization_token, S.TA);
  assert.ok(S.servers.crm.calls.some((c) => c.method === 'tools/list' && c.credential === S.TA));
  // Beta count_tokens via raw fetch with the beta query string.
  const r = await gw.request('POST', '/anthropic/v1/messages/count_tokens?beta=true', {
    headers: { 'x-api-key': S.keys.acme, 'anthropic-version': '2023-06-01', 'anthropic-beta': `token-counting-2024-11-01,${MCP_BETA_NEW}` },
    body: { model: MODEL, messages: user('count'), mcp_servers: [server('crm')], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm' }] },
  });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.input_tokens > 0);
  const up3 = stack.anthropicEmu.requestsTo('/v1/messages/count_tokens').at(-1);
  assert.equal(up3.query, '?beta=true');
  assert.ok(betas(up3).includes('token-counting-2024-11-01'));
  assert.equal(up3.json.mcp_servers[0].authorization_token, S.TA);
});

test('headers: anthropic-version forwarded once, query kept, x-api-key and Bearer both accepted', async () => {
  stack.reset();
  const r = await gw.request('POST', '/anthropic/v1/messages?beta=true', {
    headers: { 'x-api-key': S.keys.globex, 'anthropic-version': '2023-06-01', 'x-stainless-helper': 'e2e', 'idempotency-key': 'idem-ant-1' },
    body: { model: MODEL, max_tokens: 16, messages: user('hello') },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.content.at(-1).text, 'Echo: hello');
  assert.match(r.headers.get('request-id'), /^req_011/);
  const up = lastMessagesReq();
  assert.equal(up.query, '?beta=true');
  assert.deepEqual(headerValues(up, 'anthropic-version'), ['2023-06-01']);
  assert.deepEqual(headerValues(up, 'x-api-key'), [S.pk.globexAnthropic]);
  assert.deepEqual(headerValues(up, 'authorization'), []);
  assert.equal(up.headers['x-stainless-helper'], 'e2e');
  assert.equal(up.headers['idempotency-key'], 'idem-ant-1');
  // The SDK's own version header (Bearer auth style) is forwarded once as well.
  await globex.messages.create({ model: MODEL, max_tokens: 16, messages: user('hi') });
  const up2 = lastMessagesReq();
  assert.equal(headerValues(up2, 'anthropic-version').length, 1);
  assert.deepEqual(headerValues(up2, 'x-api-key'), [S.pk.globexAnthropic]);
  // Same key in both headers is fine.
  const r3 = await gw.request('POST', '/anthropic/v1/messages', {
    headers: { 'x-api-key': S.keys.acme, authorization: `Bearer ${S.keys.acme}`, 'anthropic-version': '2023-06-01' },
    body: { model: MODEL, max_tokens: 16, messages: user('both') },
  });
  assert.equal(r3.status, 200, r3.text);
  // Missing anthropic-version: the provider's own 400 comes back.
  const r4 = await gw.request('POST', '/anthropic/v1/messages', {
    headers: { 'x-api-key': S.keys.acme }, body: { model: MODEL, max_tokens: 16, messages: user('x') },
  });
  assert.equal(r4.status, 400);
  assert.equal(r4.json.error.message, 'anthropic-version: header is required');
});

test('unrewritten fields survive the rewrite; models pass through', async () => {
  stack.reset();
  const extra = { deep: { list: [1, 2, { x: null }] }, s: 'ä' };
  const r = await gw.request('POST', '/anthropic/v1/messages', {
    headers: { authorization: `Bearer ${S.keys.acme}`, 'anthropic-version': '2023-06-01', 'anthropic-beta': MCP_BETA_OLD },
    body: {
      model: MODEL, max_tokens: 32, system: 'be brief', metadata: { user_id: 'u1' }, x_future: extra,
      messages: user('call whoami'), mcp_servers: [server('crm', { tool_configuration: { enabled: true } })],
      tools: [{ name: 'local_fn', description: 'd', input_schema: { type: 'object', properties: {} } }],
    },
  });
  assert.equal(r.status, 200, r.text);
  const j = lastMessagesReq().json;
  assert.deepEqual(j.x_future, extra);
  assert.equal(j.system, 'be brief');
  assert.deepEqual(j.metadata, { user_id: 'u1' });
  assert.deepEqual(j.tools, [{ name: 'local_fn', description: 'd', input_schema: { type: 'object', properties: {} } }]);
  assert.equal(j.mcp_servers[0].tool_configuration.enabled, true);
  const models = await gw.request('GET', '/anthropic/v1/models?limit=5', { headers: { 'x-api-key': S.keys.acme, 'anthropic-version': '2023-06-01' } });
  assert.equal(models.status, 200);
  assert.ok(models.json.data.length > 0);
  assert.equal(stack.anthropicEmu.requestsTo('/v1/models').at(-1).query, '?limit=5');
});

test('streaming: SDK stream works, and sse_not_buffered (first event arrives well before the last)', async () => {
  stack.reset();
  const s = acme.beta.messages.stream({ model: MODEL, max_tokens: 256, betas: [MCP_BETA_NEW], messages: user('call search query=stream'), mcp_servers: [server('crm')], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm' }] });
  const final = await s.finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ['text', 'mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.deepEqual(final.content[1].input, { query: 'stream' });
  assert.equal(S.servers.crm.toolCalls('search')[0].credential, S.TA);

  const t0 = Date.now();
  const res = await gw.fetch(`/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': S.keys.acme, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, max_tokens: 64, stream: true, messages: user('call whoami'), mcp_servers: [server('crm')] }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const ev = await readSse(res, t0);
  assert.equal(ev[0].event, 'message_start');
  assert.equal(ev.at(-1).event, 'message_stop');
  assert.ok(ev.at(-1).at - ev[0].at >= 1200, `first event at ${ev[0].at} ms, last at ${ev.at(-1).at} ms: buffered`);
  assert.ok(new Set(ev.map((e) => e.at)).size >= 8, 'events arrive in many separate chunks');
});

test('nothing gateway-side reached upstream; no secret leaked to clients, KV or the log', async () => {
  assertNothingGatewaySideUpstream(stack);
  await assertNoLeaks(stack);
});
