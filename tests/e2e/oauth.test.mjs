// OAuth for MCP servers through the real gateway (docs/oauth.md): the connect flow from admin link
// to stored tokens, tool calls across several access-token expiries, the
// single-flight refresh (20 concurrent requests, one token-endpoint call,
// against an authorization server that revokes reused refresh tokens),
// revoked grants → 424, token endpoint failures → 502, client credentials,
// tenant-supplied refresh tokens, and the added latency of a refresh.
//
// The authorization server emulator issues access tokens that live 3 s
// (safety margin min(60 s, lifetime / 2) = 1.5 s), so expiry happens during
// the tests. Every token it issues is registered as a secret: the closing
// check scans responses, the KV / Durable Object files and the runtime log.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { fingerprint } from '../emulators/mcp-server.mjs';
import { startOAuthServer } from '../emulators/oauth-server.mjs';
import { test, rejects, assertNoLeaks, startStack, SECRETS, newSecret, closedPort } from './harness.mjs';

// Access-token lifetime. The gateway uses a token while more than half of it is left, so
// a request must finish its MCP calls within TTL/2 of the check: 3 s gave 1.5 s, which a
// loaded 2-core machine overran (an expired token at the MCP server, 401). 6 s gives 3 s.
const TTL = 6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitExpiry = () => sleep(TTL * 1000 + 300);

let as;
let stack;
let gw;
let servers;
let key;
let oai;
let ant;
let cc;
let ccPost;
let seedClient;
let tenantBody;

const mcp = (label) => ({ type: 'mcp', server_label: label });
const oauthPath = (server) => `/admin/tenants/acme/mcp_servers/${server}/oauth`;

before(async () => {
  as = await startOAuthServer({ accessTtlSec: TTL, onIssue: (v, kind) => SECRETS.set(v, `oauth ${kind}`) });
  stack = await startStack({
    mcp: {
      docs: { type: 'oauth', as, scope: 'mcp:tools' },
      svc: { type: 'oauth', as },
      legacy: { type: 'oauth', as },
      plain: { type: 'bearer', token: 'unused' },
    },
  });
  ({ gw, servers } = stack);
  cc = as.addClient({ secret: true });
  ccPost = as.addClient({ secret: true });
  seedClient = as.addClient();
  const plainToken = newSecret('plain bearer', 'tok_');
  servers.plain.auth.tokens = [plainToken];
  tenantBody = {
    providers: { openai: { api_key: stack.openaiKey('acme') }, anthropic: { api_key: stack.anthropicKey('acme') } },
    mcp_servers: {
      // Everything discovered: 401 challenge → RFC 9728 → RFC 8414 → dynamic registration.
      docs: { url: servers.docs.url, auth: { type: 'oauth2' } },
      svc: {
        url: servers.svc.url,
        auth: {
          type: 'oauth2', grant: 'client_credentials', token_url: as.tokenUrl, client_id: cc.client_id,
          client_secret: cc.client_secret, scope: 'mcp:tools', resource: servers.svc.url,
        },
      },
      svcpost: {
        url: servers.svc.url,
        auth: {
          type: 'oauth2', grant: 'client_credentials', token_url: as.tokenUrl, client_id: ccPost.client_id,
          client_secret: ccPost.client_secret, client_auth: 'client_secret_post', resource: servers.svc.url,
        },
      },
      legacy: {
        url: servers.legacy.url,
        auth: {
          type: 'oauth2', grant: 'refresh_token', token_url: as.tokenUrl, client_id: seedClient.client_id,
          refresh_token: as.issueRefreshToken(seedClient.client_id, { resource: servers.legacy.url }),
          resource: servers.legacy.url,
        },
      },
      plain: { url: servers.plain.url, auth: { type: 'bearer', token: plainToken } },
    },
  };
  await gw.putTenant('acme', tenantBody);
  key = (await gw.createKey('acme')).key;
  oai = gw.openai(key);
  ant = gw.anthropic(key);
});

after(async () => {
  await stack?.close();
  await as?.close();
});

/** Creates an authorization link and follows it like a browser; returns the final response. */
async function connect(server) {
  const r = await gw.admin('POST', `${oauthPath(server)}/connect`);
  assert.equal(r.status, 200, r.text);
  const res = await fetch(r.json.authorization_url, { redirect: 'follow' });
  return { link: r.json, res, text: await res.text() };
}

