// Tenant isolation under concurrency: a randomized population of
// tenants whose MCP server labels overlap (every tenant has its own `crm`, many
// share `docs`, …), whose servers are shared or private, whose credentials are
// bearer tokens or header values, some sharing a provider key and each with two
// gateway keys — then every tenant calls tools on its servers at the same time,
// through both providers and their SDK paths (JSON, SSE, both MCP betas). Every
// tool call must reach the MCP server the tenant configured for that label,
// with that tenant's credential for it, never another's; requests for labels a
// tenant does not have are rejected without any MCP traffic.
//
// MCPGATE_ISOLATION_SEED fixes the population (printed on every run);
// MCPGATE_ISOLATION_TENANTS sets its size (default 20).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startMcpServer, fingerprint } from '../emulators/mcp-server.mjs';
import { MCP_BETA_OLD } from '../emulators/provider.mjs';
import { test, startStack, assertNoLeaks, newSecret } from './harness.mjs';
import { assertNothingGatewaySideUpstream } from './setup.mjs';

const SEED = Number(process.env.MCPGATE_ISOLATION_SEED ?? randomBytes(4).readUInt32LE(0));
const N_TENANTS = Number(process.env.MCPGATE_ISOLATION_TENANTS ?? 20);
const LABELS = ['crm', 'docs', 'tickets', 'files', 'search-index'];
const SHARED_SERVERS = 4;
const CONCURRENCY = 24;
const MODEL = 'claude-sonnet-4-6';

/** mulberry32: the whole population follows from SEED. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

let stack;
let gw;
const shared = []; // bearer MCP servers any tenant may point at (each accepts every tenant's token)
const privateServers = []; // header-credential servers, one per (tenant, label)
const tenants = []; // {id, keys: [k1, k2], openaiKey, anthropicKey, labels: Map(label -> {server, auth, cred})}

before(async () => {
  console.log(`# isolation: seed ${SEED}, ${N_TENANTS} tenants`);
  stack = await startStack({});
  gw = stack.gw;
  for (let i = 0; i < SHARED_SERVERS; i++) {
    shared.push(await startMcpServer({ name: `shared${i}`, auth: { type: 'bearer', tokens: [] } }));
  }
  let sharedProvider = null;
  for (let i = 0; i < N_TENANTS; i++) {
    const id = `iso-${String(i).padStart(2, '0')}-${randomBytes(2).toString('hex')}`;
    // Every fifth tenant shares the previous one's provider keys (one org, two tenants).
    const providers = i % 5 === 4 && sharedProvider ? sharedProvider : { openai: stack.openaiKey(id), anthropic: stack.anthropicKey(id) };
    sharedProvider = providers;
    const t = { id, openaiKey: providers.openai, anthropicKey: providers.anthropic, labels: new Map() };
    // crm for everyone, plus a random subset of the others.
    const labels = ['crm', ...LABELS.slice(1).filter(() => rand() < 0.5)];
    const bearerForAll = newSecret(`${id} token`, 'mcp_tok_');
    for (const label of labels) {
      const kind = label !== 'crm' && rand() < 0.25 ? 'headers' : 'bearer';
      if (kind === 'headers') {
        const value = newSecret(`${id} ${label} header`, 'hdr_');
        const server = await startMcpServer({ name: `${id}-${label}`, auth: { type: 'headers', headers: { 'X-Api-Key': value } } });
        privateServers.push(server);
        t.labels.set(label, { server, auth: { type: 'headers', headers: { 'X-Api-Key': value } }, cred: { 'X-Api-Key': value } });
      } else {
        // Some labels of a tenant share one token; the server is any shared one.
        const token = rand() < 0.3 ? bearerForAll : newSecret(`${id} ${label} token`, 'mcp_tok_');
        const server = pick(shared);
        server.auth.tokens.push(token);
        t.labels.set(label, { server, auth: { type: 'bearer', token }, cred: token });
      }
    }
    const mcp_servers = {};
    for (const [label, l] of t.labels) mcp_servers[label] = { url: l.server.url, auth: l.auth, require_approval: 'never' };
    await gw.putTenant(id, { providers: { openai: { api_key: t.openaiKey }, anthropic: { api_key: t.anthropicKey } }, mcp_servers });
    t.keys = [(await gw.createKey(id)).key, (await gw.createKey(id)).key];
    tenants.push(t);
  }
});

after(async () => {
  await stack?.close();
  await Promise.all([...shared, ...privateServers].map((s) => s.close()));
});

/** One request: a tenant calls `search` on one of its labels, in one of the request shapes. */
function plan() {
  const jobs = [];
  for (const t of tenants) {
    for (const [label, l] of t.labels) {
      const shapes = l.auth.type === 'headers'
        ? ['oai-json', 'oai-sse', 'oai-sdk']
        : ['oai-json', 'oai-sse', 'oai-sdk', 'ant-json', 'ant-sse-old-beta', 'ant-sdk'];
      for (const shape of shapes) jobs.push({ t, label, shape, nonce: `q${randomBytes(6).toString('hex')}`, ok: true });
    }
    // A label this tenant does not have (another tenant may): rejected, no MCP traffic.
    const missing = LABELS.filter((x) => !t.labels.has(x));
    if (missing.length) jobs.push({ t, label: pick(missing), shape: 'oai-json', nonce: `q${randomBytes(6).toString('hex')}`, ok: false });
    if (missing.length) jobs.push({ t, label: pick(missing), shape: 'ant-json', nonce: `q${randomBytes(6).toString('hex')}`, ok: false });
  }
  // Shuffle so tenants interleave.
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [jobs[i], jobs[j]] = [jobs[j], jobs[i]];
  }
  return jobs;
}

