// What bench/run.mjs and bench/profile.mjs share: the request bodies, the
// workers in one workerd (Miniflare, direct sockets) and the seeded tenant.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { childPids, request } from './lib.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const KB = 1024;
export const MB = 1024 * 1024;

export const ADMIN_TOKEN = 'bench-admin-token';
export const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
export const PROVIDER_KEY = 'sk-bench-upstream'; // the upstream emulator checks for it

// ---------------------------------------------------------------------------
// Request bodies: OpenAI Responses requests with a conversation history as
// filler and two managed MCP servers to complete (plus a function tool).

export const TOOLS = [
  { type: 'mcp', server_label: 'crm', allowed_tools: ['search', 'lookup', 'delete'] },
  { type: 'mcp', server_label: 'files', require_approval: 'always' },
  {
    type: 'function', name: 'get_weather', description: 'Current weather for a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
  },
];
const MSG_TEXT =
  'The quarterly report says revenue grew 12.5% to $4.2M; "churn" fell to 1.8%. ' +
  'Résumé of open items: ✓ invoices #1042–#1057, ✗ the \\ backslash case, tabs\tand\nnewlines. ';

export function makeBody(size) {
  const base = { model: 'gpt-4.1', instructions: 'You are a helpful assistant for ACME Corp.', input: [], tools: TOOLS, stream: false, metadata: { run: 'bench' } };
  const msg = (i) => ({ role: i % 2 ? 'assistant' : 'user', content: [{ type: i % 2 ? 'output_text' : 'input_text', text: `${i}: ${MSG_TEXT.repeat(8)}` }] });
  const baseLen = JSON.stringify(base).length;
  const msgLen = JSON.stringify(msg(1000)).length + 1;
  const n = Math.max(1, Math.round((size - baseLen) / msgLen));
  base.input = Array.from({ length: n }, (_, i) => msg(i));
  return Buffer.from(JSON.stringify(base));
}

// ---------------------------------------------------------------------------
// Miniflare

// A long conversation of prose as people write it: quotes, backslashes,
// newlines, tabs and non-ASCII, so most strings carry JSON escapes (the
// expensive case for a JSON reader), with one MCP tool.
const PROSE = [
  'She said "ship it" and I replied: \"not before the tests\" — the build\\cache was stale.\n',
  'Step 1:\tcheck C:\\Users\\ana\\config.json\nStep 2:\t"restart" the worker.\n',
  'Résumé: “quotes”, ‘apostrophes’, emoji 🚀 and a path /var/log/app.log\r\n',
  'The customer wrote:\n> "Why is the invoice #4821 still \\pending\\?"\n\nWe answered within 5 minutes.\n',
];

export function makeConversation(size) {
  const base = { model: 'gpt-4.1', input: [], tools: [TOOLS[0]], stream: false };
  const turn = (i) => ({ role: i % 2 ? 'assistant' : 'user', content: PROSE.map((_, j) => PROSE[(i + j) % PROSE.length]).join('').repeat(2) });
  const turnLen = JSON.stringify(turn(0)).length + 1;
  const n = Math.max(1, Math.round((size - JSON.stringify(base).length) / turnLen));
  base.input = Array.from({ length: n }, (_, i) => turn(i));
  return Buffer.from(JSON.stringify(base));
}

// ---------------------------------------------------------------------------
// Miniflare

function workerOptions(name, upstreamUrl, build) {
  const common = {
    name,
    compatibilityDate: '2026-04-20',
    kvNamespaces: { GATEWAY_KV: `kv-${name}` },
    unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
  };
  if (name === 'mcpgate') {
    return {
      ...common,
      modulesRoot: build,
      modules: [
        { type: 'ESModule', path: path.join(build, 'worker/shim.mjs') },
        { type: 'ESModule', path: path.join(build, 'index.js') },
        { type: 'CompiledWasm', path: path.join(build, 'index_bg.wasm') },
      ],
      // The worker's Durable Objects, as wrangler.toml binds them (admin writes go
      // through TENANT_WRITER; usage and rate limits through TENANT_METER).
      durableObjects: { TENANT_WRITER: 'TenantWriter', TENANT_METER: 'TenantMeter', OAUTH_TOKENS: 'OAuthCredential' },
      bindings: {
        OPENAI_BASE_URL: upstreamUrl, ANTHROPIC_BASE_URL: upstreamUrl, ADMIN_TOKEN, MASTER_KEY,
        ALLOW_INSECURE_MCP_URLS: 'true', MAX_BODY_BYTES: String(32 * MB), UPSTREAM_TIMEOUT_MS: '600000',
      },
    };
  }
  return {
    ...common,
    modulesRoot: path.join(ROOT, 'bench/workers'),
    modules: [
      { type: 'ESModule', path: path.join(ROOT, `bench/workers/${name}.mjs`) },
      { type: 'ESModule', path: path.join(ROOT, 'bench/workers/common.mjs') },
    ],
    bindings: { OPENAI_BASE_URL: upstreamUrl },
  };
}

