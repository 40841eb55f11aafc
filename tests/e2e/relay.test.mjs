// The MCP relay end to end: providers reach relay-mode MCP servers
// through `/mcp/{tenant}/{server}` with short-lived capability tokens; the
// gateway swaps in the real credential, enforces the tool list and streams
// the answers back. The provider emulator connects to the relay URL it is
// given with the official MCP SDK client, as OpenAI and Anthropic do.
//
// Servers: crm (bearer, JSON answers), files (header credential, SSE
// answers), sess (sessions: Mcp-Session-Id, GET stream, DELETE), modern (the
// stateless 2026-07-28 revision), oauth (an oauth2 client-credentials
// server: the relay fetches its access token), and private (a second Worker
// reachable only through the gateway's PRIVATE_MCP service binding).

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  test, startGateway, newSecret, SECRETS, findSecrets, freePort, readSse, assertNoSecretsSeen,
  scanDirForSecrets, listFiles, SEEN,
} from './harness.mjs';
import { startProviders } from '../emulators/provider.mjs';
import { startMcpServer, fingerprint } from '../emulators/mcp-server.mjs';
import { startOAuthServer } from '../emulators/oauth-server.mjs';

const TTL_SECONDS = 4;

let gw;
let providers;
const srv = {};
let keys = {};
let TA;
let TB;
let HA;
let TS;
let TM;
let TP;
let as;
const issued = new Set();

