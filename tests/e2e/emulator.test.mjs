// Self-test of the emulators: the official SDKs talk straight to the provider
// emulators, which talk to real MCP servers. This proves the emulators behave
// like the real APIs (auth, shapes, SSE, MCP semantics) before the gateway
// tests rely on them. No gateway is involved here.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startProviders, MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';
import { startMcpServer, fingerprint } from '../emulators/mcp-server.mjs';
import { test, newSecret, readSse, rejects } from './harness.mjs';

let p;
let bearer;
let hdr;
let open;
const OKEY = newSecret('emu openai', 'sk-proj-');
const AKEY = newSecret('emu anthropic', 'sk-ant-api03-');
const TOKEN = newSecret('emu mcp token');
const HVAL = newSecret('emu mcp header');
let oa;
let an;

before(async () => {
  p = await startProviders({ openaiKeys: [OKEY], anthropicKeys: [AKEY], delayMs: 40 });
  bearer = await startMcpServer({ name: 'crm', auth: { type: 'bearer', token: TOKEN } });
  hdr = await startMcpServer({ name: 'files', auth: { type: 'headers', headers: { 'X-Api-Key': HVAL } } });
  open = await startMcpServer({ name: 'public', auth: { type: 'none' } });
  oa = new OpenAI({ baseURL: `${p.openai.url}/v1`, apiKey: OKEY, maxRetries: 0 });
  // The Anthropic SDK 1.x sends its apiKey as `Authorization: Bearer`; the
  // emulator, like the real API, wants `x-api-key`.
  an = new Anthropic({ baseURL: p.anthropic.url, apiKey: null, defaultHeaders: { 'x-api-key': AKEY }, maxRetries: 0 });
});

after(async () => {
  await p?.close();
  await Promise.all([bearer, hdr, open].map((s) => s?.close()));
});

const crmTool = (extra = {}) => ({ type: 'mcp', server_label: 'crm', server_url: bearer.url, authorization: TOKEN, ...extra });

test('openai: bearer MCP tool is listed and called with the given credential', async () => {
  bearer.reset();
  const r = await oa.responses.create({ model: 'gpt-4.1', input: 'please call whoami', tools: [crmTool({ require_approval: 'never' })] });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'completed');
  assert.deepEqual(r.output.map((o) => o.type), ['mcp_list_tools', 'mcp_call', 'message']);
  const call = r.output[1];
  assert.equal(call.name, 'whoami');
  assert.equal(call.server_label, 'crm');
  assert.equal(call.error, null);
  assert.deepEqual(JSON.parse(call.output), { server: 'crm', credential_fingerprint: fingerprint(TOKEN) });
  assert.match(r.output_text, new RegExp(fingerprint(TOKEN)));
  assert.equal(bearer.toolCalls('whoami').length, 1);
  assert.equal(bearer.toolCalls('whoami')[0].credential, TOKEN);
  // Like OpenAI: credentials are not echoed, and the URL loses its path.
  assert.ok(!JSON.stringify(r).includes(TOKEN));
  assert.equal(r.tools[0].server_url, new URL(bearer.url).origin);
  assert.ok(r.usage.total_tokens > 0);
});

test('openai: header credentials reach the MCP server', async () => {
  hdr.reset();
  const r = await oa.responses.create({
    model: 'gpt-4.1', input: 'call search query=kittens',
    tools: [{ type: 'mcp', server_label: 'files', server_url: hdr.url, headers: { 'X-Api-Key': HVAL }, require_approval: 'never' }],
  });
  assert.deepEqual(JSON.parse(r.output[1].output).query, 'kittens');
  assert.deepEqual(hdr.toolCalls('search')[0].credential, { 'X-Api-Key': HVAL });
  assert.ok(!JSON.stringify(r).includes(HVAL));
});

test('openai: wrong or missing provider key is 401 invalid_api_key and nothing reaches MCP', async () => {
  bearer.reset();
  const bad = new OpenAI({ baseURL: `${p.openai.url}/v1`, apiKey: 'sk-proj-not-a-real-key-000000', maxRetries: 0 });
  const e = await rejects(bad.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool()] }));
  assert.ok(e instanceof OpenAI.AuthenticationError);
  assert.equal(e.status, 401);
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.code, 'invalid_api_key');
  assert.equal(bearer.calls.length, 0);
  const raw = await fetch(`${p.openai.url}/v1/models`);
  assert.equal(raw.status, 401);
  const j = await raw.json();
  assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
});