async function readText(res) {
  return Buffer.from(await res.arrayBuffer()).toString('utf8');
}

/** Runs one job; returns the text the client got (and its status). */
async function run(job) {
  const key = job.t.keys[Math.floor(rand() * 2)];
  const input = `call search on ${job.label} query=${job.nonce}`;
  const mcpTool = { type: 'mcp', server_label: job.label };
  const server = { type: 'url', name: job.label, url: 'https://placeholder.invalid/mcp' };
  const messages = [{ role: 'user', content: input }];
  switch (job.shape) {
    case 'oai-json':
    case 'oai-sse': {
      const res = await gw.fetch('/openai/v1/responses', {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4.1', input, tools: [mcpTool], stream: job.shape === 'oai-sse' }),
      });
      return { status: res.status, text: await readText(res) };
    }
    case 'oai-sdk': {
      const r = await gw.openai(key).responses.create({ model: 'gpt-4.1', input, tools: [mcpTool] });
      return { status: 200, text: JSON.stringify(r) };
    }
    case 'ant-json':
    case 'ant-sse-old-beta': {
      const headers = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
      if (job.shape === 'ant-sse-old-beta') headers['anthropic-beta'] = MCP_BETA_OLD;
      const res = await gw.fetch('/anthropic/v1/messages', {
        method: 'POST', headers, body: JSON.stringify({ model: MODEL, max_tokens: 100, messages, mcp_servers: [server], stream: job.shape !== 'ant-json' }),
      });
      return { status: res.status, text: await readText(res) };
    }
    case 'ant-sdk': {
      const m = await gw.anthropic(key).beta.messages.create({ model: MODEL, max_tokens: 100, messages, mcp_servers: [server], betas: ['mcp-client-2025-11-20'], tools: [{ type: 'mcp_toolset', mcp_server_name: job.label }] });
      return { status: 200, text: JSON.stringify(m) };
    }
    default:
      throw new Error(job.shape);
  }
}

