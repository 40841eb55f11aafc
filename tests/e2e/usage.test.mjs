// Metering and rate limits: after a known sequence of requests
// against the emulators (which record the usage each answer reported),
// `GET /admin/tenants/{id}/usage` shows exact counts -- requests, input/output
// tokens from JSON and SSE answers of both providers, MCP tool calls per
// server -- and a tenant with `rate_limit.requests_per_minute` gets 429s in the
// route's wire shape once a burst is over the limit, while other tenants are
// not affected.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { test, startStack, newSecret, rejects, assertNoLeaks, SEEN } from './harness.mjs';
import { MCP_BETA_OLD } from '../emulators/provider.mjs';
import { assertEveryResponseLogged } from './worker-log.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;
const dayOf = (ms) => new Date(ms).toISOString().slice(0, 10);
const MODEL = 'gpt-4.1';
const CLAUDE = 'claude-sonnet-4-6';
const mcp = (label) => ({ type: 'mcp', server_label: label });
const antServer = (name) => ({ type: 'url', name, url: 'https://placeholder.invalid/mcp' });

let stack;
let gw;
let keys;
const pk = {};

before(async () => {
  const T = newSecret('usage crm token', 'mcp_tok_');
  const H = newSecret('usage files header', 'hdr_');
  stack = await startStack({
    delayMs: 10,
    mcp: {
      crm: { type: 'bearer', token: T },
      files: { type: 'headers', headers: { 'X-Api-Key': H } },
    },
  });
  gw = stack.gw;
  const { crm, files } = stack.servers;
  const servers = {
    crm: { url: crm.url, auth: { type: 'bearer', token: T }, require_approval: 'never' },
    files: { url: files.url, auth: { type: 'headers', headers: { 'X-Api-Key': H } }, require_approval: 'never' },
    gated: { url: crm.url, auth: { type: 'bearer', token: T }, require_approval: 'always' },
  };
  keys = {};
  for (const [id, extra] of [
    ['meter', { mcp_servers: servers }],
    ['quiet', {}],
    ['limited', { mcp_servers: { crm: servers.crm }, rate_limit: { requests_per_minute: 3 } }],
    ['limited2', { rate_limit: { requests_per_minute: 3 } }],
    ['free', {}],
  ]) {
    pk[id] = { openai: stack.openaiKey(id), anthropic: stack.anthropicKey(id) };
    await gw.putTenant(id, { providers: { openai: { api_key: pk[id].openai }, anthropic: { api_key: pk[id].anthropic } }, ...extra });
    keys[id] = (await gw.createKey(id)).key;
  }
});

after(async () => {
  await stack?.close();
});

/** Every request an emulator received with this tenant's provider key. */
function upstreamOf(tenant) {
  return stack.providers.history().filter((r) => r.headers.authorization === `Bearer ${pk[tenant].openai}` || r.headers['x-api-key'] === pk[tenant].anthropic);
}

/** The usage the emulators reported to this tenant, summed: what the gateway must count. */
function reportedTotal(tenant) {
  const total = { requests: 0, input_tokens: 0, output_tokens: 0, mcp_calls: {} };
  for (const r of upstreamOf(tenant)) {
    total.requests += 1;
    const ok = r.response?.status >= 200 && r.response?.status < 300;
    if (!ok || !r.reported) continue;
    total.input_tokens += r.reported.input_tokens;
    total.output_tokens += r.reported.output_tokens;
    for (const [k, v] of Object.entries(r.reported.mcp_calls)) total.mcp_calls[k] = (total.mcp_calls[k] ?? 0) + v;
  }
  return total;
}

const usage = (tenant, query = '') => gw.admin('GET', `/admin/tenants/${tenant}/usage${query}`);

/** Polls the usage endpoint until `total.requests` reaches `n` (usage is written after the answer, via waitUntil). */
async function usageWhen(tenant, n, query = '') {
  const deadline = Date.now() + 8000;
  for (;;) {
    const r = await usage(tenant, query);
    assert.equal(r.status, 200, r.text);
    if (r.json.total.requests >= n || Date.now() > deadline) return r.json;
    await sleep(100);
  }
}

