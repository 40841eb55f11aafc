// OpenAI routes through the real gateway: MCP credential injection, allowed
// tools, approval policy, approval round trips, streaming, pass-through routes.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { fingerprint } from '../emulators/mcp-server.mjs';
import { test, readSse, rejects, assertNoLeaks } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream, headerValues, headerNames } from './setup.mjs';

let S;
let stack;
let gw;
let acme;
let globex;

before(async () => {
  S = await standardStack();
  ({ stack, gw } = S);
  acme = gw.openai(S.keys.acme);
  globex = gw.openai(S.keys.globex);
});

after(async () => {
  await stack?.close();
});

const lastResponsesReq = () => stack.openaiEmu.requestsTo('/v1/responses').at(-1);
const mcp = (label, extra = {}) => ({ type: 'mcp', server_label: label, ...extra });

test('bearer credential is injected: the tool call reaches the MCP server with the tenant token', async () => {
  stack.reset();
  const r = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')] });
  assert.deepEqual(r.output.map((o) => o.type), ['mcp_list_tools', 'mcp_call', 'message']);
  assert.deepEqual(JSON.parse(r.output[1].output), { server: 'crm', credential_fingerprint: fingerprint(S.TA) });
  const calls = S.servers.crm.toolCalls('whoami');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].credential, S.TA);
  const up = lastResponsesReq();
  assert.deepEqual(headerValues(up, 'authorization'), [`Bearer ${S.pk.acmeOpenai}`]);
  const tool = up.json.tools[0];
  assert.equal(tool.server_url, S.servers.crm.url);
  assert.equal(tool.authorization, S.TA);
  assert.equal(tool.require_approval, 'never');
  const names = Array.isArray(tool.allowed_tools) ? tool.allowed_tools : tool.allowed_tools?.tool_names;
  assert.deepEqual([...names].sort(), ['lookup', 'search', 'whoami']);
  assert.ok(!JSON.stringify(r).includes(S.TA));
});

test('two tenants with the same server label each reach the MCP server with their own secret', async () => {
  stack.reset();
  const ra = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')] });
  const rb = await globex.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')] });
  assert.equal(JSON.parse(ra.output[1].output).credential_fingerprint, fingerprint(S.TA));
  assert.equal(JSON.parse(rb.output[1].output).credential_fingerprint, fingerprint(S.TB));
  const creds = S.servers.crm.toolCalls('whoami').map((c) => c.credential);
  assert.deepEqual(creds, [S.TA, S.TB]);
  const ups = stack.openaiEmu.requestsTo('/v1/responses');
  assert.deepEqual(ups.map((u) => u.headers.authorization), [`Bearer ${S.pk.acmeOpenai}`, `Bearer ${S.pk.globexOpenai}`]);
  // globex's crm has no allowed_tools: everything is listed, delete_everything included.
  assert.ok(rb.output[0].tools.some((t) => t.name === 'delete_everything'));
  assert.ok(!ra.output[0].tools.some((t) => t.name === 'delete_everything'));
});

test('header credentials are injected for OpenAI', async () => {
  stack.reset();
  const r = await acme.responses.create({ model: 'gpt-4.1', input: 'call search query=invoices', tools: [mcp('files')] });
  assert.equal(r.output[1].type, 'mcp_call');
  assert.equal(JSON.parse(r.output[1].output).query, 'invoices');
  assert.deepEqual(S.servers.files.toolCalls('search')[0].credential, { 'X-Api-Key': S.HA });
  const tool = lastResponsesReq().json.tools[0];
  assert.equal(tool.server_url, S.servers.files.url);
  assert.deepEqual(tool.headers, { 'X-Api-Key': S.HA });
  assert.ok(!JSON.stringify(r).includes(S.HA));
});

test('a server without credentials works, and several MCP tools in one request each get theirs', async () => {
  stack.reset();
  const r = await acme.responses.create({
    model: 'gpt-4.1', input: 'call whoami on public',
    tools: [mcp('crm'), mcp('files'), mcp('public')],
  });
  assert.deepEqual(r.output.filter((o) => o.type === 'mcp_list_tools').map((o) => o.server_label), ['crm', 'files', 'public']);
  const call = r.output.find((o) => o.type === 'mcp_call');
  assert.equal(call.server_label, 'public');
  assert.equal(JSON.parse(call.output).server, 'public');
  assert.equal(S.servers.public.toolCalls('whoami').length, 1);
  // Listing crm and files needed their credentials too.
  assert.ok(S.servers.crm.calls.some((c) => c.method === 'tools/list' && c.credential === S.TA));
  assert.ok(S.servers.files.calls.some((c) => c.method === 'tools/list' && c.credential?.['X-Api-Key'] === S.HA));
  assert.equal(S.servers.crm.rejections.length + S.servers.files.rejections.length, 0);
});

