// Per-user OAuth through the real gateway: two users of one tenant connect
// DIFFERENT accounts of the OAuth emulator to the same per-user `oauth2`
// server (the connect link, followed by a browser signed in as that account,
// back through the gateway's callback). Then: interleaved concurrent
// requests for both users, both official SDKs, streaming and not, each reach
// the MCP server with its own user's token (the server's whoami names the
// account); the refresh is single-flight per (tenant, user, server) — 20
// concurrent requests per user with an expired token make exactly one
// refresh grant per account; a user whose grant was revoked gets 424
// mcp_oauth_reconnect_required for that server only while the other user
// still works; the same in relay mode, where the capability token binds the
// user; deleting a user drops their OAuth state and keys.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startOAuthServer } from '../emulators/oauth-server.mjs';
import { test, rejects, assertNoLeaks, startStack, SECRETS } from './harness.mjs';
import { sdkClients, whoamiAnthropic, whoamiOpenAI } from './whoami.mjs';

// Access-token lifetime: long enough for a request's MCP calls to finish
// within the half-life the gateway keeps as a safety margin on a loaded machine.
const TTL = 6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitExpiry = () => sleep(TTL * 1000 + 300);
const ACCOUNT = { alice: 'alice@idp.example', bob: 'bob@idp.example' };

let as;
let stack;
let gw;
let servers;
let backendKey;

const userPath = (u, rest = '') => `/admin/tenants/acme/users/${u}${rest}`;

const clients = (key, user) => sdkClients(gw, key, user);

