// Per-end-user MCP credentials through the real gateway: two users of one
// tenant with different credentials for the same per-user server; a backend
// key acting for users via `mcpgate-user`, user keys bound to one user;
// interleaved concurrent requests (both providers, streaming and not) reach
// the MCP server with the right user's token every time (the emulator's
// whoami tool reports a fingerprint of the credential it saw); 424 naming
// the server for a user without a credential; omit mode; deleting a user
// kills their credentials and keys; nothing of one user in another's answers.
// Relay mode: a per-user server behind the relay gets capability tokens bound
// to the user; the relay fetches that user's credential and no other. Usage
// is counted per user: `GET …/usage?user=` shows one user's counters only.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { fingerprint } from '../emulators/mcp-server.mjs';
import { test, rejects, assertNoLeaks, startStack, SECRETS, newSecret } from './harness.mjs';
import * as whoami from './whoami.mjs';

let stack;
let gw;
let servers;
let backendKey;
const tok = {};

const mcp = (label) => ({ type: 'mcp', server_label: label });
const userPath = (u, rest = '') => `/admin/tenants/acme/users/${u}${rest}`;

/** Issues a key; its one showing (this answer) is not recorded as a client seeing a secret. */
async function newKey(body) {
  const r = await gw.admin('POST', '/admin/tenants/acme/keys', body, { fetchImpl: fetch });
  assert.equal(r.status, 201, r.text);
  SECRETS.set(r.json.key, 'gateway key');
  return r.json;
}

async function setCredential(user, server, token) {
  const r = await gw.admin('PUT', userPath(user, `/mcp_servers/${server}/credential`), { type: 'bearer', token });
  assert.equal(r.status, 200, r.text);
  assert.doesNotMatch(r.text, new RegExp(token));
}

const clients = (key, user) => whoami.sdkClients(gw, key, user);
/** The credential fingerprint the MCP server saw. */
const whoamiOpenAI = async (oai, server, stream) => (await whoami.whoamiOpenAI(oai, server, stream)).credential_fingerprint;
const whoamiAnthropic = async (ant, server, stream) =>
  (await whoami.whoamiAnthropic(ant, server, stream)).credential_fingerprint;

before(async () => {
  stack = await startStack({ mcp: { gh: { type: 'bearer', tokens: [] }, files: { type: 'bearer', tokens: [] } } });
  ({ gw, servers } = stack);
  for (const u of ['alice', 'bob']) {
    tok[u] = newSecret(`gh token of ${u}`, `ghp_${u}_`);
    servers.gh.auth.tokens.push(tok[u]);
  }
  tok.filesAlice = newSecret('files token of alice', 'fil_');
  servers.files.auth.tokens.push(tok.filesAlice);
  await gw.putTenant('acme', {
    providers: { openai: { api_key: stack.openaiKey('acme') }, anthropic: { api_key: stack.anthropicKey('acme') } },
    mcp_servers: {
      gh: { url: servers.gh.url, auth: { type: 'bearer' }, per_user: true },
      files: { url: servers.files.url, auth: { type: 'bearer' }, per_user: true, on_missing: 'omit' },
      gh_relay: { url: servers.gh.url, auth: { type: 'bearer' }, per_user: true, mode: 'relay', allowed_tools: ['whoami', 'search'] },
    },
  });
  backendKey = (await newKey({ act_as_users: true })).key;
  await setCredential('alice', 'gh', tok.alice);
  await setCredential('bob', 'gh', tok.bob);
  await setCredential('alice', 'files', tok.filesAlice);
});

after(async () => {
  await stack?.close();
});

test('admin: per-user servers shown without secrets; users listed, paginated', async () => {
  const t = await gw.getTenant('acme');
  assert.equal(t.json.mcp_servers.gh.per_user, true);
  assert.equal(t.json.mcp_servers.gh.on_missing, 'error');
  assert.deepEqual(t.json.mcp_servers.gh.auth, { type: 'bearer' });
  assert.equal(t.json.mcp_servers.files.on_missing, 'omit');
  const one = await gw.admin('GET', '/admin/tenants/acme/users?limit=1');
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.users.length, 1);
  assert.ok(one.json.cursor, 'a cursor for the next page');
  const two = await gw.admin('GET', `/admin/tenants/acme/users?limit=1&cursor=${encodeURIComponent(one.json.cursor)}`);
  assert.deepEqual([...one.json.users, ...two.json.users].sort(), ['alice', 'bob']);
  const u = await gw.admin('GET', userPath('alice'));
  assert.deepEqual(u.json.credentials, { gh: { type: 'bearer' }, files: { type: 'bearer' } });
  const bad = await gw.admin('PUT', userPath('alice', '/mcp_servers/gh/credential'), { type: 'headers', headers: { 'X-K': 'v' } });
  assert.equal(bad.status, 400, bad.text);
  const bad2 = await gw.admin('GET', userPath('bad%20id'));
  assert.equal(bad2.status, 400);
  const k = await gw.admin('POST', '/admin/tenants/acme/keys', { user: 'u', act_as_users: true });
  assert.equal(k.status, 400);
});