test('openai: MCP server rejecting the credential gives 424 and the server records the rejection', async () => {
  bearer.reset();
  const e = await rejects(oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool({ authorization: 'wrong-token' })] }));
  assert.ok(e instanceof OpenAI.APIError);
  assert.equal(e.status, 424);
  assert.match(e.message, /MCP server: 'crm'.*401/);
  assert.equal(bearer.rejections.length >= 1, true);
  assert.equal(bearer.rejections[0].credential, 'wrong-token');
  assert.equal(bearer.toolCalls().length, 0);
});

test('openai: mcp tool without server_url is 400', async () => {
  const e = await rejects(oa.responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }] }));
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.param, 'tools[0].server_url');
});

test('openai: default require_approval is "always"; approval round trip calls with the follow-up credential', async () => {
  bearer.reset();
  const r1 = await oa.responses.create({ model: 'gpt-4.1', input: 'call lookup id=42', tools: [crmTool()] });
  assert.deepEqual(r1.output.map((o) => o.type), ['mcp_list_tools', 'mcp_approval_request']);
  assert.equal(bearer.toolCalls().length, 0);
  const ar = r1.output[1];
  assert.equal(ar.name, 'lookup');
  assert.deepEqual(JSON.parse(ar.arguments), { id: '42' });
  // A follow-up without the tool definition cannot be executed.
  const e = await rejects(oa.responses.create({
    model: 'gpt-4.1', previous_response_id: r1.id,
    input: [{ type: 'mcp_approval_response', approval_request_id: ar.id, approve: true }],
  }));
  assert.equal(e.status, 400);
  const r2 = await oa.responses.create({
    model: 'gpt-4.1', previous_response_id: r1.id, tools: [crmTool()],
    input: [{ type: 'mcp_approval_response', approval_request_id: ar.id, approve: true }],
  });
  assert.deepEqual(r2.output.map((o) => o.type), ['mcp_call', 'message']);
  assert.equal(r2.output[0].approval_request_id, ar.id);
  assert.deepEqual(JSON.parse(r2.output[0].output), { server: 'crm', id: '42', found: true });
  assert.equal(bearer.toolCalls('lookup').length, 1);
  assert.equal(bearer.toolCalls('lookup')[0].credential, TOKEN);
  // Follow-up with a token the server rejects: the call fails with an http_error item.
  const r3 = await oa.responses.create({ model: 'gpt-4.1', input: 'call lookup id=43', tools: [crmTool()] });
  const r4 = await oa.responses.create({
    model: 'gpt-4.1', previous_response_id: r3.id, tools: [crmTool({ authorization: 'stale' })],
    input: [{ type: 'mcp_approval_response', approval_request_id: r3.output[1].id, approve: true }],
  });
  assert.equal(r4.output[0].status, 'failed');
  assert.deepEqual(r4.output[0].error, { type: 'http_error', code: 401, message: 'Unauthorized' });
});

test('openai: approve:false makes no call', async () => {
  bearer.reset();
  const r1 = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool()] });
  const r2 = await oa.responses.create({
    model: 'gpt-4.1', previous_response_id: r1.id, tools: [crmTool()],
    input: [{ type: 'mcp_approval_response', approval_request_id: r1.output[1].id, approve: false }],
  });
  assert.deepEqual(r2.output.map((o) => o.type), ['message']);
  assert.equal(bearer.toolCalls().length, 0);
});

test('openai: allowed_tools (array and object) filter the list and the calls', async () => {
  bearer.reset();
  const r1 = await oa.responses.create({ model: 'gpt-4.1', input: 'call delete_everything', tools: [crmTool({ allowed_tools: ['search', 'lookup'], require_approval: 'never' })] });
  assert.deepEqual(r1.output[0].tools.map((t) => t.name), ['search', 'lookup']);
  assert.deepEqual(r1.output.map((o) => o.type), ['mcp_list_tools', 'message']);
  assert.match(r1.output_text, /cannot call delete_everything/);
  const r2 = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool({ allowed_tools: { read_only: true }, require_approval: 'never' })] });
  assert.deepEqual(r2.output[0].tools.map((t) => t.name), ['whoami', 'search', 'lookup']);
  const r3 = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool({ allowed_tools: { tool_names: ['whoami'] }, require_approval: 'never' })] });
  assert.deepEqual(r3.output[0].tools.map((t) => t.name), ['whoami']);
  assert.equal(bearer.toolCalls('delete_everything').length, 0);
  assert.equal(bearer.toolCalls('whoami').length, 2);
});