test('allowed tools: the tenant list applies, intersected with the client list', async () => {
  stack.reset();
  // Tenant list only.
  const r1 = await acme.responses.create({ model: 'gpt-4.1', input: 'call delete_everything', tools: [mcp('crm')] });
  assert.deepEqual(r1.output[0].tools.map((t) => t.name).sort(), ['lookup', 'search', 'whoami']);
  assert.ok(!r1.output.some((o) => o.type === 'mcp_call'));
  // Client list: intersection.
  const r2 = await acme.responses.create({ model: 'gpt-4.1', input: 'call search', tools: [mcp('crm', { allowed_tools: ['search', 'delete_everything'] })] });
  assert.deepEqual(r2.output[0].tools.map((t) => t.name), ['search']);
  assert.equal(r2.output[1].type, 'mcp_call');
  assert.equal(r2.output[1].name, 'search');
  // Object form of the client list.
  const r3 = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm', { allowed_tools: { tool_names: ['whoami', 'delete_everything'] } })] });
  assert.deepEqual(r3.output[0].tools.map((t) => t.name), ['whoami']);
  // A client cannot widen the list to reach an excluded tool.
  const r4 = await acme.responses.create({ model: 'gpt-4.1', input: 'call delete_everything', tools: [mcp('crm', { allowed_tools: ['delete_everything'] })] })
    .catch((e) => e);
  if (!(r4 instanceof Error)) {
    assert.ok(!r4.output.some((o) => o.type === 'mcp_list_tools' && o.tools.some((t) => t.name === 'delete_everything')));
    assert.ok(!r4.output.some((o) => o.type === 'mcp_call' || o.type === 'mcp_approval_request'));
  } else {
    assert.equal(r4.status, 400);
  }
  assert.equal(S.servers.crm.toolCalls('delete_everything').length, 0);
});

test('require_approval: tenant "always" beats client "never"; client "always" tightens tenant "never"', async () => {
  stack.reset();
  const r1 = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('strict', { require_approval: 'never' })] });
  assert.deepEqual(r1.output.map((o) => o.type), ['mcp_list_tools', 'mcp_approval_request']);
  const r2 = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('strict', { require_approval: { never: { tool_names: ['whoami'] } } })] });
  assert.equal(r2.output.at(-1).type, 'mcp_approval_request');
  const r3 = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm', { require_approval: 'always' })] });
  assert.deepEqual(r3.output.map((o) => o.type), ['mcp_list_tools', 'mcp_approval_request']);
  assert.equal(S.servers.crm.toolCalls().length, 0, 'no tool ran without approval');
  // Tenant "never" with no client preference: the call runs at once (OpenAI's own default would be "always").
  const r4 = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')] });
  assert.equal(r4.output[1].type, 'mcp_call');
  assert.equal(S.servers.crm.toolCalls().length, 1);
});

test('approval round trip with previous_response_id: credentials are injected again on the follow-up', async () => {
  stack.reset();
  const r1 = await acme.responses.create({ model: 'gpt-4.1', input: 'call lookup id=77', tools: [mcp('strict')] });
  const ar = r1.output.at(-1);
  assert.equal(ar.type, 'mcp_approval_request');
  assert.equal(ar.name, 'lookup');
  assert.equal(S.servers.crm.toolCalls().length, 0);
  const r2 = await acme.responses.create({
    model: 'gpt-4.1',
    previous_response_id: r1.id,
    tools: [mcp('strict')],
    input: [{ type: 'mcp_approval_response', approval_request_id: ar.id, approve: true }],
  });
  assert.deepEqual(r2.output.map((o) => o.type), ['mcp_call', 'message']);
  assert.equal(r2.output[0].approval_request_id, ar.id);
  assert.equal(r2.output[0].error, null);
  assert.deepEqual(JSON.parse(r2.output[0].output), { server: 'crm', id: '77', found: true });
  const calls = S.servers.crm.toolCalls('lookup');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].credential, S.TA);
  const up = lastResponsesReq().json;
  assert.equal(up.previous_response_id, r1.id);
  assert.equal(up.tools[0].authorization, S.TA);
  assert.equal(up.tools[0].server_url, S.servers.crm.url);
  assert.deepEqual(up.input, [{ type: 'mcp_approval_response', approval_request_id: ar.id, approve: true }]);
});