/** Runs the connect flow for `user` in a browser signed in to the authorization server as `account`. */
async function connect(user, server, account) {
  const r = await gw.admin('POST', userPath(user, `/mcp_servers/${server}/oauth/connect`));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.server, server);
  const res = await fetch(r.json.authorization_url, { redirect: 'follow', headers: { cookie: `emu_account=${encodeURIComponent(account)}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.ok(res.url.startsWith(`${gw.url}/oauth/callback?`), res.url);
  assert.match(text, /connected/);
}

async function status(user, server) {
  const r = await gw.admin('GET', userPath(user, `/mcp_servers/${server}/oauth`));
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Both users, both providers, streaming and not, interleaved and concurrent; each must see its own account. */
async function interleaved(server, rounds) {
  const jobs = [];
  for (let i = 0; i < rounds; i++) {
    for (const user of ['alice', 'bob']) {
      const { oai, ant } = clients(backendKey, user);
      const stream = i % 2 === 1;
      const check = (who, what) => {
        assert.equal(who.server, 'drive', 'the one MCP server behind both entries');
        assert.equal(who.subject, ACCOUNT[user], `${what} for ${user} stream=${stream}`);
      };
      jobs.push(whoamiOpenAI(oai, server, stream).then((w) => check(w, 'openai')));
      jobs.push(whoamiAnthropic(ant, server, stream).then((w) => check(w, 'anthropic')));
    }
  }
  await Promise.all(jobs);
}

function assertReconnect(e, server) {
  assert.equal(e.status, 424, String(e));
  assert.match(e.message, new RegExp(`'${server}'`));
  assert.match(e.message, /reconnect/i);
}

before(async () => {
  as = await startOAuthServer({ accessTtlSec: TTL, onIssue: (v, kind) => SECRETS.set(v, `oauth ${kind}`) });
  stack = await startStack({ mcp: { drive: { type: 'oauth', as, scope: 'mcp:tools' } } });
  ({ gw, servers } = stack);
  await gw.putTenant('acme', {
    providers: { openai: { api_key: stack.openaiKey('acme') }, anthropic: { api_key: stack.anthropicKey('acme') } },
    mcp_servers: {
      // Discovered from the MCP server's 401 challenge; each user connects their own account.
      drive: { url: servers.drive.url, auth: { type: 'oauth2' }, per_user: true },
      // The same server through the relay: the provider holds only a capability token bound to the user.
      drive_relay: { url: servers.drive.url, auth: { type: 'oauth2' }, per_user: true, mode: 'relay', allowed_tools: ['whoami', 'search'] },
    },
  });
  const k = await gw.admin('POST', '/admin/tenants/acme/keys', { act_as_users: true }, { fetchImpl: fetch });
  assert.equal(k.status, 201, k.text);
  SECRETS.set(k.json.key, 'backend key');
  backendKey = k.json.key;
});

after(async () => {
  await stack?.close();
  await as?.close();
});

test('before connecting: status not connected; a request is 424 mcp_user_connect_required; the tenant-level route refuses a per-user server', async () => {
  const s = await status('alice', 'drive');
  assert.equal(s.connected, false);
  assert.equal(s.status, 'not_connected');
  stack.reset();
  const e = await rejects(whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive'));
  assert.equal(e.status, 424);
  assert.ok(e instanceof OpenAI.APIError);
  assert.equal(e.code, 'mcp_user_connect_required');
  assert.match(e.message, /'drive'/);
  const ea = await rejects(whoamiAnthropic(clients(backendKey, 'alice').ant, 'drive_relay'));
  assert.equal(ea.status, 424);
  assert.ok(ea instanceof Anthropic.APIError);
  assert.match(ea.message, /'drive_relay'/);
  assert.equal(stack.providers.all().length, 0, 'the provider was not called');
  const t = await gw.admin('POST', '/admin/tenants/acme/mcp_servers/drive/oauth/connect');
  assert.equal(t.status, 400, t.text);
  assert.match(t.json.error.message, /per user/);
});

test('two users connect different accounts to the same per-user server (direct and relay)', async () => {
  for (const server of ['drive', 'drive_relay']) {
    for (const user of ['alice', 'bob']) await connect(user, server, ACCOUNT[user]);
  }
  for (const server of ['drive', 'drive_relay']) {
    for (const user of ['alice', 'bob']) {
      const s = await status(user, server);
      assert.equal(s.connected, true, `${user} ${server}`);
      assert.equal(s.access_token_valid, true);
      assert.doesNotMatch(JSON.stringify(s), /at_|rt_|v1:/, 'no token or envelope in the status');
    }
  }
  const codes = as.calls({ grant: 'authorization_code' });
  assert.equal(codes.length, 4);
  assert.ok(codes.every((c) => c.ok));
  assert.deepEqual(codes.map((c) => c.subject).sort(), [ACCOUNT.alice, ACCOUNT.alice, ACCOUNT.bob, ACCOUNT.bob]);
  // A user who never connected is still told to connect.
  const e = await rejects(whoamiOpenAI(clients(backendKey, 'carol').oai, 'drive'));
  assert.equal(e.status, 424);
  assert.equal(e.code, 'mcp_user_connect_required');
});

test('interleaved concurrent requests, both SDKs, streaming and not: each reaches the MCP server with its own user token (direct)', async () => {
  stack.reset();
  await interleaved('drive', 4);
  assert.equal(servers.drive.rejections.length, 0, 'the MCP server never rejected a token');
});

test('relay mode: the capability token binds the user; each relayed call carries that user token', async () => {
  stack.reset();
  await interleaved('drive_relay', 4);
  assert.equal(servers.drive.rejections.length, 0);
  // The provider got only the relay URL and a capability token, never an access token.
  for (const r of stack.providers.all()) {
    const servs = [...(r.json?.tools ?? []).filter((t) => t.type === 'mcp'), ...(r.json?.mcp_servers ?? [])];
    assert.equal(servs.length, 1);
    for (const s of servs) {
      const cred = s.authorization ?? s.authorization_token;
      assert.match(cred, /^mcr1\./, 'a capability token');
      assert.match(s.server_url ?? s.url, /\/mcp\/acme\/drive_relay$/);
    }
  }
});

test('20 concurrent requests per user with expired tokens: exactly one refresh grant per user, all succeed', async () => {
  await waitExpiry();
  stack.reset();
  as.tokenDelayMs = 200;
  const before = as.tokenCalls.length;
  try {
    const jobs = [];
    for (let i = 0; i < 20; i++) {
      for (const user of ['alice', 'bob']) {
        jobs.push(whoamiOpenAI(clients(backendKey, user).oai, 'drive').then((w) => assert.equal(w.subject, ACCOUNT[user])));
      }
    }
    await Promise.all(jobs);
  } finally {
    as.tokenDelayMs = 0;
  }
  const calls = as.tokenCalls.slice(before);
  assert.ok(calls.every((c) => c.grant_type === 'refresh_token' && c.ok), JSON.stringify(calls));
  assert.equal(calls.filter((c) => c.subject === ACCOUNT.alice).length, 1, 'one refresh for alice');
  assert.equal(calls.filter((c) => c.subject === ACCOUNT.bob).length, 1, 'one refresh for bob');
  assert.equal(calls.length, 2);
  assert.equal(as.events.reuseDetected, 0, 'no refresh token was used twice');
  assert.equal(servers.drive.rejections.length, 0);
});

test('a revoked grant: that user gets 424 mcp_oauth_reconnect_required for that server only; the other user still works', async () => {
  as.revokeSubject(ACCOUNT.bob);
  await waitExpiry();
  const { oai, ant } = clients(backendKey, 'bob');
  const e = await rejects(whoamiOpenAI(oai, 'drive'));
  assertReconnect(e, 'drive');
  assert.ok(e instanceof OpenAI.APIError);
  assert.equal(e.code, 'mcp_oauth_reconnect_required');
  const ea = await rejects(whoamiAnthropic(ant, 'drive'));
  assertReconnect(ea, 'drive');
  assert.equal((await status('bob', 'drive')).status, 'reconnect_required');
  // Alice, same server, same moment: fine (direct and relay).
  assert.equal((await whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive')).subject, ACCOUNT.alice);
  assert.equal((await whoamiAnthropic(clients(backendKey, 'alice').ant, 'drive_relay')).subject, ACCOUNT.alice);
  // Bob reconnects (signing in again) and works again; the revocation hit his
  // account everywhere, so the relayed entry needs its own reconnect.
  for (const server of ['drive', 'drive_relay']) await connect('bob', server, ACCOUNT.bob);
  assert.equal((await whoamiOpenAI(oai, 'drive')).subject, ACCOUNT.bob);
  assert.equal((await whoamiAnthropic(ant, 'drive_relay')).subject, ACCOUNT.bob);
});

test('deleting a user drops their OAuth state and keys; the other user is unaffected', async () => {
  const k = await gw.admin('POST', '/admin/tenants/acme/keys', { user: 'bob' }, { fetchImpl: fetch });
  assert.equal(k.status, 201);
  SECRETS.set(k.json.key, 'bob key');
  const bob = clients(k.json.key);
  stack.reset();
  assert.equal((await whoamiOpenAI(bob.oai, 'drive_relay')).subject, ACCOUNT.bob);
  const [sent] = stack.providers.all();
  const token = sent.json.tools[0].authorization;
  assert.match(token, /^mcr1\./);
  assert.equal((await gw.admin('DELETE', userPath('bob'))).status, 204);
  for (const server of ['drive', 'drive_relay']) {
    const s = await status('bob', server);
    assert.equal(s.connected, false, `${server}: ${JSON.stringify(s)}`);
    assert.equal(s.status, 'not_connected');
  }
  assert.equal((await rejects(whoamiOpenAI(bob.oai, 'drive'))).status, 401, 'the user key is gone');
  const e = await rejects(whoamiOpenAI(clients(backendKey, 'bob').oai, 'drive'));
  assert.equal(e.status, 424);
  assert.equal(e.code, 'mcp_user_connect_required');
  // A capability token minted for bob before the deletion fetches nothing any more.
  const r = await gw.fetch('/mcp/acme/drive_relay', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
  });
  const body = await r.json();
  assert.equal(r.status, 424, JSON.stringify(body));
  assert.match(body.error.message, /drive_relay/);
  // Alice is unaffected.
  assert.equal((await whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive')).subject, ACCOUNT.alice);
  assert.equal((await whoamiAnthropic(clients(backendKey, 'alice').ant, 'drive_relay')).subject, ACCOUNT.alice);
});

test("a server's OAuth client changes: no user's old tokens are used; each user connects again", async () => {
  const t = await gw.admin('GET', '/admin/tenants/acme');
  const body = {
    providers: { openai: { api_key: stack.openaiKey('acme 2') }, anthropic: { api_key: stack.anthropicKey('acme 2') } },
    mcp_servers: {
      // An explicit scope is a new OAuth config: a new credential for every user.
      drive: { url: servers.drive.url, auth: { type: 'oauth2', scope: 'mcp:tools' }, per_user: true },
      drive_relay: { url: servers.drive.url, auth: { type: 'oauth2' }, per_user: true, mode: 'relay', allowed_tools: ['whoami', 'search'] },
    },
  };
  assert.equal(t.json.mcp_servers.drive.per_user, true);
  await gw.putTenant('acme', body);
  const e = await rejects(whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive'));
  assert.equal(e.status, 424);
  assert.equal(e.code, 'mcp_user_connect_required');
  assert.equal((await status('alice', 'drive')).status, 'not_connected');
  // The unchanged server keeps every user's connection.
  assert.equal((await whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive_relay')).subject, ACCOUNT.alice);
  await connect('alice', 'drive', ACCOUNT.alice);
  assert.equal((await whoamiOpenAI(clients(backendKey, 'alice').oai, 'drive')).subject, ACCOUNT.alice);
});

test('closing: no secret in any answer, KV or Durable Object files, or the log; no user id in the log', async () => {
  const log = gw.log();
  for (const l of log.split('\n').filter((x) => x.includes('"user_hash"'))) assert.doesNotMatch(l, /alice|bob|carol/);
  await assertNoLeaks(stack);
});