test('openai: require_approval object form filters by tool name', async () => {
  const ra = { never: { tool_names: ['whoami'] } };
  const r1 = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [crmTool({ require_approval: ra })] });
  assert.equal(r1.output[1].type, 'mcp_call');
  const r2 = await oa.responses.create({ model: 'gpt-4.1', input: 'call search', tools: [crmTool({ require_approval: ra })] });
  assert.equal(r2.output[1].type, 'mcp_approval_request');
  const e = await rejects(oa.responses.create({ model: 'gpt-4.1', input: 'x', tools: [crmTool({ require_approval: 'sometimes' })] }));
  assert.equal(e.status, 400);
});

test('openai: streaming emits the real event sequence, spread out in time', async () => {
  const t0 = Date.now();
  const res = await fetch(`${p.openai.url}/v1/responses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OKEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', input: 'call whoami', stream: true, tools: [crmTool({ require_approval: 'never' })] }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = await readSse(res, t0);
  const types = events.map((e) => e.event);
  for (const t of ['response.created', 'response.in_progress', 'response.output_item.added', 'response.mcp_list_tools.in_progress',
    'response.mcp_list_tools.completed', 'response.mcp_call.in_progress', 'response.mcp_call.completed', 'response.output_item.done',
    'response.output_text.delta', 'response.completed']) {
    assert.ok(types.includes(t), `missing ${t}`);
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  const seqs = events.map((e) => JSON.parse(e.data).sequence_number);
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  for (const e of events) assert.equal(JSON.parse(e.data).type, e.event);
  assert.ok(events.at(-1).at - events[0].at > 500, 'events are spread out');
  // The SDK reads it too.
  const st = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', stream: true, tools: [crmTool({ require_approval: 'never' })] });
  let done;
  for await (const ev of st) if (ev.type === 'response.completed') done = ev.response;
  assert.match(done.output_text ?? done.output.at(-1).content[0].text, /whoami/);
});

test('openai: chat completions JSON and stream with [DONE]; models; stored responses', async () => {
  const c = await oa.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hello there' }] });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.content, 'Echo: hello there');
  const res = await fetch(`${p.openai.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${OKEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const ev = await readSse(res);
  assert.equal(ev.at(-1).data, '[DONE]');
  assert.equal(ev.filter((e) => e.data === '[DONE]').length, 1);
  const text = ev.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'Echo: hi');
  const models = await oa.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4.1'));
  assert.equal((await oa.models.retrieve('gpt-4.1')).id, 'gpt-4.1');
  const nf = await rejects(oa.models.retrieve('nope'));
  assert.ok(nf instanceof OpenAI.NotFoundError);
  const r = await oa.responses.create({ model: 'gpt-4.1', input: 'hello' });
  const got = await oa.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, 'Echo: hello');
  const other = newSecret('emu other openai', 'sk-proj-');
  p.openai.keys.add(other);
  const e = await rejects(new OpenAI({ baseURL: `${p.openai.url}/v1`, apiKey: other, maxRetries: 0 }).responses.retrieve(r.id));
  assert.equal(e.status, 404);
});

const ant = (body, betas) => an.beta.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, ...body, ...(betas ? { betas } : {}) });
const crmServer = (extra = {}) => ({ type: 'url', name: 'crm', url: bearer.url, authorization_token: TOKEN, ...extra });