test('streaming through the gateway: SDK events, and sse_not_buffered (first event arrives well before the last)', async () => {
  stack.reset();
  const t0 = Date.now();
  const stream = await acme.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')], stream: true });
  const seen = [];
  let final;
  for await (const ev of stream) {
    seen.push({ type: ev.type, at: Date.now() - t0 });
    if (ev.type === 'response.completed') final = ev.response;
  }
  assert.equal(seen[0].type, 'response.created');
  assert.equal(seen.at(-1).type, 'response.completed');
  assert.ok(seen.some((e) => e.type === 'response.mcp_call.completed'));
  const msg = final.output.find((o) => o.type === 'message');
  assert.match(msg.content[0].text, new RegExp(fingerprint(S.TA)));
  assert.equal(S.servers.crm.toolCalls('whoami')[0].credential, S.TA);
  assert.ok(seen.at(-1).at - seen[0].at >= 1000, `events spread over ${seen.at(-1).at - seen[0].at} ms`);

  // Raw SSE timing: the first event arrives well before the last one.
  const t1 = Date.now();
  const res = await gw.fetch(`/openai/v1/responses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')], stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = await readSse(res, t1);
  assert.ok(events.length >= 15);
  const first = events[0].at;
  const last = events.at(-1).at;
  assert.ok(last - first >= 1200, `first event at ${first} ms, last at ${last} ms: buffered`);
  assert.ok(new Set(events.map((e) => e.at)).size >= 8, 'events arrive in many separate chunks');
  assert.equal(events[0].event, 'response.created');
  assert.equal(events.at(-1).event, 'response.completed');
  assert.ok(!events.some((e) => e.data === '[DONE]'), 'no [DONE] invented for the Responses API');
});

test('pass-through: models, chat completions (JSON and stream with [DONE]), stored responses', async () => {
  stack.reset();
  const models = await acme.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4.1'));
  assert.equal((await acme.models.retrieve('gpt-4o')).id, 'gpt-4o');
  const nf = await rejects(acme.models.retrieve('no-such-model'));
  assert.ok(nf instanceof OpenAI.NotFoundError);
  assert.equal(nf.code, 'model_not_found');

  const c = await acme.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'ping pong' }] });
  assert.equal(c.choices[0].message.content, 'Echo: ping pong');
  const st = await acme.chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'stream me' }] });
  let text = '';
  for await (const ch of st) text += ch.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Echo: stream me');
  const raw = await gw.fetch(`/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'x' }] }),
  });
  const ev = await readSse(raw);
  assert.equal(ev.at(-1).data, '[DONE]');
  assert.equal(ev.filter((e) => e.data === '[DONE]').length, 1);

  const r = await acme.responses.create({ model: 'gpt-4.1', input: 'remember me' });
  const got = await acme.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, 'Echo: remember me');
  const g = stack.openaiEmu.requestsTo(`/v1/responses/${r.id}`).at(-1);
  assert.equal(g.method, 'GET');
  assert.equal(g.headers.authorization, `Bearer ${S.pk.acmeOpenai}`);
  // Another tenant's provider key cannot see it.
  const other = await rejects(globex.responses.retrieve(r.id));
  assert.equal(other.status, 404);
  // cf-* headers are not forwarded (CF-Worker is added by the runtime itself on every subrequest).
  for (const u of stack.openaiEmu.requests) {
    const cf = headerNames(u).filter((h) => h.startsWith('cf-') && h !== 'cf-worker');
    assert.deepEqual(cf, [], `cf-* header forwarded to ${u.path}`);
  }
});

test('query string, client headers and unrewritten bodies pass through unchanged', async () => {
  stack.reset();
  const body = '{"model":"gpt-4.1",  "messages":[{"role":"user","content":"caf\\u00e9 \u2603"}],\n "seed": 7 }';
  const res = await gw.request('POST', '/openai/v1/chat/completions?beta=true&x=1%2F2', {
    headers: {
      authorization: `Bearer ${S.keys.acme}`,
      'content-type': 'application/json',
      'openai-beta': 'responses_multi_agent=v1',
      'idempotency-key': 'idem-e2e-1',
      'x-stainless-custom': 'kept',
      'cf-e2e-client-header': 'dropped',
    },
    body,
  });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  const up = stack.openaiEmu.requestsTo('/v1/chat/completions').at(-1);
  assert.equal(up.query, '?beta=true&x=1%2F2');
  assert.equal(up.text, body, 'body bytes forwarded as sent');
  assert.equal(up.headers['openai-beta'], 'responses_multi_agent=v1');
  assert.equal(up.headers['idempotency-key'], 'idem-e2e-1');
  assert.equal(up.headers['x-stainless-custom'], 'kept');
  assert.equal(up.headers['cf-e2e-client-header'], undefined, 'cf-* client headers are not forwarded');
  assert.deepEqual(headerValues(up, 'authorization'), [`Bearer ${S.pk.acmeOpenai}`]);
  assert.equal(up.headers['x-api-key'], undefined);

  // Rewritten route: fields the gateway does not own survive as JSON.
  const future = { nested: [1, { b: null, c: 'ü' }], flag: true };
  const r2 = await gw.request('POST', '/openai/v1/responses?beta=true', {
    headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' },
    body: { model: 'gpt-4.1', input: 'call whoami', metadata: { run: 'e2e' }, x_future_field: future, tools: [mcp('crm', { server_description: 'CRM' }), { type: 'web_search' }] },
  });
  assert.equal(r2.status, 200, r2.text);
  const up2 = lastResponsesReq();
  assert.equal(up2.query, '?beta=true');
  assert.deepEqual(up2.json.x_future_field, future);
  assert.deepEqual(up2.json.metadata, { run: 'e2e' });
  assert.equal(up2.json.input, 'call whoami');
  assert.equal(up2.json.tools[0].server_description, 'CRM');
  assert.deepEqual(up2.json.tools[1], { type: 'web_search' });
});