// workerd's stdout/stderr (mcpgate writes one JSON log line per request) are
// drained here, never printed: a full pipe would stall workerd.
export const runtimeOutput = { lines: 0, tail: '' };
function handleRuntimeStdio(stdout, stderr) {
  stdout.on('data', (d) => {
    for (const c of d) if (c === 10) runtimeOutput.lines++;
  });
  stderr.on('data', (d) => {
    runtimeOutput.tail = (runtimeOutput.tail + d).slice(-4000);
  });
}

export function miniflareOptions(names, upstreamUrl, { build, inspectorPort } = {}) {
  return {
    host: '127.0.0.1', port: 0, handleRuntimeStdio, inspectorPort,
    workers: names.map((n) => workerOptions(n, upstreamUrl, build)),
  };
}

export async function startMiniflare(names, upstreamUrl, opts = {}) {
  const t0 = process.hrtime.bigint();
  const mf = new Miniflare(miniflareOptions(names, upstreamUrl, opts));
  await mf.ready;
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const urls = {};
  for (const n of names) urls[n] = String(await mf.unsafeGetDirectURL(n)).replace(/\/$/, '');
  const pids = childPids(process.pid, 'workerd');
  if (pids.length !== 1) throw new Error(`expected one workerd child, found ${pids}`);
  return { mf, urls, pid: pids[0], readyMs };
}

export async function seed(mfh, log = () => {}) {
  const tenant = {
    providers: { openai: { api_key: PROVIDER_KEY } },
    mcp_servers: {
      crm: { url: 'https://mcp.example.com/crm', auth: { type: 'bearer', token: 'tok-crm-bench-0123456789' }, allowed_tools: ['search', 'lookup'], require_approval: 'never' },
      files: { url: 'https://files.example.com/mcp', auth: { type: 'headers', headers: { 'X-Api-Key': 'files-key-bench-0123456789' } } },
      docs: { url: 'https://docs.example.com/mcp', auth: { type: 'none' } },
      // Each user's own token (bench: the request-path cost of a per-user server).
      gh: { url: 'https://gh.example.com/mcp', auth: { type: 'bearer' }, per_user: true },
    },
    allow_unmanaged_mcp_servers: false,
  };
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const put = await request(`${mfh.urls.mcpgate}/admin/tenants/bench`, { method: 'PUT', headers: admin, body: JSON.stringify(tenant), keepBody: true });
  if (put.status !== 200) throw new Error(`PUT tenant: ${put.status} ${put.body}`);
  const k = await request(`${mfh.urls.mcpgate}/admin/tenants/bench/keys`, { method: 'POST', headers: admin, body: '{}', keepBody: true });
  if (k.status !== 201) throw new Error(`POST key: ${k.status} ${k.body}`);
  const key = JSON.parse(k.body).key;
  const cred = await request(`${mfh.urls.mcpgate}/admin/tenants/bench/users/u-1/mcp_servers/gh/credential`, { method: 'PUT', headers: admin, body: JSON.stringify({ type: 'bearer', token: 'ghp-bench-user-0123456789' }), keepBody: true });
  if (cred.status !== 200) throw new Error(`PUT user credential: ${cred.status} ${cred.body}`);
  const uk = await request(`${mfh.urls.mcpgate}/admin/tenants/bench/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ user: 'u-1' }), keepBody: true });
  if (uk.status !== 201) throw new Error(`POST user key: ${uk.status} ${uk.body}`);
  const userKey = JSON.parse(uk.body).key;
  const hash = createHash('sha256').update(key).digest('hex');
  const record = {
    tenant_id: 'bench',
    openai_key: PROVIDER_KEY,
    mcp_servers: {
      crm: { url: tenant.mcp_servers.crm.url, token: tenant.mcp_servers.crm.auth.token, allowed_tools: ['search', 'lookup'], require_approval: 'never' },
      files: { url: tenant.mcp_servers.files.url, headers: tenant.mcp_servers.files.auth.headers, require_approval: 'never' },
      docs: { url: tenant.mcp_servers.docs.url, require_approval: 'never' },
    },
    allow_unmanaged: false,
  };
  for (const w of ['js-pass', 'js-inject'].filter((n) => n in mfh.urls)) {
    const kv = await mfh.mf.getKVNamespace('GATEWAY_KV', w);
    await kv.put(`bench:gk:${hash}`, JSON.stringify(record));
  }
  log('seeded tenant "bench" (admin API) and the JS workers\' KV');
  return { key, userKey };
}