async function status(server) {
  const r = await gw.admin('GET', oauthPath(server));
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** One tool call through the OpenAI SDK; returns the fingerprint of the token the MCP server saw. */
async function whoami(server, client = oai) {
  const r = await client.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [mcp(server)] });
  const call = r.output.find((o) => o.type === 'mcp_call');
  assert.ok(call, `an mcp_call in ${JSON.stringify(r.output.map((o) => o.type))}`);
  assert.equal(call.status, 'completed', JSON.stringify(call.error));
  return JSON.parse(call.output).credential_fingerprint;
}

/** The 424 docs/oauth.md fixes for a server that must be reconnected. */
function assertReconnect(e, server, shape) {
  assert.equal(e.status, 424, String(e));
  assert.equal(e.headers?.get?.('x-should-retry') ?? e.headers?.['x-should-retry'], 'false');
  if (shape === 'openai') {
    assert.ok(e instanceof OpenAI.APIError);
    assert.equal(e.code, 'mcp_oauth_reconnect_required');
    assert.equal(e.type, 'invalid_request_error');
  } else {
    assert.ok(e instanceof Anthropic.APIError);
    assert.equal(e.error?.type, 'error');
    assert.equal(e.error?.error?.type, 'invalid_request_error');
  }
  assert.match(e.message, new RegExp(`'${server}'`));
  assert.match(e.message, /reconnect/i);
}

test('before connecting: status says not connected, and a request naming the server fails fast with 424', async () => {
  const s = await status('docs');
  assert.equal(s.connected, false);
  assert.equal(s.status, 'not_connected');
  assert.equal(s.grant, 'authorization_code');
  stack.reset();
  const e = await rejects(whoami('docs'));
  assertReconnect(e, 'docs', 'openai');
  assert.match(e.message, /not been connected/);
  assert.equal(stack.providers.all().length, 0, 'the provider was not called');
});

