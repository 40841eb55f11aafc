// Master-key rotation end to end: a gateway runs under key A with tenants,
// gateway keys, a bearer server, a relay server and an OAuth server connected
// through the browser flow; it restarts with MASTER_KEY=B and
// MASTER_KEY_PREVIOUS=A (everything still works, old envelopes and a relay
// token minted under A are accepted), `make reseal` (scripts/reseal.mjs)
// re-seals everything under B while requests keep flowing, the count of
// secrets under A drops to zero, and after a restart with B alone every
// tenant, key and OAuth connection still works without reconnecting.
//
// The restarts are stop/start of `wrangler dev` on the same persist dir and
// port (a deployment swaps the secret without downtime); "under load" is the
// re-seal pass, which runs while clients keep sending requests.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { startProviders } from '../emulators/provider.mjs';
import { startMcpServer } from '../emulators/mcp-server.mjs';
import { startOAuthServer } from '../emulators/oauth-server.mjs';
import {
  test, startGateway, newSecret, SECRETS, freePort, assertNoSecretsSeen, scanDirForSecrets, findSecrets, REPO_ROOT,
} from './harness.mjs';

const TTL = 6; // access tokens expire during the test: refreshes need the sealed refresh token
const RELAY_TTL = 60;
const FILLERS = 60; // extra tenants with two keys each, for the re-seal throughput figure
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
SECRETS.set(KEY_A, 'MASTER_KEY A');
SECRETS.set(KEY_B, 'MASTER_KEY B');
const ADMIN = newSecret('admin-token', 'adm_');

let providers;
let as;
const srv = {};
let gw;
let port;
let persistDir;
const roots = [];
let acmeKey;
const fillerKeys = [];
let relayTokenA;
let registrationsAfterConnect;
let authorizationsAfterConnect;

async function boot(vars) {
  if (gw) await gw.stop();
  gw = await startGateway({
    openaiBaseUrl: providers.openai.url,
    anthropicBaseUrl: providers.anthropic.url,
    port,
    persistDir,
    vars: { ADMIN_TOKEN: ADMIN, RELAY_TOKEN_TTL_SECONDS: String(RELAY_TTL), PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, ...vars },
  });
  persistDir = gw.persistDir;
  roots.push(gw.root);
}

const tools = (...labels) => labels.map((l) => ({ type: 'mcp', server_label: l, require_approval: 'never' }));

/** One OpenAI Responses call per server (none: a plain call); asserts each MCP call completed. */
async function call(key, labels) {
  if (labels.length === 0) {
    await gw.openai(key).responses.create({ model: 'gpt-4.1', input: 'hello' });
    return [];
  }
  const out = [];
  for (const label of labels) {
    const r = await gw.openai(key).responses.create({ model: 'gpt-4.1', input: 'call whoami', tools: tools(label) });
    const c = r.output.find((o) => o.type === 'mcp_call');
    assert.ok(c, `an mcp_call for ${label}`);
    assert.equal(c.status, 'completed', `${label}: ${JSON.stringify(c.error)}`);
    out.push(JSON.parse(c.output));
  }
  return out;
}

function lastRelayToken() {
  const reqs = providers.all().filter((r) => r.json).sort((a, b) => b.time - a.time);
  for (const r of reqs) for (const t of r.json.tools ?? []) if (t.server_label === 'rel') return t.authorization;
  throw new Error('no request carried the relay server');
}