/** Mints a capability token exactly as the gateway does (HKDF-SHA256 subkey, HMAC-SHA256). */
function mintToken(masterKeyB64, claims) {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(masterKeyB64, 'base64'), 'mcpgate/subkey/v1', 'mcpgate/relay-capability-token/v1', 32));
  const signed = `mcr1.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

const claims = (over = {}) => ({
  ten: 'acme', srv: 'crm', tools: ['whoami', 'search', 'lookup'], exp: Math.floor(Date.now() / 1000) + 60, jti: randomBytes(16).toString('hex'), ...over,
});

const relayUrl = (tenant, server) => `${gw.url}/mcp/${tenant}/${server}`;

/** The capability token the gateway gave the provider for `label` in the last request. */
function lastToken(label) {
  const reqs = providers.all().filter((r) => r.json).sort((a, b) => b.time - a.time);
  for (const r of reqs) {
    for (const t of r.json.tools ?? []) if (t.type === 'mcp' && t.server_label === label) return t.authorization;
    for (const s of r.json.mcp_servers ?? []) if (s.name === label) return s.authorization_token;
  }
  throw new Error(`no request carried ${label}`);
}

/** An official MCP SDK client on the relay with a capability token. */
async function relayClient(tenant, server, token, opts = {}) {
  const client = new Client({ name: 'relay-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(relayUrl(tenant, server)), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    fetch: (u, init) => gw.fetch(String(u), init),
    ...opts,
  });
  await client.connect(transport);
  return { client, transport };
}

/** A raw JSON-RPC POST to the relay. */
function rpc(tenant, server, body, headers = {}) {
  return gw.fetch(relayUrl(tenant, server), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };

function mcpCallOutput(resp) {
  const call = resp.output.find((o) => o.type === 'mcp_call');
  assert.ok(call, `an mcp_call in ${JSON.stringify(resp.output)}`);
  assert.equal(call.status, 'completed', JSON.stringify(call));
  return JSON.parse(call.output);
}

before(async () => {
  TA = newSecret('acme crm token', 'mcp_tok_');
  TB = newSecret('globex crm token', 'mcp_tok_');
  HA = newSecret('acme files header', 'hdr_');
  TS = newSecret('acme sess token', 'mcp_tok_');
  TM = newSecret('acme modern token', 'mcp_tok_');
  TP = newSecret('acme private token', 'mcp_tok_');
  providers = await startProviders({ delayMs: 50 });
  srv.crm = await startMcpServer({ name: 'crm', auth: { type: 'bearer', tokens: [TA, TB] } });
  srv.files = await startMcpServer({ name: 'files', auth: { type: 'headers', headers: { 'X-Api-Key': HA } }, transport: 'sse' });
  srv.sess = await startMcpServer({ name: 'sess', auth: { type: 'bearer', token: TS }, transport: 'sessions' });
  srv.modern = await startMcpServer({ name: 'modern', auth: { type: 'bearer', token: TM }, transport: 'stateless-2026' });
  as = await startOAuthServer({ accessTtlSec: 3600, onIssue: (v, kind) => {
    SECRETS.set(v, `oauth ${kind}`);
    issued.add(v);
  } });
  srv.oauth = await startMcpServer({ name: 'oauth', auth: { type: 'oauth', as, scope: 'mcp:tools' } });
  const oauthClient = as.addClient({ secret: true });
  const port = await freePort();
  gw = await startGateway({
    openaiBaseUrl: providers.openai.url,
    anthropicBaseUrl: providers.anthropic.url,
    port,
    vars: { PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, RELAY_TOKEN_TTL_SECONDS: String(TTL_SECONDS) },
    services: [{
      binding: 'PRIVATE_MCP',
      dir: 'tests/fixtures/private-mcp',
      vars: { TOKEN_SHA256: createHash('sha256').update(TP).digest('hex') },
    }],
  });
  const ok = ['whoami', 'search', 'lookup'];
  const pk = {};
  for (const t of ['acme', 'globex']) {
    pk[`${t}o`] = newSecret(`openai key ${t}`, 'sk-proj-');
    pk[`${t}a`] = newSecret(`anthropic key ${t}`, 'sk-ant-api03-');
    providers.openai.keys.add(pk[`${t}o`]);
    providers.anthropic.keys.add(pk[`${t}a`]);
  }
  await gw.putTenant('acme', {
    providers: { openai: { api_key: pk.acmeo }, anthropic: { api_key: pk.acmea } },
    mcp_servers: {
      crm: { url: srv.crm.url, mode: 'relay', auth: { type: 'bearer', token: TA }, allowed_tools: ok },
      crm_direct: { url: srv.crm.url, auth: { type: 'bearer', token: TA }, allowed_tools: ok },
      files: { url: srv.files.url, mode: 'relay', auth: { type: 'headers', headers: { 'X-Api-Key': HA } }, allowed_tools: ['whoami', 'search', 'ticks'] },
      sess: { url: srv.sess.url, mode: 'relay', auth: { type: 'bearer', token: TS }, allowed_tools: ['whoami', 'search', 'notify'] },
      modern: { url: srv.modern.url, mode: 'relay', auth: { type: 'bearer', token: TM }, allowed_tools: ['whoami', 'search'] },
      private: { url: 'http://private.internal/mcp', service: 'PRIVATE_MCP', auth: { type: 'bearer', token: TP }, allowed_tools: ['whoami', 'search'] },
      oauth: {
        url: srv.oauth.url, mode: 'relay', allowed_tools: ok,
        auth: {
          type: 'oauth2', grant: 'client_credentials', token_url: as.tokenUrl, client_id: oauthClient.client_id,
          client_secret: oauthClient.client_secret, scope: 'mcp:tools', resource: srv.oauth.url,
        },
      },
    },
  });
  await gw.putTenant('globex', {
    providers: { openai: { api_key: pk.globexo }, anthropic: { api_key: pk.globexa } },
    mcp_servers: { crm: { url: srv.crm.url, mode: 'relay', auth: { type: 'bearer', token: TB } } },
  });
  for (const t of ['acme', 'globex']) keys[t] = (await gw.createKey(t)).key;
});

after(async () => {
  await gw?.stop();
  await providers?.close();
  await Promise.all(Object.values(srv).map((s) => s.close()));
  await as?.close();
});

test('openai: a relayed tool call with a bearer credential', async () => {
  const oa = gw.openai(keys.acme);
  const r = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] });
  assert.deepEqual(mcpCallOutput(r), { server: 'crm', credential_fingerprint: fingerprint(TA) });
  const sent = providers.openai.requests.at(-1).json.tools[0];
  assert.equal(sent.server_url, relayUrl('acme', 'crm'));
  assert.match(sent.authorization, /^mcr1\./);
});

test('oauth2 credentials through the relay: a fresh access token at the relay, both providers', async () => {
  const r = await gw.openai(keys.acme).responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: 'oauth', require_approval: 'never' }] });
  const out = mcpCallOutput(r);
  assert.equal(out.server, 'oauth');
  const seen = srv.oauth.toolCalls('whoami').at(-1).credential;
  assert.ok(issued.has(seen), 'the MCP server got an access token from the authorization server');
  assert.equal(out.credential_fingerprint, fingerprint(seen));
  const sent = providers.openai.requests.at(-1).json.tools[0];
  assert.equal(sent.server_url, relayUrl('acme', 'oauth'));
  assert.match(sent.authorization, /^mcr1\./, 'the provider got a capability token, not the access token');
  const msg = await gw.anthropic(keys.acme).beta.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 256, betas: ['mcp-client-2025-11-20'],
    messages: [{ role: 'user', content: 'call search query=oauth' }],
    mcp_servers: [{ type: 'url', name: 'oauth', url: 'https://placeholder.invalid' }],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'oauth' }],
  });
  const result = msg.content.find((b) => b.type === 'mcp_tool_result');
  assert.equal(result.is_error, false, JSON.stringify(result));
  assert.equal(JSON.parse(result.content[0].text).query, 'oauth');
});

test('private: a server reached only through a service binding', async () => {
  const oa = gw.openai(keys.acme);
  const r = await oa.responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: 'private', require_approval: 'never' }] });
  assert.deepEqual(mcpCallOutput(r), { server: 'private', via: 'service-binding', host: 'private.internal', credential_fingerprint: fingerprint(TP) });
});

test('openai streaming: header credential, SSE answers from the MCP server', async () => {
  srv.files.reset();
  const oa = gw.openai(keys.acme);
  const stream = await oa.responses.create({
    model: 'gpt-4.1', stream: true, input: 'call search query=relay',
    tools: [{ type: 'mcp', server_label: 'files', require_approval: 'never' }],
  });
  let done = null;
  for await (const ev of stream) if (ev.type === 'response.completed') done = ev.response;
  assert.deepEqual(mcpCallOutput(done), { server: 'files', query: 'relay', results: ['relay-1', 'relay-2'] });
  const seen = srv.files.toolCalls('search');
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0].credential, { 'X-Api-Key': HA });
  assert.equal(seen[0].headers.authorization, undefined, 'the capability token stays at the gateway');
});

test('anthropic: header-credential servers work through the relay (direct mode rejects them)', async () => {
  const an = gw.anthropic(keys.acme);
  const msg = await an.beta.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 256, betas: ['mcp-client-2025-11-20'],
    messages: [{ role: 'user', content: 'call whoami' }],
    mcp_servers: [{ type: 'url', name: 'files', url: 'https://placeholder.invalid' }],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'files' }],
  });
  const result = msg.content.find((b) => b.type === 'mcp_tool_result');
  assert.equal(result.is_error, false, JSON.stringify(result));
  const sent = providers.anthropic.requests.at(-1).json.mcp_servers[0];
  assert.equal(sent.url, relayUrl('acme', 'files'));
  assert.match(sent.authorization_token, /^mcr1\./);
  assert.match(result.content[0].text, new RegExp(fingerprint(`X-Api-Key:${HA}`)));
});

test('anthropic streaming: bearer credential through the relay', async () => {
  const an = gw.anthropic(keys.acme);
  const stream = await an.beta.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 256, stream: true, betas: ['mcp-client-2025-04-04'],
    messages: [{ role: 'user', content: 'call lookup id=42' }],
    mcp_servers: [{ type: 'url', name: 'crm', url: 'https://placeholder.invalid' }],
  });
  const blocks = [];
  for await (const ev of stream) if (ev.type === 'content_block_start') blocks.push(ev.content_block);
  const result = blocks.find((b) => b.type === 'mcp_tool_result');
  assert.equal(result.is_error, false);
  assert.deepEqual(JSON.parse(result.content[0].text), { server: 'crm', id: '42', found: true });
});

test('private server with both providers, and its tools filtered', async () => {
  const an = gw.anthropic(keys.acme);
  const msg = await an.beta.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 256, betas: ['mcp-client-2025-11-20'],
    messages: [{ role: 'user', content: 'call search query=vpc' }],
    mcp_servers: [{ type: 'url', name: 'private', url: 'https://placeholder.invalid' }],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'private' }],
  });
  const result = msg.content.find((b) => b.type === 'mcp_tool_result');
  assert.deepEqual(JSON.parse(result.content[0].text), { server: 'private', query: 'vpc', results: ['vpc-private'] });
  const { client } = await relayClient('acme', 'private', lastToken('private'));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['whoami', 'search']);
  await assert.rejects(client.callTool({ name: 'delete_everything', arguments: {} }), /not allowed/);
  await client.close();
});

test('tools/list is filtered to the allowed tools, JSON and SSE answers alike', async () => {
  const oa = gw.openai(keys.acme);
  await oa.responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }, { type: 'mcp', server_label: 'files' }] });
  const crm = await relayClient('acme', 'crm', lastToken('crm'));
  assert.deepEqual((await crm.client.listTools()).tools.map((t) => t.name), ['whoami', 'search', 'lookup']);
  await crm.client.close();
  const files = await relayClient('acme', 'files', lastToken('files'));
  assert.deepEqual((await files.client.listTools()).tools.map((t) => t.name), ['whoami', 'search', 'ticks']);
  await files.client.close();
  // The servers themselves have more.
  const direct = new Client({ name: 'direct', version: '1' });
  await direct.connect(new StreamableHTTPClientTransport(new URL(srv.crm.url), { requestInit: { headers: { authorization: `Bearer ${TA}` } } }));
  assert.ok((await direct.listTools()).tools.some((t) => t.name === 'delete_everything'));
  await direct.close();
});

test('a denied tools/call gets a JSON-RPC error and never reaches the server', async () => {
  const oa = gw.openai(keys.acme);
  await oa.responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }] });
  const token = lastToken('crm');
  srv.crm.reset();
  const r = await rpc('acme', 'crm', { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'delete_everything', arguments: {} } }, { authorization: `Bearer ${token}` });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.id, 9);
  assert.equal(body.error.code, -32602);
  assert.match(body.error.message, /delete_everything.*not allowed/);
  const { client } = await relayClient('acme', 'crm', token);
  await assert.rejects(client.callTool({ name: 'delete_everything', arguments: {} }), (e) => e.code === -32602);
  assert.deepEqual(JSON.parse((await client.callTool({ name: 'search', arguments: { query: 'q' } })).content[0].text).query, 'q');
  await client.close();
  assert.equal(srv.crm.toolCalls('delete_everything').length, 0);
  assert.equal(srv.crm.toolCalls('search').length, 1);
  // A mirror header naming an allowed tool cannot smuggle the call through.
  const m = await rpc('acme', 'crm', { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_everything' } }, {
    authorization: `Bearer ${token}`, 'mcp-method': 'tools/call', 'mcp-name': 'search',
  });
  assert.equal(m.status, 400);
  assert.equal((await m.json()).error.code, -32020);
  // Duplicate keys: another parser could read the other name.
  const d = await rpc('acme', 'crm', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search","name":"delete_everything"}}', { authorization: `Bearer ${token}` });
  assert.equal(d.status, 400);
  assert.equal((await d.json()).error.code, -32700);
  assert.equal(srv.crm.toolCalls('delete_everything').length, 0);
});

/** Asserts a relay 401: Bearer challenge, JSON-RPC-shaped body, and nothing reached the server. */
async function assert401(res, server, { missing = false } = {}) {
  assert.equal(res.status, 401);
  const challenge = res.headers.get('www-authenticate');
  assert.match(challenge, /^Bearer realm="mcpgate"/);
  if (missing) assert.doesNotMatch(challenge, /error=/);
  else assert.match(challenge, /error="invalid_token"/);
  const body = await res.json();
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, null);
  assert.equal(typeof body.error.code, 'number');
  assert.equal(typeof body.error.message, 'string');
  assert.equal(server.requests.length, 0, 'nothing reached the MCP server');
  return body;
}

test('bad tokens get 401 and reach nothing: missing, malformed, forged, rotated key, other tenant or server', async () => {
  const oa = gw.openai(keys.acme);
  await oa.responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }, { type: 'mcp', server_label: 'files' }] });
  const acmeCrm = lastToken('crm');
  const acmeFiles = lastToken('files');
  await gw.openai(keys.globex).responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }] });
  const globexCrm = lastToken('crm');
  srv.crm.reset();
  srv.files.reset();
  await assert401(await rpc('acme', 'crm', initialize), srv.crm, { missing: true });
  await assert401(await rpc('acme', 'crm', initialize, { authorization: `Basic ${acmeCrm}` }), srv.crm, { missing: true });
  await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${TA}` }), srv.crm);
  await assert401(await rpc('acme', 'crm', initialize, { authorization: 'Bearer mcr1.garbage' }), srv.crm);
  await assert401(await rpc('acme', 'crm', initialize, { 'x-api-key': acmeCrm }), srv.crm, { missing: true });
  // Tampered: one character of the claims changed.
  const i = 'mcr1.'.length + 3;
  const flipped = acmeCrm.slice(0, i) + (acmeCrm[i] === 'A' ? 'B' : 'A') + acmeCrm.slice(i + 1);
  await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${flipped}` }), srv.crm);
  // Forged: well-formed, signed under a key the gateway does not hold (as after a MASTER_KEY rotation).
  const rotated = randomBytes(32).toString('base64');
  const forged = mintToken(rotated, claims({ tools: null }));
  const body = await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${forged}` }), srv.crm);
  assert.match(body.error.message, /invalid/);
  // The same claims under the real key work: the format above is the gateway's.
  const genuine = mintToken(gw.masterKey, claims());
  const ok = await rpc('acme', 'crm', initialize, { authorization: `Bearer ${genuine}` });
  assert.equal(ok.status, 200);
  await ok.text();
  srv.crm.reset();
  // Another tenant's token, another server's token.
  const cross = await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${globexCrm}` }), srv.crm);
  assert.match(cross.error.message, /not valid for this MCP server/);
  await assert401(await rpc('globex', 'crm', initialize, { authorization: `Bearer ${acmeCrm}` }), srv.crm);
  await assert401(await rpc('acme', 'files', initialize, { authorization: `Bearer ${acmeCrm}` }), srv.files);
  await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${acmeFiles}` }), srv.crm);
  // Valid signature and audience, but a server the tenant does not relay.
  const direct = await rpc('acme', 'crm_direct', initialize, { authorization: `Bearer ${mintToken(gw.masterKey, claims({ srv: 'crm_direct' }))}` });
  assert.equal(direct.status, 404);
  assert.equal((await direct.json()).jsonrpc, '2.0');
  // GET and DELETE are checked the same way.
  for (const method of ['GET', 'DELETE']) {
    const r = await gw.fetch(relayUrl('acme', 'crm'), { method, headers: { authorization: `Bearer ${forged}` } });
    await assert401(r, srv.crm);
  }
});