test('connect flow: admin link → discovery, registration, PKCE → auto-approve → callback stores the tokens', async () => {
  const before = as.registrations.length;
  const { link, res, text } = await connect('docs');
  const u = new URL(link.authorization_url);
  assert.equal(u.origin, as.url);
  assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
  assert.match(u.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(u.searchParams.get('resource'), servers.docs.url, 'RFC 8707 resource = the MCP server');
  assert.equal(u.searchParams.get('scope'), 'mcp:tools', 'scope from the 401 challenge');
  assert.equal(u.searchParams.get('redirect_uri'), `${gw.url}/oauth/callback`);
  assert.equal(link.redirect_uri, `${gw.url}/oauth/callback`);
  assert.ok(u.searchParams.get('state').length >= 100);
  assert.equal(as.registrations.length, before + 1, 'one dynamic client registration');
  assert.equal(as.registrations.at(-1).request.token_endpoint_auth_method, 'none');

  assert.equal(res.status, 200, text);
  assert.ok(res.url.startsWith(`${gw.url}/oauth/callback?`), res.url);
  assert.match(text, /docs.*connected/s);
  const exchange = as.calls({ grant: 'authorization_code' }).at(-1);
  assert.ok(exchange.ok, 'code exchanged with a valid PKCE verifier');
  assert.equal(exchange.resource, servers.docs.url);
  assert.equal(exchange.client_auth, 'none');

  const s = await status('docs');
  assert.equal(s.connected, true);
  assert.equal(s.status, 'connected');
  assert.equal(s.access_token_valid, true);
  assert.ok(Date.parse(s.access_token_expires_at) > Date.now());
  assert.ok(Date.parse(s.last_refresh_at) <= Date.now());
  assert.equal(s.authorization_server, as.url);
  assert.equal(s.last_error, null);
  assert.doesNotMatch(JSON.stringify(s), /v1:|at_|rt_/, 'no token or envelope in the status');

  // The callback link is single-use.
  const replay = await gw.request('GET', new URL(res.url).pathname + new URL(res.url).search);
  assert.equal(replay.status, 400);
  assert.equal(replay.json.error.type, 'invalid_request_error');
});

test('tool calls succeed across several access-token expiries (OpenAI and Anthropic SDKs), with rotation', async () => {
  stack.reset();
  const startCalls = as.calls({ grant: 'refresh_token' }).length;
  const seen = new Set();
  for (let i = 0; i < 4; i++) {
    seen.add(await whoami('docs'));
    const m = await ant.beta.messages.create({
      model: 'claude-sonnet-4-6', max_tokens: 64, betas: ['mcp-client-2025-11-20'],
      messages: [{ role: 'user', content: 'call whoami' }],
      mcp_servers: [{ type: 'url', name: 'docs', url: 'https://placeholder.invalid/mcp' }],
    });
    const result = m.content.find((b) => b.type === 'mcp_tool_result');
    assert.ok(result && !result.is_error, JSON.stringify(m.content));
    await sleep(TTL * 1000 * 0.6);
  }
  const refreshes = as.calls({ grant: 'refresh_token' }).slice(startCalls);
  assert.ok(refreshes.length >= 3, `refreshed ${refreshes.length} times`);
  assert.ok(refreshes.every((c) => c.ok), 'every refresh succeeded');
  assert.equal(new Set(refreshes.map((c) => c.refresh_token_fp)).size, refreshes.length, 'each refresh used a new (rotated) refresh token');
  assert.ok(refreshes.every((c) => c.resource === servers.docs.url), 'resource sent on refreshes');
  assert.equal(as.events.reuseDetected, 0);
  assert.ok(seen.size >= 3, 'the MCP server saw several different access tokens');
  assert.equal(servers.docs.rejections.length, 0, 'the MCP server never rejected a token');
});

test('20 concurrent requests with an expired token: exactly one token-endpoint call, all succeed', async () => {
  await waitExpiry();
  stack.reset();
  as.tokenDelayMs = 200;
  const before = as.tokenCalls.length;
  try {
    const results = await Promise.all(Array.from({ length: 20 }, () => whoami('docs')));
    assert.equal(results.length, 20);
    assert.equal(new Set(results).size, 1, 'all 20 used the same fresh token');
  } finally {
    as.tokenDelayMs = 0;
  }
  const calls = as.tokenCalls.slice(before);
  assert.equal(calls.length, 1, `token endpoint calls: ${JSON.stringify(calls.map((c) => c.grant_type))}`);
  assert.equal(calls[0].grant_type, 'refresh_token');
  assert.ok(calls[0].ok);
  assert.equal(as.events.reuseDetected, 0, 'no refresh token was used twice');
  assert.equal(servers.docs.rejections.length, 0);
  assert.equal(stack.openaiEmu.requestsTo('/v1/responses').length, 20);
});

test('client_credentials servers: Basic and post client authentication, a new token after expiry', async () => {
  const fpA = await whoami('svc');
  const fpB = await whoami('svcpost');
  assert.notEqual(fpA, fpB);
  const [a] = as.calls({ grant: 'client_credentials', client: cc.client_id });
  assert.equal(a.client_auth, 'client_secret_basic');
  assert.equal(a.scope, 'mcp:tools');
  assert.equal(a.resource, servers.svc.url);
  const [b] = as.calls({ grant: 'client_credentials', client: ccPost.client_id });
  assert.equal(b.client_auth, 'client_secret_post');
  assert.equal(b.scope, null);
  // Within the lifetime the cached token is reused; after it, a new one is fetched.
  assert.equal(await whoami('svc'), fpA);
  assert.equal(as.calls({ grant: 'client_credentials', client: cc.client_id }).length, 1);
  await waitExpiry();
  assert.notEqual(await whoami('svc'), fpA);
  assert.equal(as.calls({ grant: 'client_credentials', client: cc.client_id }).length, 2);
  const s = await status('svc');
  assert.equal(s.connected, true);
  assert.equal(s.grant, 'client_credentials');
  const r = await gw.admin('POST', `${oauthPath('svc')}/connect`);
  assert.equal(r.status, 400, 'client_credentials needs no connect flow');
});

test('a tenant-supplied refresh token is rotated, and the rotation survives an unrelated PUT', async () => {
  await whoami('legacy');
  const first = as.calls({ client: seedClient.client_id });
  assert.equal(first.length, 1);
  assert.equal(first[0].grant_type, 'refresh_token');
  assert.equal(first[0].client_auth, 'none', 'a client without secret sends only client_id');
  // Re-PUT the same config with another field changed: the credential is kept.
  await gw.putTenant('acme', { ...tenantBody, allow_unmanaged_mcp_servers: true });
  await waitExpiry();
  await whoami('legacy');
  const calls = as.calls({ client: seedClient.client_id });
  assert.equal(calls.length, 2);
  assert.ok(calls[1].ok, 'the rotated refresh token was used, not the spent seed');
  assert.notEqual(calls[1].refresh_token_fp, calls[0].refresh_token_fp);
  assert.equal(as.events.reuseDetected, 0);
  await gw.putTenant('acme', tenantBody);
  // docs kept its connection through both PUTs.
  assert.equal((await status('docs')).connected, true);
});

test('GET tenant shows oauth2 configs with secrets redacted; admin errors', async () => {
  const r = await gw.getTenant('acme');
  assert.equal(r.status, 200);
  const svc = r.json.mcp_servers.svc.auth;
  assert.deepEqual(svc, {
    type: 'oauth2', grant: 'client_credentials', token_url: as.tokenUrl, client_id: cc.client_id,
    client_secret: '[redacted]', client_auth: 'client_secret_basic', scope: 'mcp:tools', resource: servers.svc.url,
  });
  assert.equal(r.json.mcp_servers.legacy.auth.refresh_token, '[redacted]');
  assert.deepEqual(r.json.mcp_servers.docs.auth, { type: 'oauth2', grant: 'authorization_code' });

  assert.equal((await gw.admin('GET', oauthPath('plain'))).status, 400, 'not an oauth2 server');
  assert.equal((await gw.admin('GET', oauthPath('nope'))).status, 404);
  assert.equal((await gw.admin('GET', '/admin/tenants/ghost/mcp_servers/docs/oauth')).status, 404);
  assert.equal((await gw.admin('GET', oauthPath('docs'), undefined, { token: null })).status, 401);
  assert.equal((await gw.admin('PUT', oauthPath('docs'))).status, 405);
  const bad = await gw.admin('PUT', '/admin/tenants/bad', {
    mcp_servers: { s: { url: servers.docs.url, auth: { type: 'oauth2', grant: 'client_credentials', token_url: 'http://as.example/token', client_id: 'c' } } },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'mcp_servers.s.auth.token_url');
});

test('a denied authorization and a garbage callback are clear 400s', async () => {
  as.denyNextAuthorization();
  const { res, text } = await connect('docs');
  assert.equal(res.status, 400, text);
  const j = JSON.parse(text);
  assert.equal(j.error.type, 'invalid_request_error');
  assert.match(j.error.message, /'docs'.*access_denied/);
  assert.equal((await status('docs')).connected, true, 'the earlier connection is untouched');
  const junk = await gw.request('GET', '/oauth/callback?state=nonsense&code=x');
  assert.equal(junk.status, 400);
  assert.equal(junk.json.error.param, 'state');
});

test('token endpoint unreachable or answering garbage → 502 naming the server, provider untouched', async () => {
  const port = await closedPort();
  await gw.putTenant('broken', {
    providers: { openai: { api_key: stack.openaiKey('broken') } },
    mcp_servers: {
      down: {
        url: servers.svc.url,
        auth: { type: 'oauth2', grant: 'client_credentials', token_url: `http://127.0.0.1:${port}/token`, client_id: cc.client_id, client_secret: cc.client_secret },
      },
    },
  });
  const brokenKey = (await gw.createKey('broken')).key;
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/responses', {
    headers: { authorization: `Bearer ${brokenKey}` },
    body: { model: 'gpt-4.1', input: 'hi', tools: [mcp('down')] },
  });
  assert.equal(r.status, 502, r.text);
  assert.equal(r.json.error.type, 'api_error');
  assert.match(r.json.error.message, /'down'.*could not be reached/);
  assert.equal(stack.providers.all().length, 0);

  await waitExpiry();
  as.mode = 'garbage';
  try {
    const e = await rejects(ant.messages.create({
      model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
      mcp_servers: [{ type: 'url', name: 'svc', url: 'https://placeholder.invalid/mcp' }],
    }, { maxRetries: 0 }));
    assert.equal(e.status, 502);
    assert.equal(e.error?.error?.type, 'api_error');
    assert.match(e.message, /'svc'.*malformed/);
  } finally {
    as.mode = null;
  }
  assert.equal(stack.providers.all().length, 0);
  const s = await status('svc');
  assert.equal(s.last_error.kind, 'token_endpoint_malformed');
  // Recovers once the token endpoint does.
  await whoami('svc');
  assert.equal((await status('svc')).last_error, null);
});