/** Range covering today (and yesterday, in case the run crosses midnight UTC). */
const around = () => `?from=${dayOf(Date.now() - DAY)}&to=${dayOf(Date.now() + DAY)}`;

test('metering: a known sequence of requests is counted exactly (requests, tokens from JSON and SSE of both providers, MCP calls per server)', async () => {
  const T0 = Date.now();
  const oai = gw.openai(keys.meter);
  const ant = gw.anthropic(keys.meter);
  const fresh = await usage('meter', around());
  assert.equal(fresh.status, 200, fresh.text);
  assert.deepEqual(fresh.json.total, { requests: 0, input_tokens: 0, output_tokens: 0, mcp_calls: {} });
  assert.deepEqual(fresh.json.days, []);

  // 1. OpenAI Responses, JSON: one call on crm.
  const r1 = await oai.responses.create({ model: MODEL, input: 'call whoami', tools: [mcp('crm')] });
  assert.equal(r1.output.filter((o) => o.type === 'mcp_call').length, 1);
  const rec1 = upstreamOf('meter').at(-1);
  assert.deepEqual([r1.usage.input_tokens, r1.usage.output_tokens], [rec1.reported.input_tokens, rec1.reported.output_tokens], 'the client sees the usage the emulator reported');
  // 2. OpenAI Responses, SSE: one call on files (header credential); the provider gzips its answer.
  const s2 = await oai.responses.create({ model: MODEL, input: 'call search query=q2', tools: [mcp('files')], stream: true }, { headers: { 'x-emulator-gzip': '1' } });
  let done2;
  for await (const ev of s2) if (ev.type === 'response.completed') done2 = ev.response;
  assert.equal(done2.output.filter((o) => o.type === 'mcp_call').length, 1);
  // 3. Two servers listed, one call (crm).
  await oai.responses.create({ model: MODEL, input: 'call lookup on crm id=7', tools: [mcp('crm'), mcp('files')] });
  // 4. Approval request: no call yet.
  const r4 = await oai.responses.create({ model: MODEL, input: 'call whoami', tools: [mcp('gated')] });
  const ar = r4.output.find((o) => o.type === 'mcp_approval_request');
  assert.ok(ar, 'an approval request');
  // 5. Approval response, streamed: the call on gated.
  const s5 = await oai.responses.create({
    model: MODEL, previous_response_id: r4.id, stream: true,
    input: [{ type: 'mcp_approval_response', approval_request_id: ar.id, approve: true }], tools: [mcp('gated')],
  });
  for await (const ev of s5) void ev;
  // 6-8. Chat Completions: JSON (gzip, in pieces), SSE with include_usage, SSE without usage (counted as a request, no tokens).
  const c6 = await oai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello there' }] }, { headers: { 'x-emulator-gzip': '1', 'x-emulator-split-writes': '11' } });
  assert.ok(c6.usage.prompt_tokens > 0);
  const s7 = await oai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'count me in' }], stream: true, stream_options: { include_usage: true } });
  for await (const ev of s7) void ev;
  const s8 = await oai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'no usage here' }], stream: true });
  for await (const ev of s8) void ev;
  // 9-10. Anthropic Messages with an MCP server: JSON and SSE, one call each on crm.
  const m9 = await ant.beta.messages.create({ model: CLAUDE, max_tokens: 256, betas: [MCP_BETA_OLD], messages: [{ role: 'user', content: 'call search on crm query=x' }], mcp_servers: [antServer('crm')] });
  assert.equal(m9.content.filter((b) => b.type === 'mcp_tool_use').length, 1);
  // (The SSE answer reaches the gateway in 37-byte pieces: events are cut across chunks.)
  const m10 = await ant.beta.messages.stream({ model: CLAUDE, max_tokens: 256, betas: [MCP_BETA_OLD], messages: [{ role: 'user', content: 'call whoami' }], mcp_servers: [antServer('crm')] }, { headers: { 'x-emulator-split-writes': '37' } }).finalMessage();
  assert.equal(m10.content.filter((b) => b.type === 'mcp_tool_use').length, 1);
  // 11. Anthropic Messages without MCP, JSON.
  await ant.messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  // 12. count_tokens and 13. a pass-through route: requests without usage.
  await ant.messages.countTokens({ model: CLAUDE, messages: [{ role: 'user', content: 'how many' }] });
  await oai.models.list();
  // 14. The provider rejects the request (400): forwarded, so counted, with no tokens.
  const bad = await gw.request('POST', '/openai/v1/responses', { headers: { authorization: `Bearer ${keys.meter}` }, body: { input: 'no model' } });
  assert.equal(bad.status, 400);
  assert.ok(bad.headers.get('x-request-id'), 'the error is the provider\'s own');
  // Rejected by the gateway itself: never forwarded, not counted.
  const unknown = await gw.request('POST', '/openai/v1/responses', { headers: { authorization: `Bearer ${keys.meter}` }, body: { model: MODEL, input: 'x', tools: [mcp('nope')] } });
  assert.equal(unknown.status, 400);
  const badJson = await gw.request('POST', '/anthropic/v1/messages', { headers: { 'x-api-key': keys.meter, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }, body: '{"model":' });
  assert.equal(badJson.status, 400);

  const expected = reportedTotal('meter');
  assert.equal(expected.requests, 14, 'the emulators saw the 14 forwarded requests');
  assert.deepEqual(expected.mcp_calls, { crm: 4, files: 1, gated: 1 }, 'the emulators made these MCP calls');
  assert.ok(expected.input_tokens > 0 && expected.output_tokens > 0);

  console.log("T before poll", Date.now() - T0);
  const u = await usageWhen("meter", 14, around());
  console.log("T after poll", Date.now() - T0);
  await sleep(300); // nothing more arrives later
  const again = (await usage('meter', around())).json;
  assert.deepEqual(again, u, 'the counts are final');
  assert.equal(u.tenant_id, 'meter');
  assert.deepEqual(u.total, expected, 'usage total = what the provider reported');
  const today = dayOf(Date.now());
  const days = u.days.map((d) => d.date);
  assert.ok(days.includes(today) && days.every((d) => d === today || d === dayOf(Date.now() - DAY)), JSON.stringify(days));
  if (u.days.length === 1) assert.deepEqual(u.days[0], { date: today, ...expected });
  for (const d of u.days) assert.deepEqual(Object.keys(d).sort(), ['date', 'input_tokens', 'mcp_calls', 'output_tokens', 'requests']);

  // Another tenant's counters are its own.
  const q0 = await usage('quiet', around());
  assert.deepEqual(q0.json.total, { requests: 0, input_tokens: 0, output_tokens: 0, mcp_calls: {} });
  const qm = await gw.anthropic(keys.quiet).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'quiet please' }] });
  const q1 = await usageWhen('quiet', 1, around());
  assert.deepEqual(q1.total, { requests: 1, input_tokens: qm.usage.input_tokens, output_tokens: qm.usage.output_tokens, mcp_calls: {} });
  assert.deepEqual(q1.total, reportedTotal('quiet'));
  assert.deepEqual((await usage('meter', around())).json.total, expected, 'meter unchanged by quiet');
});