test('an expired token fails (short TTL)', async () => {
  await gw.openai(keys.acme).responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }] });
  const token = lastToken('crm');
  const claimsOf = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.ok(claimsOf.exp - Date.now() / 1000 <= TTL_SECONDS, 'the token lives TTL seconds');
  const fresh = await rpc('acme', 'crm', initialize, { authorization: `Bearer ${token}` });
  assert.equal(fresh.status, 200);
  await fresh.text();
  await new Promise((r) => setTimeout(r, (TTL_SECONDS + 1) * 1000));
  srv.crm.reset();
  const body = await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${token}` }), srv.crm);
  assert.match(body.error.message, /expired/);
  // Minted expired under the real key: refused for its expiry alone.
  await assert401(await rpc('acme', 'crm', initialize, { authorization: `Bearer ${mintToken(gw.masterKey, claims({ exp: Math.floor(Date.now() / 1000) - 1 }))}` }), srv.crm);
});

test('SSE answers from the MCP server arrive incrementally through the relay (sse_not_buffered)', async () => {
  const token = mintToken(gw.masterKey, claims({ srv: 'files', tools: ['ticks'] }));
  const t0 = Date.now();
  const res = await rpc('acme', 'files', { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'ticks', arguments: { count: 3, gap_ms: 400 } } }, {
    authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-06-18',
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const events = await readSse(res, t0);
  const ticks = events.filter((e) => e.data.includes('notifications/message'));
  assert.equal(ticks.length, 3, JSON.stringify(events));
  const last = events.at(-1);
  assert.equal(JSON.parse(last.data).id, 5);
  assert.ok(last.at - ticks[0].at >= 700, `first tick at ${ticks[0].at} ms, answer at ${last.at} ms: buffered`);
});

test('sessions: Mcp-Session-Id, MCP-Protocol-Version, the GET stream and DELETE pass through; SSE lists filtered', async () => {
  await gw.openai(keys.acme).responses.create({ model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'sess' }] });
  const token = lastToken('sess');
  srv.sess.reset();
  const { client, transport } = await relayClient('acme', 'sess', token);
  assert.ok(transport.sessionId, 'the session id came back through the relay');
  const changed = new Promise((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve(true)));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['whoami', 'search', 'notify']);
  await client.callTool({ name: 'notify', arguments: {} });
  assert.equal(await Promise.race([changed, new Promise((r) => setTimeout(() => r(false), 5000))]), true, 'a notification on the GET stream');
  const sid = transport.sessionId;
  await transport.terminateSession();
  await client.close();
  const reqs = srv.sess.requests;
  const get = reqs.find((r) => r.method === 'GET');
  assert.ok(get, 'the GET stream reached the server');
  assert.equal(get.headers['mcp-session-id'], sid);
  const del = reqs.find((r) => r.method === 'DELETE');
  assert.ok(del, 'DELETE reached the server');
  assert.equal(del.headers['mcp-session-id'], sid);
  const posts = reqs.filter((r) => r.method === 'POST' && r.headers['mcp-session-id'] === sid);
  assert.ok(posts.length >= 3);
  assert.ok(posts.every((r) => r.headers['mcp-protocol-version']), 'MCP-Protocol-Version passed through');
  assert.ok(reqs.every((r) => r.headers.authorization === `Bearer ${TS}`), 'the real credential, never the token');
  assert.equal(srv.sess.sessions.has(sid), false, 'the session ended');
});

test('the stateless 2026-07-28 revision: mirror headers pass, lists filtered, calls checked', async () => {
  const token = mintToken(gw.masterKey, claims({ srv: 'modern', tools: null }));
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
  const h = (method, name) => ({ authorization: `Bearer ${token}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) });
  srv.modern.reset();
  const list = await rpc('acme', 'modern', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }, h('tools/list'));
  assert.equal(list.status, 200);
  assert.deepEqual((await list.json()).result.tools.map((t) => t.name), ['whoami', 'search']);
  const call = await rpc('acme', 'modern', { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: meta } }, h('tools/call', 'whoami'));
  assert.match(call.headers.get('content-type'), /text\/event-stream/);
  const events = await readSse(call);
  const result = JSON.parse(events.at(-1).data).result;
  assert.deepEqual(JSON.parse(result.content[0].text), { server: 'modern', tool: 'whoami', credential_fingerprint: fingerprint(TM), revision: '2026-07-28' });
  assert.equal(call.headers.get('mcp-session-id'), null);
  const b64 = `=?base64?${Buffer.from('whoami').toString('base64')}?=`;
  const enc = await rpc('acme', 'modern', { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: meta } }, h('tools/call', b64));
  assert.equal(enc.status, 200, 'a base64-sentinel Mcp-Name is decoded before the check');
  await enc.text();
  const seen = srv.modern.requests.filter((r) => r.method === 'POST');
  assert.deepEqual(seen.map((r) => [r.headers['mcp-method'], r.headers['mcp-name'] ?? null]), [['tools/list', null], ['tools/call', 'whoami'], ['tools/call', b64]]);
  assert.ok(seen.every((r) => r.headers['mcp-protocol-version'] === '2026-07-28'));
  srv.modern.reset();
  const denied = await rpc('acme', 'modern', { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'delete_everything', _meta: meta } }, h('tools/call', 'delete_everything'));
  assert.equal((await denied.json()).error.code, -32602);
  const mismatch = await rpc('acme', 'modern', { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'search', _meta: meta } }, h('tools/list'));
  assert.equal(mismatch.status, 400);
  assert.equal((await mismatch.json()).error.code, -32020);
  assert.equal(srv.modern.requests.length, 0, 'policy answers never reach the server');
  const get = await gw.fetch(relayUrl('acme', 'modern'), { headers: { authorization: `Bearer ${token}` } });
  assert.equal(get.status, 405, "the server's own 405 for GET passes through");
  await get.text();
});