test('a backend key acting for users: each request carries its user token, interleaved and concurrent, both providers, streaming and not', async () => {
  stack.reset();
  const jobs = [];
  for (let i = 0; i < 6; i++) {
    for (const user of ['alice', 'bob']) {
      const { oai, ant } = clients(backendKey, user);
      const stream = i % 2 === 1;
      const want = fingerprint(tok[user]);
      jobs.push(whoamiOpenAI(oai, 'gh', stream).then((f) => assert.equal(f, want, `openai ${user} stream=${stream}`)));
      jobs.push(whoamiAnthropic(ant, 'gh', stream).then((f) => assert.equal(f, want, `anthropic ${user} stream=${stream}`)));
    }
  }
  await Promise.all(jobs);
  assert.equal(servers.gh.rejections.length, 0, 'the MCP server never saw a wrong credential');
  // The header never reaches the provider.
  for (const r of stack.providers.all()) assert.equal(r.headers['mcpgate-user'], undefined);
});

test('user keys act for their user; naming another user is 403; a tenant-wide key cannot name users', async () => {
  const aliceKey = (await newKey({ user: 'alice' })).key;
  const { oai } = clients(aliceKey);
  assert.equal(await whoamiOpenAI(oai, 'gh'), fingerprint(tok.alice));
  const { oai: sneaky, ant: sneakyAnt } = clients(aliceKey, 'bob');
  stack.reset();
  const e = await rejects(whoamiOpenAI(sneaky, 'gh'));
  assert.equal(e.status, 403);
  assert.ok(e instanceof OpenAI.APIError);
  assert.equal(e.code, 'user_not_allowed');
  const e2 = await rejects(whoamiAnthropic(sneakyAnt, 'gh'));
  assert.equal(e2.status, 403);
  assert.ok(e2 instanceof Anthropic.APIError);
  assert.equal(stack.providers.all().length, 0, 'the provider was not called');
  const plainKey = (await newKey(undefined)).key;
  const e3 = await rejects(whoamiOpenAI(clients(plainKey, 'alice').oai, 'gh'));
  assert.equal(e3.status, 403);
  // Without any user, a per-user server cannot be served.
  const e4 = await rejects(whoamiOpenAI(clients(plainKey).oai, 'gh'));
  assert.equal(e4.status, 424);
  assert.equal(e4.code, 'mcp_user_connect_required');
});