test('anthropic: both MCP betas call the tool with the bearer token; filters apply', async () => {
  bearer.reset();
  const m1 = await ant({ messages: [{ role: 'user', content: 'call whoami' }], mcp_servers: [crmServer()] }, [MCP_BETA_OLD]);
  assert.equal(m1.type, 'message');
  assert.deepEqual(m1.content.map((b) => b.type), ['text', 'mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.equal(m1.content[1].server_name, 'crm');
  assert.equal(m1.content[2].tool_use_id, m1.content[1].id);
  assert.deepEqual(JSON.parse(m1.content[2].content[0].text), { server: 'crm', credential_fingerprint: fingerprint(TOKEN) });
  assert.equal(bearer.toolCalls('whoami')[0].credential, TOKEN);

  const m2 = await ant({ messages: [{ role: 'user', content: 'call delete_everything' }], mcp_servers: [crmServer({ tool_configuration: { allowed_tools: ['search'] } })] }, [MCP_BETA_OLD]);
  assert.match(m2.content.at(-1).text, /cannot call delete_everything/);

  const m3 = await ant({
    messages: [{ role: 'user', content: 'call search query=q1' }], mcp_servers: [crmServer()],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', default_config: { enabled: false }, configs: { search: { enabled: true } } }],
  }, [MCP_BETA_NEW]);
  assert.equal(m3.content[1].name, 'search');
  const m4 = await ant({
    messages: [{ role: 'user', content: 'call lookup' }], mcp_servers: [crmServer()],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', default_config: { enabled: false }, configs: { search: { enabled: true } } }],
  }, [MCP_BETA_NEW]);
  assert.match(m4.content.at(-1).text, /cannot call lookup/);
  assert.equal(bearer.toolCalls('delete_everything').length, 0);
  assert.equal(bearer.toolCalls('lookup').length, 0);
});

test('anthropic: request errors look like the real API', async () => {
  const noBeta = await rejects(ant({ messages: [{ role: 'user', content: 'x' }], mcp_servers: [crmServer()] }));
  assert.ok(noBeta instanceof Anthropic.BadRequestError);
  assert.equal(noBeta.type, 'invalid_request_error');
  const unref = await rejects(ant({ messages: [{ role: 'user', content: 'x' }], mcp_servers: [crmServer()] }, [MCP_BETA_NEW]));
  assert.equal(unref.status, 400);
  assert.match(unref.message, /exactly one mcp_toolset/);
  const tcNew = await rejects(ant({
    messages: [{ role: 'user', content: 'x' }], mcp_servers: [crmServer({ tool_configuration: { allowed_tools: ['x'] } })],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm' }],
  }, [MCP_BETA_NEW]));
  assert.equal(tcNew.status, 400);
  const badTok = await rejects(ant({ messages: [{ role: 'user', content: 'x' }], mcp_servers: [crmServer({ authorization_token: 'nope' })] }, [MCP_BETA_OLD]));
  assert.equal(badTok.status, 400);
  assert.match(badTok.message, /Invalid authorization token for MCP server 'crm'/);
  const badKey = new Anthropic({ baseURL: p.anthropic.url, apiKey: null, defaultHeaders: { 'x-api-key': 'sk-ant-wrong' }, maxRetries: 0 });
  const e401 = await rejects(badKey.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(e401 instanceof Anthropic.AuthenticationError);
  assert.equal(e401.type, 'authentication_error');
  const noVer = await fetch(`${p.anthropic.url}/v1/messages`, {
    method: 'POST', headers: { 'x-api-key': AKEY, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 1, messages: [] }),
  });
  assert.equal(noVer.status, 400);
  assert.deepEqual((await noVer.json()).error, { type: 'invalid_request_error', message: 'anthropic-version: header is required' });
  const dupVer = await fetch(`${p.anthropic.url}/v1/messages`, {
    method: 'POST', headers: [['x-api-key', AKEY], ['anthropic-version', '2023-06-01'], ['anthropic-version', '2023-06-01'], ['content-type', 'application/json']],
    body: JSON.stringify({ model: 'm', max_tokens: 1, messages: [] }),
  });
  assert.equal(dupVer.status, 400);
  assert.match((await dupVer.json()).error.message, /is not a valid version/);
});

test('anthropic: streaming is real SSE with delays; count_tokens; query string accepted', async () => {
  const t0 = Date.now();
  const res = await fetch(`${p.anthropic.url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: { 'x-api-key': AKEY, 'anthropic-version': '2023-06-01', 'anthropic-beta': MCP_BETA_OLD, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'call whoami' }], mcp_servers: [crmServer()] }),
  });
  assert.equal(res.status, 200);
  const ev = await readSse(res, t0);
  assert.equal(ev[0].event, 'message_start');
  assert.equal(ev.at(-1).event, 'message_stop');
  for (const e of ev) assert.equal(JSON.parse(e.data).type, e.event);
  assert.ok(ev.some((e) => e.event === 'content_block_delta' && JSON.parse(e.data).delta.type === 'text_delta'));
  assert.ok(ev.at(-1).at - ev[0].at > 400);
  const s = an.beta.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 100, betas: [MCP_BETA_OLD], messages: [{ role: 'user', content: 'call search query=zz' }], mcp_servers: [crmServer()] });
  const final = await s.finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ['text', 'mcp_tool_use', 'mcp_tool_result', 'text']);
  assert.deepEqual(final.content[1].input, { query: 'zz' });
  const ct = await an.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hello' }] });
  assert.ok(ct.input_tokens > 0);
  const ctMcp = await an.beta.messages.countTokens({ model: 'claude-sonnet-4-6', betas: [MCP_BETA_OLD], messages: [{ role: 'user', content: 'hello' }], mcp_servers: [crmServer()] });
  assert.ok(ctMcp.input_tokens > ct.input_tokens, 'tool definitions are counted');
});
