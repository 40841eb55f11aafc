// The table's providers through the real gateway, each with its official SDK
// and only the base URL changed: xAI and Groq with the `openai` SDK, Azure
// OpenAI with its `AzureOpenAI` client (dated API) and the `openai` client
// (v1 API), Gemini Interactions with `@google/genai`. Label-only requests
// reach the MCP server with the tenant's secret; allowed tools hold; the
// tenant's key goes up in the provider's own header; errors come back in the
// provider's shape; no secret comes back; streaming and not.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';
import { GoogleGenAI } from '@google/genai';
import { fingerprint } from '../emulators/mcp-server.mjs';
import { test, startStack, newSecret, readSse, rejects, assertNoLeaks } from './harness.mjs';
import { assertNothingGatewaySideUpstream, headerValues, headerNames } from './setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stack;
let gw;
let T; // crm bearer token
let H; // files header credential
let K; // provider keys
let key; // gateway key of tenant `multi`
let keyNone; // gateway key of tenant `bare` (no provider keys)

before(async () => {
  T = newSecret('multi crm token', 'mcp_tok_');
  H = newSecret('multi files header', 'hdr_');
  stack = await startStack({
    mcp: { crm: { type: 'bearer', tokens: [T] }, files: { type: 'headers', headers: { 'X-Api-Key': H } } },
  });
  gw = stack.gw;
  const { providers, servers } = stack;
  K = {};
  for (const name of ['xai', 'groq', 'azure', 'gemini']) {
    K[name] = newSecret(`${name} key`, `${name}-`);
    providers[name].keys.add(K[name]);
  }
  await gw.putTenant('multi', {
    providers: {
      xai: { api_key: K.xai },
      groq: { api_key: K.groq },
      gemini: { api_key: K.gemini },
      azure_openai: { endpoint: providers.azure.url, api_key: K.azure },
    },
    mcp_servers: {
      crm: { url: servers.crm.url, auth: { type: 'bearer', token: T }, allowed_tools: ['whoami', 'search', 'lookup'], require_approval: 'never' },
      files: { url: servers.files.url, auth: { type: 'headers', headers: { 'X-Api-Key': H } }, require_approval: 'never' },
      strict: { url: servers.crm.url, auth: { type: 'bearer', token: T }, require_approval: 'always' },
    },
  });
  key = (await gw.createKey('multi')).key;
  await gw.putTenant('bare', {});
  keyNone = (await gw.createKey('bare')).key;
});

after(async () => {
  await stack?.close();
});

const mcp = (label, extra = {}) => ({ type: 'mcp', server_label: label, ...extra });
const oai = (path, apiKey = key) => new OpenAI({ baseURL: `${gw.url}${path}`, apiKey, maxRetries: 0, fetch: gw.fetch });
const azure = (apiKey = key) =>
  new AzureOpenAI({ endpoint: `${gw.url}/azure`, apiKey, apiVersion: '2025-04-01-preview', maxRetries: 0, fetch: gw.fetch });