test('each relayed call is logged once, as JSON, with its decision and no secret', async () => {
  const lines = gw.log().split('\n').filter((l) => l.includes('"route":"relay"')).map((l) => JSON.parse(l.slice(l.indexOf('{'))));
  assert.ok(lines.some((l) => l.relay.mcp_method === 'tools/call' && l.relay.tool === 'whoami' && l.relay.decision === 'forwarded' && l.tenant === 'acme'));
  assert.ok(lines.some((l) => l.relay.tool === 'delete_everything' && l.relay.decision === 'tool_denied'));
  assert.ok(lines.some((l) => l.relay.token_error === 'token_expired' && l.status === 401));
  assert.ok(lines.some((l) => l.relay.token_error === 'token_bad_signature'));
  assert.ok(lines.some((l) => l.relay.token_error === 'token_wrong_audience'));
  assert.ok(lines.every((l) => !JSON.stringify(l).includes('mcr1.')), 'no token in the log');
});

test('forwarded tool calls are counted per tenant and server in the usage store', async () => {
  // Five more forwarded calls of its own, so the count below does not rest on other tests.
  const token = mintToken(gw.masterKey, claims({ exp: Math.floor(Date.now() / 1000) + 60 }));
  for (let i = 0; i < 5; i++) {
    const r = await rpc('acme', 'crm', { jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'search', arguments: { query: `u${i}` } } }, {
      authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-06-18',
    });
    assert.equal(r.status, 200);
    await r.text();
  }
  // Usage is flushed from the isolate about once a second (USAGE_FLUSH_MS).
  const day = new Date().toISOString().slice(0, 10);
  let total;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const r = await gw.admin('GET', `/admin/tenants/acme/usage?from=${day}&to=${day}`);
    assert.equal(r.status, 200, r.text);
    total = r.json.total;
    if ((total.relay_calls?.crm ?? 0) > 0) break;
  }
  assert.ok(total.relay_calls.crm >= 5, JSON.stringify(total));
  assert.ok(total.relay_calls.files >= 1 && total.relay_calls.private >= 1, JSON.stringify(total));
  assert.equal(total.relay_calls.crm_direct, undefined, 'direct-mode calls never pass the relay');
  assert.ok(total.mcp_calls.crm >= 1, 'the provider-reported calls are counted as before');
});