test('usage range: default is the last 31 days up to today (UTC); a range without traffic is empty', async () => {
  const now = Date.now();
  const d = await usage('meter');
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.to, dayOf(now));
  assert.equal(d.json.from, dayOf(now - 30 * DAY));
  assert.ok(d.json.total.requests >= 14);
  const past = await usage('meter', '?from=2020-01-01&to=2020-01-31');
  assert.equal(past.status, 200, past.text);
  assert.deepEqual(past.json, { tenant_id: 'meter', from: '2020-01-01', to: '2020-01-31', days: [], total: { requests: 0, input_tokens: 0, output_tokens: 0, mcp_calls: {} } });
  const one = await usage('meter', `?from=${dayOf(now)}&to=${dayOf(now)}`);
  assert.equal(one.status, 200);
  assert.ok(one.json.days.every((x) => x.date === dayOf(now)));
});

test('usage validation: malformed from/to → 400 naming the parameter; unknown tenant 404; admin token required', async () => {
  const cases = [
    ['?from=2026-1-01', 'from'],
    ['?from=', 'from'],
    ['?from=2026-11-26T00:00:00Z', 'from'],
    ['?to=yesterday', 'to'],
    ['?to=20261126', 'to'],
    ['?from=2026-11-20&to=2026-11-01', 'from'],
  ];
  for (const [q, param] of cases) {
    const r = await usage('meter', q);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error', q);
    assert.equal(r.json.error.param, param, q);
    assert.match(r.json.error.message, new RegExp(`'${param}'`), q);
    assert.equal(r.headers.get('x-should-retry'), 'false', q);
  }
  const nf = await usage('nobody');
  assert.equal(nf.status, 404, nf.text);
  assert.equal(nf.json.error.type, 'not_found_error');
  const unauth = await gw.admin('GET', '/admin/tenants/meter/usage', undefined, { token: null });
  assert.equal(unauth.status, 401);
  const wrong = await gw.admin('GET', '/admin/tenants/meter/usage', undefined, { token: 'not-the-admin-token' });
  assert.equal(wrong.status, 401);
  const post = await gw.admin('POST', '/admin/tenants/meter/usage');
  assert.equal(post.status, 405);
});