test('a revoked refresh token → 424 mcp_oauth_reconnect_required in both shapes; reconnecting fixes it', async () => {
  const { client_id: docsClient } = await status('docs');
  as.revokeClient(docsClient);
  await waitExpiry();
  stack.reset();
  const before = as.tokenCalls.length;
  assertReconnect(await rejects(whoami('docs')), 'docs', 'openai');
  const e = await rejects(ant.beta.messages.create({
    model: 'claude-sonnet-4-6', max_tokens: 16, betas: ['mcp-client-2025-11-20'],
    messages: [{ role: 'user', content: 'hi' }],
    mcp_servers: [{ type: 'url', name: 'docs', url: 'https://placeholder.invalid/mcp' }],
  }));
  assertReconnect(e, 'docs', 'anthropic');
  assert.match(e.message, /invalid_grant/);
  assert.equal(as.tokenCalls.length - before, 1, 'the rejected grant is dropped: the second request failed fast');
  assert.equal(stack.providers.all().length, 0, 'the provider was never called');
  const s = await status('docs');
  assert.equal(s.connected, false);
  assert.equal(s.status, 'reconnect_required');
  assert.equal(s.last_error.kind, 'reconnect_required');
  assert.match(s.last_error.message, /invalid_grant/);
  // Other servers are unaffected.
  await whoami('svc');

  const again = await connect('docs');
  assert.equal(again.res.status, 200, again.text);
  assert.equal(as.registrations.filter((r) => r.request.redirect_uris[0] === `${gw.url}/oauth/callback`).length, 1, 'the registered client is reused');
  await whoami('docs');
  assert.equal((await status('docs')).status, 'connected');
});