const gemini = (apiKey = key, apiVersion = 'v1beta') =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${gw.url}/gemini`, apiVersion }, fetch: gw.fetch });

/** The one upstream request of the last call, and what it carried. */
function lastUp(emu) {
  const r = emu.requests.at(-1);
  assert.ok(r, 'the provider received the request');
  return r;
}

function assertKeySwapped(up, header, value) {
  assert.deepEqual(headerValues(up, header), [value], `${header} upstream`);
  for (const h of ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key']) {
    if (h !== header) assert.ok(!headerNames(up).includes(h), `${h} must not go up`);
  }
  assert.ok(!JSON.stringify(up.rawHeaders).includes(key), 'the gateway key never goes up');
}

for (const [name, path] of [['xai', '/xai/v1'], ['groq', '/groq/openai/v1']]) {
  test(`${name}: the openai SDK, label only: the tool call reaches the MCP server with the tenant's token; key swapped`, async () => {
    stack.reset();
    const emu = stack.providers[name];
    const r = await oai(path).responses.create({ model: 'm', input: 'call whoami', tools: [mcp('crm')] });
    assert.deepEqual(r.output.map((o) => o.type), ['mcp_list_tools', 'mcp_call', 'message']);
    assert.deepEqual(JSON.parse(r.output[1].output), { server: 'crm', credential_fingerprint: fingerprint(T) });
    assert.deepEqual(stack.servers.crm.toolCalls('whoami').map((c) => c.credential), [T]);
    const up = lastUp(emu);
    assert.equal(up.path, `${path.replace(/^\/[a-z]+/, '')}/responses`);
    assertKeySwapped(up, 'authorization', `Bearer ${K[name]}`);
    const tool = up.json.tools[0];
    assert.equal(tool.server_url, stack.servers.crm.url);
    assert.equal(tool.authorization, T);
    assert.deepEqual([...tool.allowed_tools].sort(), ['lookup', 'search', 'whoami']);
    if (name === 'xai') assert.ok(!('require_approval' in tool), 'xAI has no require_approval');
    else assert.equal(tool.require_approval, 'never');
    assert.ok(!JSON.stringify(r).includes(T));
  });

  test(`${name}: streaming, header credentials, allowed tools enforced`, async () => {
    stack.reset();
    const res = await gw.fetch(`${path}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'call search query=q1', stream: true, tools: [mcp('files')] }),
    });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    assert.equal(events.at(-1).event, 'response.completed');
    const done = events.find((e) => e.event === 'response.output_item.done' && JSON.parse(e.data).item.type === 'mcp_call');
    assert.equal(JSON.parse(JSON.parse(done.data).item.output).query, 'q1');
    assert.deepEqual(stack.servers.files.toolCalls('search')[0].credential, { 'X-Api-Key': H });
    assert.deepEqual(lastUp(stack.providers[name]).json.tools[0].headers, { 'X-Api-Key': H });
    // The tenant's list: delete_everything is never listed or called.
    const r = await oai(path).responses.create({ model: 'm', input: 'call delete_everything', tools: [mcp('crm')] });
    assert.ok(!r.output[0].tools.some((t) => t.name === 'delete_everything'));
    assert.equal(stack.servers.crm.toolCalls('delete_everything').length, 0);
  });
}

test('xai: a server whose policy needs approval is refused with a 400 naming it (never run unapproved); nothing goes up', async () => {
  stack.reset();
  const e = await rejects(oai('/xai/v1').responses.create({ model: 'm', input: 'call whoami', tools: [mcp('strict')] }));
  assert.ok(e instanceof OpenAI.BadRequestError, e);
  assert.equal(e.error.param, 'tools[0].server_label');
  assert.match(e.error.message, /'strict'.*approval/);
  const e2 = await rejects(oai('/xai/v1').responses.create({ model: 'm', input: 'x', tools: [mcp('crm', { allowed_tools: ['delete_everything'] })] }));
  assert.equal(e2.status, 400);
  assert.equal(stack.providers.xai.requests.length, 0);
  // Groq has approvals: the tenant's "always" is enforced there.
  const r = await oai('/groq/openai/v1').responses.create({ model: 'm', input: 'call whoami', tools: [mcp('strict', { require_approval: 'never' })] });
  assert.equal(r.output.at(-1).type, 'mcp_approval_request');
  assert.equal(stack.servers.crm.toolCalls().length, 0);
});

test('azure: the AzureOpenAI client (dated API, api-key header): query kept, key swapped into api-key, tool call authenticated', async () => {
  stack.reset();
  const r = await azure().responses.create({ model: 'gpt-4.1', input: 'call lookup id=9', tools: [mcp('crm')] });
  assert.equal(r.output[1].type, 'mcp_call');
  assert.equal(stack.servers.crm.toolCalls('lookup')[0].credential, T);
  const up = lastUp(stack.providers.azure);
  assert.equal(up.path, '/openai/responses');
  assert.equal(up.query, '?api-version=2025-04-01-preview');
  assertKeySwapped(up, 'api-key', K.azure);
  assert.equal(up.json.tools[0].authorization, T);
  // The v1 API with the plain openai client, streaming.
  const stream = await oai('/azure/openai/v1').responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')], stream: true });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  assert.equal(types.at(-1), 'response.completed');
  assert.ok(types.includes('response.mcp_call.completed'));
  assert.equal(lastUp(stack.providers.azure).path, '/openai/v1/responses');
  assertKeySwapped(lastUp(stack.providers.azure), 'api-key', K.azure);
});

test('azure: errors in the OpenAI shape; two different keys are refused', async () => {
  stack.reset();
  const e = await rejects(azure().responses.create({ model: 'gpt-4.1', input: 'x', tools: [mcp('crm', { server_url: 'https://evil.example/mcp' })] }));
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.error.param, 'tools[0].server_url');
  const r = await gw.request('POST', '/azure/openai/v1/responses', {
    headers: { 'api-key': key, authorization: `Bearer ${keyNone}` }, body: { model: 'm', input: 'x' },
  });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.type, 'invalid_request_error');
  const e2 = await rejects(azure(keyNone).responses.create({ model: 'gpt-4.1', input: 'x' }));
  assert.equal(e2.status, 403);
  assert.match(e2.error.message, /azure_openai/);
  assert.equal(stack.providers.azure.requests.length, 0);
});

function geminiText(it) {
  const out = it.steps.filter((s) => s.type === 'model_output').flatMap((s) => s.content);
  return out.map((c) => c.text).join('');
}

test('gemini: @google/genai interactions, label only: url and Authorization header injected, allowed tools narrowed, key in x-goog-api-key', async () => {
  stack.reset();
  const it = await gemini().interactions.create({
    model: 'gemini-3-flash-preview', input: 'call whoami', tools: [{ type: 'mcp_server', name: 'crm' }],
  });
  const call = it.steps.find((s) => s.type === 'mcp_server_tool_call');
  assert.equal(call.server_name, 'crm');
  assert.match(geminiText(it), new RegExp(fingerprint(T)));
  assert.deepEqual(stack.servers.crm.toolCalls('whoami').map((c) => c.credential), [T]);
  const up = lastUp(stack.providers.gemini);
  assert.equal(up.path, '/v1beta/interactions');
  assertKeySwapped(up, 'x-goog-api-key', K.gemini);
  assert.deepEqual(up.json.tools[0], {
    type: 'mcp_server', name: 'crm', url: stack.servers.crm.url,
    headers: { Authorization: `Bearer ${T}` }, allowed_tools: [{ tools: ['whoami', 'search', 'lookup'] }],
  });
  assert.ok(!JSON.stringify(it).includes(T));
  // A client list is narrowed, never widened.
  await gemini().interactions.create({
    model: 'm', input: 'call delete_everything', tools: [{ type: 'mcp_server', name: 'crm', allowed_tools: [{ tools: ['search', 'delete_everything'] }] }],
  });
  assert.deepEqual(lastUp(stack.providers.gemini).json.tools[0].allowed_tools, [{ tools: ['search'] }]);
  assert.equal(stack.servers.crm.toolCalls('delete_everything').length, 0);
});

test('gemini: streaming (steps events, header credentials) through the SDK; the SDK default API version (v1) is policed too', async () => {
  stack.reset();
  const stream = await gemini(key, 'v1').interactions.create({
    model: 'm', input: 'call search query=q7', stream: true, tools: [{ type: 'mcp_server', name: 'files' }],
  });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.equal(events[0].event_type, 'interaction.created');
  assert.equal(events.at(-1).event_type, 'interaction.completed');
  const start = events.find((e) => e.event_type === 'step.start' && e.step.type === 'mcp_server_tool_call');
  assert.equal(start.step.server_name, 'files');
  assert.deepEqual(stack.servers.files.toolCalls('search')[0].credential, { 'X-Api-Key': H });
  const up = lastUp(stack.providers.gemini);
  assert.equal(up.path, '/v1/interactions');
  assert.deepEqual(up.json.tools[0].headers, { 'X-Api-Key': H });
  // Raw SSE: events arrive one by one, the stream ends with `done`.
  const res = await gw.fetch('/gemini/v1beta/interactions', {
    method: 'POST',
    headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', input: 'call whoami', stream: true, tools: [{ type: 'mcp_server', name: 'crm' }] }),
  });
  const raw = await readSse(res);
  assert.equal(raw.at(-1).event, 'done');
  assert.ok(raw[0].at < raw.at(-1).at, 'not buffered');
});

test('gemini: errors in Google\'s shape, from the gateway and parsed by the SDK', async () => {
  stack.reset();
  const bad = await gw.request('POST', '/gemini/v1beta/interactions', { headers: { 'x-goog-api-key': 'mgk_nope' }, body: { model: 'm', input: 'x' } });
  assert.equal(bad.status, 401);
  assert.deepEqual(Object.keys(bad.json.error).sort(), ['code', 'message', 'status']);
  assert.equal(bad.json.error.status, 'UNAUTHENTICATED');
  const e = await rejects(gemini().interactions.create({ model: 'm', input: 'x', tools: [{ type: 'mcp_server', name: 'billing' }] }));
  assert.equal(e.status, 400);
  assert.match(e.message, /billing/);
  const strict = await gw.request('POST', '/gemini/v1beta/interactions', {
    headers: { 'x-goog-api-key': key }, body: { model: 'm', input: 'x', tools: [{ type: 'mcp_server', name: 'strict' }] },
  });
  assert.equal(strict.status, 400);
  assert.equal(strict.json.error.status, 'INVALID_ARGUMENT');
  assert.match(strict.json.error.message, /'strict'.*approval/);
  const none = await rejects(gemini(keyNone).interactions.create({ model: 'm', input: 'x' }));
  assert.equal(none.status, 403);
  assert.equal((await gw.request('GET', '/gemini/v2/models', { headers: { 'x-goog-api-key': key } })).json.error.code, 404);
  assert.equal(stack.providers.gemini.requests.length, 0, 'nothing reached the provider');
  // Pass-through routes keep the key swap.
  const models = await gw.request('GET', '/gemini/v1beta/models', { headers: { 'x-goog-api-key': key } });
  assert.equal(models.status, 200);
  assertKeySwapped(lastUp(stack.providers.gemini), 'x-goog-api-key', K.gemini);
});

test('usage of the new providers is metered (tokens and MCP calls per server)', async () => {
  // A tenant of its own: nothing else is counted for it.
  await gw.putTenant('meter', {
    providers: { xai: { api_key: K.xai }, gemini: { api_key: K.gemini } },
    mcp_servers: { crm: { url: stack.servers.crm.url, auth: { type: 'bearer', token: T }, require_approval: 'never' } },
  });
  const mk = (await gw.createKey('meter')).key;
  stack.reset();
  await gemini(mk).interactions.create({ model: 'm', input: 'call whoami', tools: [{ type: 'mcp_server', name: 'crm' }] });
  const s = await gemini(mk).interactions.create({ model: 'm', input: 'call whoami', stream: true, tools: [{ type: 'mcp_server', name: 'crm' }] });
  for await (const _ of s) { /* drain */ }
  await oai('/xai/v1', mk).responses.create({ model: 'm', input: 'call whoami', tools: [mcp('crm')] });
  const reported = stack.providers.all().map((r) => r.reported).filter(Boolean);
  assert.equal(reported.length, 3);
  const want = {
    requests: 3,
    input_tokens: reported.reduce((a, r) => a + r.input_tokens, 0),
    output_tokens: reported.reduce((a, r) => a + r.output_tokens, 0),
    mcp_calls: { crm: 3 },
  };
  let got;
  const deadline = Date.now() + 8000;
  do {
    await sleep(150);
    got = (await gw.admin('GET', '/admin/tenants/meter/usage')).json.total;
  } while (got.requests < want.requests && Date.now() < deadline);
  await sleep(300);
  got = (await gw.admin('GET', '/admin/tenants/meter/usage')).json.total;
  assert.deepEqual(got, want);
});

test('admin: the new provider keys are stored sealed and shown redacted; the Azure endpoint is validated', async () => {
  const r = await gw.getTenant('multi');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.providers.azure_openai, { endpoint: stack.providers.azure.url, api_key: '[redacted]' });
  for (const p of ['xai', 'groq', 'gemini']) assert.deepEqual(r.json.providers[p], { api_key: '[redacted]' });
  const bad = await gw.admin('PUT', '/admin/tenants/bad', { providers: { azure_openai: { endpoint: 'http://acme.openai.azure.com', api_key: 'k' } } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'providers.azure_openai.endpoint');
});

test('no secret reached a client, the KV files or the log; no gateway secret went upstream', async () => {
  assertNothingGatewaySideUpstream(stack);
  await assertNoLeaks(stack);
});