test('usage validation: dates that do not exist (month 00 or 13, day 00 or 32) → 400 naming the parameter', async () => {
  for (const [q, param] of [
    ['?from=2026-00-10&to=2026-01-31', 'from'],
    ['?from=2026-01-00&to=2026-01-31', 'from'],
    ['?from=2026-01-01&to=2026-01-32', 'to'],
    ['?from=2025-12-01&to=2025-13-01', 'to'],
  ]) {
    const r = await usage('meter', q);
    assert.equal(r.status, 400, `${q}: ${r.status} ${r.text}`);
    assert.equal(r.json.error.param, param, q);
  }
});

/** Waits, if needed, so that at least `needMs` are left in the current wall-clock minute (the limit window). */
async function roomInMinute(needMs) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await sleep(left + 250);
}

function checkRetryAfter(r, what) {
  const ra = r.headers.get('retry-after');
  assert.match(ra ?? '', /^\d+$/, `${what}: retry-after ${ra}`);
  const n = Number(ra);
  assert.ok(n >= 1 && n <= 60, `${what}: retry-after ${n}`);
  const toNextMinute = Math.ceil((60_000 - (Date.now() % 60_000)) / 1000);
  assert.ok(Math.abs(n - toNextMinute) <= 2, `${what}: retry-after ${n}, next window in ${toNextMinute} s`);
  assert.notEqual(r.headers.get('x-should-retry'), 'false', `${what}: retrying later does help`);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.ok(r.headers.get('mcpgate-request-id'), what);
}