test('no real MCP credential reached a provider, a client or the logs', async () => {
  const real = new Map([...SECRETS].filter(([v, l]) => (/ (token|header)$/.test(l) && !l.startsWith('admin')) || issued.has(v)));
  assert.ok(real.size >= 7, 'the six static credentials and at least one OAuth access token');
  const leaks = [];
  // crm_direct is a direct-mode server: its credential is meant to go to the provider.
  const relayOnly = providers.history().filter((r) => !r.text.includes('crm_direct'));
  for (const r of relayOnly) {
    for (const l of findSecrets(Buffer.concat([Buffer.from(JSON.stringify(r.rawHeaders) + r.url), r.body]), real)) leaks.push(`${r.provider} ${r.url}: ${l}`);
  }
  assert.deepEqual(leaks, [], 'the provider emulators saw a real MCP credential');
  assert.ok(providers.history().some((r) => r.text.includes('mcr1.')), 'they saw capability tokens instead');
  // Standalone GET streams (sessions, the private worker) stay open by design until the
  // server or the gateway ends them; everything else must have finished by now.
  const settled = new Set();
  SEEN.forEach((e, i) => e.done?.then(() => settled.add(i)));
  const finite = SEEN.filter((e) => e.method !== 'GET').map((e) => e.done);
  await Promise.race([Promise.all(finite), new Promise((r) => setTimeout(r, 10_000))]);
  const open = SEEN.filter((e, i) => e.method !== 'GET' && !settled.has(i)).map((e) => `${e.method} ${e.url}`);
  assert.deepEqual(open, [], 'client responses that never finished');
  await gw.stop();
  await assertNoSecretsSeen();
  assert.deepEqual(scanDirForSecrets(gw.persistDir), [], 'plaintext secrets in the KV persist dir');
  assert.ok(listFiles(gw.persistDir).length > 0);
  assert.deepEqual(findSecrets(gw.log()), [], 'secrets in the wrangler/runtime log');
  assert.doesNotMatch(gw.log(), /panic/i);
});