test('the gateway key is also accepted from x-api-key and never forwarded', async () => {
  stack.reset();
  const r = await gw.request('GET', '/openai/v1/models', { headers: { 'x-api-key': S.keys.globex } });
  assert.equal(r.status, 200, r.text);
  const up = stack.openaiEmu.requestsTo('/v1/models').at(-1);
  assert.deepEqual(headerValues(up, 'authorization'), [`Bearer ${S.pk.globexOpenai}`]);
  assert.equal(up.headers['x-api-key'], undefined);
  const r2 = await gw.request('GET', '/openai/v1/models', { headers: { authorization: `bearer   ${S.keys.acme}  ` } });
  assert.equal(r2.status, 200, 'scheme is case-insensitive and whitespace is trimmed');
});

test('a tenant allowing unmanaged servers may name its own server; managed ones stay managed', async () => {
  stack.reset();
  const open = gw.openai(S.keys.open);
  const r = await open.responses.create({
    model: 'gpt-4.1', input: 'call whoami',
    tools: [mcp('mine', { server_url: S.servers.public.url, require_approval: 'never' })],
  });
  assert.equal(r.output[1].type, 'mcp_call');
  assert.equal(lastResponsesReq().json.tools[0].server_url, S.servers.public.url);
  assert.equal(S.servers.public.toolCalls('whoami').length, 1);
});

test('Responses errors from the provider pass through with their status and shape', async () => {
  stack.reset();
  // Provider-side 400: the emulator wants `model`.
  const e = await rejects(acme.responses.create({ input: 'x' }));
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.param, 'model');
  assert.equal(stack.openaiEmu.requestsTo('/v1/responses').length, 1, 'the gateway forwarded it');
  // Provider-side 424 when the MCP server rejects: globex's crm with a revoked token.
  const tid = 'revoked';
  const k = stack.openaiKey(tid);
  await gw.putTenant(tid, { providers: { openai: { api_key: k } }, mcp_servers: { crm: { url: S.servers.crm.url, auth: { type: 'bearer', token: 'revoked-token-value' } } } });
  const key = (await gw.createKey(tid)).key;
  const e2 = await rejects(gw.openai(key).responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp('crm')] }));
  assert.equal(e2.status, 424);
  assert.equal(S.servers.crm.rejections.at(-1).credential, 'revoked-token-value');
});

test('bodies over the default 32 MiB limit get 413 in both wire shapes, before reaching the provider', async () => {
  stack.reset();
  const big = JSON.stringify({ model: 'gpt-4.1', input: 'x'.repeat(32 * 1024 * 1024 + 16) });
  const r1 = await gw.request('POST', '/openai/v1/responses', { headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' }, body: big });
  assert.equal(r1.status, 413);
  assert.equal(r1.json.error.type, 'invalid_request_error');
  const r2 = await gw.request('POST', '/anthropic/v1/messages', {
    headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(32 * 1024 * 1024 + 16) }] }),
  });
  assert.equal(r2.status, 413);
  assert.equal(r2.json.type, 'error');
  assert.equal(r2.json.error.type, 'request_too_large');
  assert.equal(stack.providers.all().length, 0);
  // Just under the limit is forwarded.
  const ok = JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'y'.repeat(1024 * 1024) }] });
  const r3 = await gw.request('POST', '/openai/v1/chat/completions', { headers: { authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' }, body: ok });
  assert.equal(r3.status, 200);
});

test('nothing gateway-side reached upstream; no secret leaked to clients, KV or the log', async () => {
  assertNothingGatewaySideUpstream(stack);
  await assertNoLeaks(stack);
});