test('rate limit: a burst over requests_per_minute gets 429s in the route\'s wire shape with retry-after; other tenants are unaffected at the same time', async () => {
  await roomInMinute(12_000);
  const oaiGet = (tenant) => gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${keys[tenant]}` } });
  const antGet = (tenant) => gw.request('GET', '/anthropic/v1/models', { headers: { 'x-api-key': keys[tenant], 'anthropic-version': '2023-06-01' } });
  const times = (n, f) => Array.from({ length: n }, f);
  const before = { limited: upstreamOf('limited').length, limited2: upstreamOf('limited2').length, free: upstreamOf('free').length };
  const [lim, lim2, free] = await Promise.all([
    Promise.all([...times(6, () => oaiGet('limited')), ...times(6, () => antGet('limited'))]),
    Promise.all(times(6, () => oaiGet('limited2'))),
    Promise.all([...times(8, () => oaiGet('free')), ...times(8, () => antGet('free'))]),
  ]);
  const statuses = (rs) => rs.map((r) => r.status).sort();
  assert.deepEqual(statuses(lim), [...times(3, () => 200), ...times(9, () => 429)], 'limited: 3 admitted, 9 limited');
  assert.deepEqual(statuses(lim2), [...times(3, () => 200), ...times(3, () => 429)], 'limited2 has its own window');
  assert.deepEqual(statuses(free), times(16, () => 200), 'a tenant without a limit is not affected');

  lim.forEach((r, i) => {
    if (r.status !== 429) return;
    const openai = i < 6;
    const what = `limited ${openai ? 'openai' : 'anthropic'} #${i}`;
    checkRetryAfter(r, what);
    if (openai) {
      assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'], what);
      assert.equal(r.json.error.type, 'rate_limit_error', what);
      assert.equal(r.json.error.code, 'rate_limit_exceeded', what);
      assert.equal(r.json.error.param, null, what);
    } else {
      assert.equal(r.json.type, 'error', what);
      assert.equal(r.json.error.type, 'rate_limit_error', what);
      assert.equal(typeof r.json.error.message, 'string', what);
    }
    assert.match(r.json.error.message, /rate limit/i, what);
  });
  assert.ok(lim.slice(0, 6).some((r) => r.status === 429) && lim.slice(6).some((r) => r.status === 429), 'both wire shapes seen');

  // The official SDKs see RateLimitError (no retries), and nothing reaches the provider or the MCP server.
  const crmCalls = stack.servers.crm.calls.length;
  const e1 = await rejects(gw.openai(keys.limited).models.list());
  assert.ok(e1 instanceof OpenAI.RateLimitError, `${e1?.constructor?.name}: ${e1?.message}`);
  assert.equal(e1.status, 429);
  assert.equal(e1.error?.type ?? e1.type, 'rate_limit_error');
  const e2 = await rejects(gw.openai(keys.limited).responses.create({ model: MODEL, input: 'call whoami', tools: [mcp('crm')] }));
  assert.ok(e2 instanceof OpenAI.RateLimitError, `${e2?.constructor?.name}: ${e2?.message}`);
  const e3 = await rejects(gw.anthropic(keys.limited).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }));
  assert.ok(e3 instanceof Anthropic.RateLimitError, `${e3?.constructor?.name}: ${e3?.message}`);
  assert.equal(e3.status, 429);
  assert.equal(e3.error?.error?.type, 'rate_limit_error');
  const e4 = await rejects(gw.anthropic(keys.limited2).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }));
  assert.ok(e4 instanceof Anthropic.RateLimitError, `${e4?.constructor?.name}: ${e4?.message}`);
  assert.equal(stack.servers.crm.calls.length, crmCalls, 'the MCP server was not called');
  assert.equal(upstreamOf('limited').length - before.limited, 3, 'only admitted requests reached the provider');
  assert.equal(upstreamOf('limited2').length - before.limited2, 3);

  // Meanwhile the unlimited tenant still works, through the SDKs too.
  const models = await gw.openai(keys.free).models.list();
  assert.ok(models.data.length > 0);
  const msg = await gw.anthropic(keys.free).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'still here' }] });
  assert.equal(msg.type, 'message');
  assert.equal(upstreamOf('free').length - before.free, 18);

  // Limited requests are not counted as usage.
  const u = await usageWhen('limited', 3, around());
  await sleep(300);
  assert.equal((await usage('limited', around())).json.total.requests, 3);
  assert.equal(u.total.requests, 3);
  assert.equal((await usageWhen('free', 18, around())).total.requests, 18);
});

test('nothing leaked; every response has its one log line', async () => {
  await assertNoLeaks(stack);
  const n = await assertEveryResponseLogged(gw, SEEN);
  assert.ok(n > 40, `${n} responses checked`);
});