test('deleting a tenant forgets its tokens; re-creating it needs a new connection', async () => {
  await gw.putTenant('temp', {
    providers: { openai: { api_key: stack.openaiKey('temp') } },
    mcp_servers: { docs: { url: servers.docs.url, auth: { type: 'oauth2' } } },
  });
  const r = await gw.admin('POST', '/admin/tenants/temp/mcp_servers/docs/oauth/connect');
  assert.equal(r.status, 200);
  assert.equal((await fetch(r.json.authorization_url)).status, 200);
  assert.equal((await gw.admin('GET', '/admin/tenants/temp/mcp_servers/docs/oauth')).json.connected, true);
  assert.equal((await gw.deleteTenant('temp')).status, 204);
  await gw.putTenant('temp', {
    providers: { openai: { api_key: stack.openaiKey('temp2') } },
    mcp_servers: { docs: { url: servers.docs.url, auth: { type: 'oauth2' } } },
  });
  const s = (await gw.admin('GET', '/admin/tenants/temp/mcp_servers/docs/oauth')).json;
  assert.equal(s.connected, false);
  assert.equal(s.token_requests, 0);
  // DELETE .../oauth disconnects.
  assert.equal((await gw.admin('DELETE', oauthPath('svcpost'))).status, 204);
  assert.equal((await status('svcpost')).token_requests, 0);
});

test('latency: a request that had to refresh vs one that used the cached token', async (t) => {
  const body = {
    model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count me' }],
    mcp_servers: [{ type: 'url', name: 'docs', url: 'https://placeholder.invalid/mcp' }],
  };
  const headers = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'mcp-client-2025-11-20' };
  const timed = async (b) => {
    const t0 = performance.now();
    const r = await gw.request('POST', '/anthropic/v1/messages/count_tokens', { headers, body: b });
    assert.equal(r.status, 200, r.text);
    return performance.now() - t0;
  };
  const plainBody = { ...body, mcp_servers: [{ type: 'url', name: 'plain', url: 'https://placeholder.invalid/mcp' }] };
  const cached = [];
  const refreshed = [];
  const bearer = [];
  await timed(body);
  const N = 12;
  const refreshesBefore = as.calls({ grant: 'refresh_token' }).length;
  const logBefore = gw.log().length;
  for (let i = 0; i < N; i++) {
    await sleep(TTL * 500 + 150); // past the safety margin: the next request on docs refreshes
    await timed(plainBody); // re-opens the idle connections, so the three samples below start alike
    refreshed.push(await timed(body));
    cached.push(await timed(body));
    bearer.push(await timed(plainBody));
  }
  assert.equal(as.calls({ grant: 'refresh_token' }).length - refreshesBefore, N, 'each "refresh" sample refreshed, no other did');
  const objectMs = gw.log().slice(logBefore).split('\n')
    .filter((l) => l.includes('"event":"token_issued"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))).ms);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const fmt = (xs) => `median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  const paired = refreshed.map((r, i) => r - cached[i]);
  const report = [
    `count_tokens naming one MCP server, ${N} rounds, client-observed through wrangler dev (local emulators):`,
    `  bearer server (no OAuth):          ${fmt(bearer)}`,
    `  oauth2, cached token (KV read):    ${fmt(cached)}`,
    `  oauth2, had to refresh:            ${fmt(refreshed)}`,
    `  refresh minus cached, same round:  ${fmt(paired)}`,
    `  inside the Durable Object (token request + storage + KV write): ${objectMs.length ? fmt(objectMs) : 'n/a'}`,
  ].join('\n');
  t.diagnostic(report);
  console.log(report);
});

test('no secret leaked: responses, KV and Durable Object files, runtime log', async () => {
  await assertNoLeaks(stack);
});