function relayRpc(token) {
  return gw.fetch(`${gw.url}/mcp/acme/rel`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
}

async function sealStatus() {
  const total = { tenants: 0, not_current: 0, sealed: {} };
  let cursor = null;
  let head;
  do {
    const r = await gw.admin('GET', `/admin/maintenance/reseal?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, r.text);
    head = r.json;
    assert.deepEqual(r.json.errors, []);
    total.tenants += r.json.tenants;
    total.not_current += r.json.not_current;
    for (const [k, v] of Object.entries(r.json.sealed)) total.sealed[k] = (total.sealed[k] ?? 0) + v;
    cursor = r.json.cursor;
  } while (cursor);
  return { key_id: head.key_id, previous_key_id: head.previous_key_id, ...total };
}

function runReseal(limit) {
  return new Promise((resolve, reject) => {
    const child = spawn('make', ['-s', 'reseal'], {
      cwd: REPO_ROOT,
      env: { ...process.env, MCPGATE_URL: gw.url, ADMIN_TOKEN: ADMIN, RESEAL_LIMIT: String(limit) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

before(async () => {
  providers = await startProviders({ delayMs: 20 });
  as = await startOAuthServer({ accessTtlSec: TTL, onIssue: (v, kind) => SECRETS.set(v, `oauth ${kind}`) });
  const bearer = newSecret('crm token', 'mcp_tok_');
  const relayCred = newSecret('relay token', 'mcp_tok_');
  srv.crm = await startMcpServer({ name: 'crm', auth: { type: 'bearer', token: bearer } });
  srv.rel = await startMcpServer({ name: 'rel', auth: { type: 'bearer', token: relayCred } });
  srv.docs = await startMcpServer({ name: 'docs', auth: { type: 'oauth', as, scope: 'mcp:tools' } });
  port = await freePort();
  await boot({ MASTER_KEY: KEY_A });
  const pk = newSecret('openai key', 'sk-proj-');
  providers.openai.keys.add(pk);
  await gw.putTenant('acme', {
    providers: { openai: { api_key: pk } },
    mcp_servers: {
      crm: { url: srv.crm.url, auth: { type: 'bearer', token: bearer } },
      rel: { url: srv.rel.url, mode: 'relay', auth: { type: 'bearer', token: relayCred } },
      docs: { url: srv.docs.url, auth: { type: 'oauth2' } },
    },
  });
  acmeKey = (await gw.createKey('acme')).key;
  for (let i = 0; i < FILLERS; i++) {
    const t = `filler${i}`;
    await gw.putTenant(t, {
      providers: { openai: { api_key: pk } },
      mcp_servers: { crm: { url: srv.crm.url, auth: { type: 'headers', headers: { 'X-A': newSecret(`filler ${i} a`), 'X-B': newSecret(`filler ${i} b`) } } } },
    });
    fillerKeys.push((await gw.createKey(t)).key);
    await gw.createKey(t);
  }
});

after(async () => {
  await gw?.stop();
  await providers?.close();
  await as?.close();
  for (const s of Object.values(srv)) await s.close();
  if (!process.env.MCPGATE_E2E_KEEP) for (const r of roots) rmSync(r, { recursive: true, force: true });
});

test('under key A: connect the OAuth server, use every server, mint a relay token', async () => {
  const link = await gw.admin('POST', '/admin/tenants/acme/mcp_servers/docs/oauth/connect');
  assert.equal(link.status, 200, link.text);
  const res = await fetch(link.json.authorization_url, { redirect: 'follow' });
  assert.equal(res.status, 200, await res.text());
  registrationsAfterConnect = as.registrations.length;
  authorizationsAfterConnect = as.calls({ grant: 'authorization_code' }).length;
  await call(acmeKey, ['crm', 'rel', 'docs']);
  relayTokenA = lastRelayToken();
  assert.equal((await relayRpc(relayTokenA)).status, 200);
  const s = await sealStatus();
  assert.equal(s.previous_key_id, null);
  assert.match(s.key_id, /^[0-9a-f]{8}$/);
  assert.equal(s.tenants, FILLERS + 1);
  assert.equal(s.not_current, 0, JSON.stringify(s));
  assert.ok(s.sealed.current > FILLERS * 2 * 3, 'tenant records, key copies and OAuth state are counted');
});

let keyIdA;
test('restart with MASTER_KEY=B, MASTER_KEY_PREVIOUS=A: everything sealed under A still reads', async () => {
  keyIdA = (await sealStatus()).key_id;
  await boot({ MASTER_KEY: KEY_B, MASTER_KEY_PREVIOUS: KEY_A });
  const s = await sealStatus();
  assert.equal(s.previous_key_id, keyIdA);
  assert.notEqual(s.key_id, keyIdA);
  assert.equal(s.sealed.current ?? 0, 0, 'nothing is under B yet');
  assert.ok(s.sealed.previous > 0 && s.not_current === s.sealed.previous, JSON.stringify(s));
  await call(acmeKey, ['crm', 'rel', 'docs']);
  await call(fillerKeys[0], []);
  assert.equal((await relayRpc(relayTokenA)).status, 200, 'a relay token minted under A verifies during the overlap');
  // Past an access-token expiry: the refresh token sealed under A is opened and used.
  await sleep(TTL * 1000 + 300);
  await call(acmeKey, ['docs']);
  // Admin reads and writes work too; a write seals under B.
  assert.equal((await gw.getTenant('filler1')).status, 200);
  const k = await gw.createKey('filler1');
  assert.ok(k.key);
});

let throughput;
test('make reseal under load: every request succeeds, the count under A drops to zero', async () => {
  let stop = false;
  const results = [];
  const workers = Array.from({ length: 3 }, (_, w) => (async () => {
    for (let i = 0; !stop; i++) {
      const key = i % 2 ? acmeKey : fillerKeys[(w * 7 + i) % fillerKeys.length];
      try {
        await call(key, key === acmeKey ? ['crm', 'rel', 'docs'] : []);
        results.push('ok');
      } catch (e) {
        results.push(String(e));
      }
    }
  })());
  const t0 = Date.now();
  const r = await runReseal(7);
  const seconds = (Date.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  const summary = JSON.parse(r.out.trim().split('\n').at(-1));
  assert.equal(summary.not_current, 0);
  assert.deepEqual(summary.errors, []);
  assert.ok(r.out.split('\n').filter((l) => l.includes('"method":"POST"')).length >= Math.ceil((FILLERS + 1) / 7), 'it walked page by page');
  assert.match(r.err, /can be removed/);
  assert.deepEqual(results.filter((x) => x !== 'ok'), [], `every request during the re-seal succeeded (refresh-token reuse detected: ${as.events.reuseDetected})`);
  assert.ok(results.length > 5, `requests ran during the re-seal (${results.length})`);
  assert.ok(summary.records_resealed >= (FILLERS + 1) * 3, JSON.stringify(summary));
  throughput = { records: summary.records_resealed, seconds: summary.seconds, per_second: summary.records_per_second, requests_during: results.length, wall_s: seconds };
  console.log(`# re-seal throughput: ${JSON.stringify(throughput)}`);
  const s = await sealStatus();
  assert.equal(s.not_current, 0);
  assert.equal(s.sealed.previous ?? 0, 0);
  // A second pass finds nothing to do.
  const again = await gw.admin('POST', '/admin/maintenance/reseal?limit=100');
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json.resealed, { tenant_records: 0, gateway_key_records: 0, oauth_states: 0 });
});

test('bad reseal parameters are 400 naming the parameter', async () => {
  for (const q of ['limit=0', 'limit=101', 'limit=x']) {
    const r = await gw.admin('POST', `/admin/maintenance/reseal?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.param, 'limit');
  }
  assert.equal((await gw.admin('POST', '/admin/maintenance/reseal', undefined, { token: 'wrong' })).status, 401);
  assert.equal((await gw.admin('DELETE', '/admin/maintenance/reseal')).status, 405);
});

test('restart with B alone: every tenant, key and OAuth connection works without reconnecting', async () => {
  await boot({ MASTER_KEY: KEY_B });
  const s = await sealStatus();
  assert.equal(s.previous_key_id, null);
  assert.equal(s.not_current, 0);
  await call(acmeKey, ['crm', 'rel', 'docs']);
  for (const k of fillerKeys.slice(0, 10)) await call(k, []);
  await sleep(TTL * 1000 + 300);
  await call(acmeKey, ['docs']);
  const st = await gw.admin('GET', '/admin/tenants/acme/mcp_servers/docs/oauth');
  assert.equal(st.json.connected, true, st.text);
  assert.equal(as.registrations.length, registrationsAfterConnect, 'no new client registration');
  assert.equal(as.calls({ grant: 'authorization_code' }).length, authorizationsAfterConnect, 'no new authorization');
  assert.equal(as.events.reuseDetected, 0, 'no refresh token was replayed');
  // The relay token minted under A died with A.
  const r = await relayRpc(relayTokenA);
  assert.equal(r.status, 401);
  await r.text();
});

test('a relay token minted under A, during the overlap, works until it expires', async () => {
  await boot({ MASTER_KEY: KEY_B, MASTER_KEY_PREVIOUS: KEY_A });
  const exp = JSON.parse(Buffer.from(relayTokenA.split('.')[1], 'base64url').toString()).exp;
  if (Date.now() / 1000 < exp - 1) {
    assert.equal((await relayRpc(relayTokenA)).status, 200, 'still valid before its expiry');
    await sleep((exp - Date.now() / 1000 + 1) * 1000);
  }
  const r = await relayRpc(relayTokenA);
  assert.equal(r.status, 401);
  assert.match(await r.text(), /expired/);
});

test('no secret in any answer, on disk or in the log', async () => {
  await assertNoSecretsSeen();
  await gw.stop();
  assert.deepEqual(scanDirForSecrets(persistDir), [], 'plaintext secrets in the persist dir');
  assert.deepEqual(findSecrets(gw.log()), []);
});