test('randomized tenants, overlapping labels and keys, concurrent tool calls: each reaches its own server with its own credential', async () => {
  const jobs = plan();
  const t0 = Date.now();
  const results = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < jobs.length) {
      const i = next++;
      try {
        results[i] = await run(jobs[i]);
      } catch (e) {
        results[i] = { status: e.status ?? 0, text: String(e.message), error: e };
      }
    }
  }));
  const ms = Date.now() - t0;

  const allServers = [...shared, ...privateServers];
  const callsByNonce = new Map();
  for (const s of allServers) {
    for (const c of s.toolCalls('search')) {
      const q = c.arguments?.query;
      if (!callsByNonce.has(q)) callsByNonce.set(q, []);
      callsByNonce.get(q).push({ server: s, call: c });
    }
  }
  const problems = [];
  let verified = 0;
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i];
    const r = results[i];
    const what = `${job.t.id} ${job.label} ${job.shape} ${job.nonce}`;
    const calls = callsByNonce.get(job.nonce) ?? [];
    if (!job.ok) {
      if (r.status !== 400) problems.push(`${what}: a label the tenant lacks answered ${r.status}`);
      if (calls.length) problems.push(`${what}: a label the tenant lacks reached an MCP server`);
      continue;
    }
    if (r.status !== 200) {
      problems.push(`${what}: status ${r.status}: ${r.text.slice(0, 200)}`);
      continue;
    }
    const want = job.t.labels.get(job.label);
    if (calls.length !== 1) {
      problems.push(`${what}: ${calls.length} tool calls`);
      continue;
    }
    const [{ server, call }] = calls;
    if (server !== want.server) problems.push(`${what}: the call reached ${server.name}, not ${want.server.name}`);
    const got = JSON.stringify(call.credential);
    if (got !== JSON.stringify(want.cred)) {
      const owner = tenants.find((o) => [...o.labels.values()].some((l) => JSON.stringify(l.cred) === got));
      problems.push(`${what}: the call carried ${owner ? `${owner.id}'s` : 'an unknown'} credential`);
    }
    if (!r.text.includes(job.nonce)) problems.push(`${what}: the answer does not carry its own result`);
    verified++;
  }
  // Nothing was ever rejected by an MCP server: no tenant's request carried a wrong credential.
  for (const s of allServers) if (s.rejections.length) problems.push(`${s.name}: ${s.rejections.length} requests with a wrong credential`);
  // No answer holds another job's nonce.
  const nonces = jobs.map((j) => j.nonce);
  for (let i = 0; i < jobs.length; i++) {
    const foreign = nonces.filter((n) => n !== jobs[i].nonce && results[i].text.includes(n));
    if (foreign.length) problems.push(`${jobs[i].t.id} ${jobs[i].nonce}: the answer holds other requests' nonces`);
  }
  console.log(`# isolation: ${jobs.length} concurrent requests (${jobs.filter((j) => !j.ok).length} for labels the tenant lacks) from ${tenants.length} tenants over ${allServers.length} MCP servers in ${ms} ms; ${verified} tool calls verified to carry their own tenant's credential`);
  assert.deepEqual(problems, [], `seed ${SEED}: ${problems.length} isolation problems`);
  assert.ok(verified >= tenants.length * 3, `${verified} verified calls`);
});

test('each tenant\'s whoami sees its own credential fingerprint, under concurrency, for every label', async () => {
  const jobs = [];
  for (const t of tenants) for (const [label, l] of t.labels) jobs.push({ t, label, l });
  const out = await Promise.all(jobs.map(async ({ t, label, l }) => {
    const r = await gw.openai(t.keys[1]).responses.create({ model: 'gpt-4.1', input: `call whoami on ${label}`, tools: [{ type: 'mcp', server_label: label }] });
    const call = r.output.find((o) => o.type === 'mcp_call');
    const want = l.auth.type === 'bearer' ? fingerprint(l.cred) : fingerprint(`X-Api-Key:${l.cred['X-Api-Key']}`);
    return call && JSON.parse(call.output).credential_fingerprint === want ? null : `${t.id} ${label}: ${call?.output ?? JSON.stringify(r.output)}`;
  }));
  assert.deepEqual(out.filter(Boolean), []);
});

test('no gateway key reached an MCP server or provider; no secret leaked to clients, KV or the log', async () => {
  assertNothingGatewaySideUpstream({ ...stack, servers: Object.fromEntries([...shared, ...privateServers].map((s) => [s.name, s])) });
  await assertNoLeaks(stack);
  assert.doesNotMatch(stack.gw.log(), /panic|Uncaught|hung/i);
});