test('a user without a credential: 424 naming the server; omit mode leaves the server out and says so', async () => {
  const { oai, ant } = clients(backendKey, 'carol');
  stack.reset();
  const e = await rejects(whoamiOpenAI(oai, 'gh'));
  assert.equal(e.status, 424);
  assert.equal(e.code, 'mcp_user_connect_required');
  assert.match(e.message, /'gh'/);
  const ea = await rejects(whoamiAnthropic(ant, 'gh'));
  assert.equal(ea.status, 424);
  assert.match(ea.message, /'gh'/);
  assert.equal(stack.providers.all().length, 0);
  // files is omit: bob has none, so the request goes without it.
  const res = await gw.fetch('/openai/v1/responses', {
    method: 'POST',
    headers: { authorization: `Bearer ${backendKey}`, 'content-type': 'application/json', 'mcpgate-user': 'bob' },
    body: JSON.stringify({ model: 'gpt-4.1', input: 'hi', tools: [mcp('files'), { type: 'function', name: 'f', parameters: {} }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('mcpgate-omitted-servers'), 'files');
  const up = stack.providers.all().at(-1);
  assert.deepEqual(up.json.tools.map((t) => t.type), ['function']);
  // Alice has one: it is there, with her token.
  assert.equal(await whoamiOpenAI(clients(backendKey, 'alice').oai, 'files'), fingerprint(tok.filesAlice));
});

/** The capability token the gateway gave the provider in the newest request recorded. */
function lastCapability() {
  const r = stack.providers.all().sort((a, b) => b.time - a.time)[0];
  const t = (r.json.tools ?? []).find((x) => x.type === 'mcp')?.authorization ?? r.json.mcp_servers?.[0]?.authorization_token;
  assert.match(t, /^mcr1\./);
  return t;
}

/** A raw relayed tools/call of whoami with a capability token. */
async function relayWhoami(token) {
  const r = await gw.fetch('/mcp/acme/gh_relay', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
  });
  return { status: r.status, json: await r.json() };
}

test('relay mode: tokens bind the user; interleaved concurrent requests, both SDKs, streaming and not, each reach the server with that user token', async () => {
  await setCredential('alice', 'gh_relay', tok.alice);
  await setCredential('bob', 'gh_relay', tok.bob);
  stack.reset();
  const jobs = [];
  for (let i = 0; i < 4; i++) {
    for (const user of ['alice', 'bob']) {
      const { oai, ant } = clients(backendKey, user);
      const stream = i % 2 === 1;
      const want = fingerprint(tok[user]);
      jobs.push(whoamiOpenAI(oai, 'gh_relay', stream).then((f) => assert.equal(f, want, `openai ${user} stream=${stream}`)));
      jobs.push(whoamiAnthropic(ant, 'gh_relay', stream).then((f) => assert.equal(f, want, `anthropic ${user} stream=${stream}`)));
    }
  }
  await Promise.all(jobs);
  assert.equal(servers.gh.rejections.length, 0);
  // The providers saw only the relay URL and capability tokens: no user token, no user id.
  for (const r of stack.providers.all()) {
    const text = JSON.stringify(r.json);
    assert.doesNotMatch(text, /ghp_|alice|bob/);
    assert.match(text, /\/mcp\/acme\/gh_relay/);
  }
  // A token minted for alice fetches alice's credential, whoever presents it.
  stack.reset();
  assert.equal(await whoamiOpenAI(clients(backendKey, 'alice').oai, 'gh_relay'), fingerprint(tok.alice));
  const aliceToken = lastCapability();
  const viaRelay = await relayWhoami(aliceToken);
  assert.equal(viaRelay.status, 200, JSON.stringify(viaRelay.json));
  assert.equal(JSON.parse(viaRelay.json.result.content[0].text).credential_fingerprint, fingerprint(tok.alice));
  // A per-user token is no good for another server, relayed or not.
  const other = await gw.fetch('/mcp/acme/gh', { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }, body: '{}' });
  assert.ok([401, 404].includes(other.status), String(other.status));
  // Alice's credential removed: her token fetches nothing (424), bob's still works.
  assert.equal((await gw.admin('DELETE', userPath('alice', '/mcp_servers/gh_relay/credential'))).status, 204);
  const gone = await relayWhoami(aliceToken);
  assert.equal(gone.status, 424, JSON.stringify(gone.json));
  assert.match(gone.json.error.message, /gh_relay/);
  const e = await rejects(whoamiAnthropic(clients(backendKey, 'alice').ant, 'gh_relay'));
  assert.equal(e.status, 424);
  assert.equal(await whoamiAnthropic(clients(backendKey, 'bob').ant, 'gh_relay'), fingerprint(tok.bob));
  await setCredential('alice', 'gh_relay', tok.alice);
});

test("usage per user: each user's counters hold only that user's requests and calls; the tenant's hold all", async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const range = `from=${day(Date.now() - 86_400_000)}&to=${day(Date.now() + 86_400_000)}`;
  const usage = async (user) => {
    const r = await gw.admin('GET', `/admin/tenants/acme/usage?${range}${user ? `&user=${user}` : ''}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  // Two users who have made no request yet.
  for (const u of ['dora', 'eve']) {
    tok[u] = newSecret(`gh token of ${u}`, `ghp_${u}_`);
    servers.gh.auth.tokens.push(tok[u]);
    await setCredential(u, 'gh', tok[u]);
    await setCredential(u, 'gh_relay', tok[u]);
  }
  const fresh = await usage('dora');
  assert.equal(fresh.user, 'dora');
  assert.deepEqual(fresh.days, []);
  assert.equal(fresh.total.requests, 0);
  // Earlier tests' usage is still being flushed (about once a second): wait until it is all in.
  let tenantBefore = (await usage()).total;
  for (let settled = false; !settled;) {
    await sleep(1500);
    const now = (await usage()).total;
    settled = now.requests === tenantBefore.requests;
    tenantBefore = now;
  }
  stack.reset();
  // dora: 3 direct gh calls (OpenAI) and 2 relayed ones (Anthropic); eve: 1 relayed call and 2 plain requests.
  const dora = clients(backendKey, 'dora');
  const eve = clients(backendKey, 'eve');
  const jobs = [
    ...[0, 1, 2].map((i) => whoamiOpenAI(dora.oai, 'gh', i === 1)),
    ...[0, 1].map((i) => whoamiAnthropic(dora.ant, 'gh_relay', i === 1)),
    whoamiOpenAI(eve.oai, 'gh_relay'),
    eve.oai.responses.create({ model: 'gpt-4.1', input: 'hello' }),
    eve.ant.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  ];
  await Promise.all(jobs);
  // Counted after each answer, flushed about once a second: wait for every request.
  const deadline = Date.now() + 10_000;
  let d;
  let e;
  for (;;) {
    [d, e] = [await usage('dora'), await usage('eve')];
    if ((d.total.requests >= 5 && e.total.requests >= 3 && d.total.relay_calls?.gh_relay >= 2) || Date.now() > deadline) break;
    await sleep(200);
  }
  await sleep(1500); // nothing more arrives later
  [d, e] = [await usage('dora'), await usage('eve')];
  assert.equal(d.user, 'dora');
  assert.equal(d.total.requests, 5, JSON.stringify(d));
  assert.deepEqual(d.total.mcp_calls, { gh: 3, gh_relay: 2 });
  assert.deepEqual(d.total.relay_calls, { gh_relay: 2 });
  assert.equal(e.total.requests, 3, JSON.stringify(e));
  assert.deepEqual(e.total.mcp_calls, { gh_relay: 1 });
  assert.deepEqual(e.total.relay_calls, { gh_relay: 1 });
  assert.ok(d.total.input_tokens > 0 && e.total.input_tokens > 0);
  // The tenant counts every one of them too.
  const tenant = (await usage()).total;
  assert.equal(tenant.requests - tenantBefore.requests, 8);
  assert.equal(tenant.input_tokens - tenantBefore.input_tokens, d.total.input_tokens + e.total.input_tokens);
  assert.equal(tenant.output_tokens - tenantBefore.output_tokens, d.total.output_tokens + e.total.output_tokens);
  // A user without traffic has nothing; a malformed user id is 400 naming the parameter.
  const nobody = await usage('nobody');
  assert.deepEqual(nobody.days, []);
  assert.equal(nobody.total.requests, 0);
  const bad = await gw.admin('GET', '/admin/tenants/acme/usage?user=bad%20id');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'user');
});

test('deleting a user kills their credentials and keys; other users unaffected', async () => {
  const bobKey = (await newKey({ user: 'bob' })).key;
  assert.equal(await whoamiOpenAI(clients(bobKey).oai, 'gh'), fingerprint(tok.bob));
  const d = await gw.admin('DELETE', userPath('bob'));
  assert.equal(d.status, 204, d.text);
  const e = await rejects(whoamiOpenAI(clients(bobKey).oai, 'gh'));
  assert.equal(e.status, 401, 'the user key is gone');
  const e2 = await rejects(whoamiOpenAI(clients(backendKey, 'bob').oai, 'gh'));
  assert.equal(e2.status, 424, 'the credential is gone');
  assert.equal(await whoamiOpenAI(clients(backendKey, 'alice').oai, 'gh'), fingerprint(tok.alice));
  const list = await gw.admin('GET', '/admin/tenants/acme/users');
  assert.deepEqual(list.json.users.sort(), ['alice', 'dora', 'eve']);
  const keys = await gw.admin('GET', '/admin/tenants/acme/keys');
  assert.ok(!keys.json.keys.some((k) => k.user === 'bob'));
});

test('deleting the tenant wipes its users: a tenant re-created under the same id finds none', async () => {
  const before = await gw.admin('GET', '/admin/tenants/acme/users');
  assert.ok(before.json.users.includes('alice'), JSON.stringify(before.json));
  const body = (await gw.admin('GET', '/admin/tenants/acme')).json;
  assert.equal((await gw.admin('DELETE', '/admin/tenants/acme')).status, 204);
  await gw.putTenant('acme', {
    providers: { openai: { api_key: stack.openaiKey('acme again') } },
    mcp_servers: { gh: { url: body.mcp_servers.gh.url, auth: { type: 'bearer' }, per_user: true } },
  });
  const after = await gw.admin('GET', '/admin/tenants/acme/users');
  assert.deepEqual(after.json.users, []);
  assert.equal((await gw.admin('GET', userPath('alice'))).status, 404);
  const key = (await newKey({ act_as_users: true })).key;
  const e = await rejects(whoamiOpenAI(clients(key, 'alice').oai, 'gh'));
  assert.equal(e.status, 424, "the old tenant's user credential is gone");
});

test('closing: no secret in any answer, KV on disk or the log; no user id in the log', async () => {
  const log = gw.log();
  const lines = log.split('\n').filter((l) => l.includes('"user_hash"'));
  assert.ok(lines.length > 0, 'requests for users carry a user hash');
  for (const l of lines) assert.doesNotMatch(l, /alice|bob|carol/);
  await assertNoLeaks(stack);
});
