// Bad-input corpus: a table of malformed, hostile and edge-case
// requests over every route — the rewritten routes, pass-through, admin and
// healthz — through the real gateway. Each case asserts the exact status and
// wire shape of the error table (README "Errors",
// "Strictness on the rewritten routes"): OpenAI `{"error":{message,type,param,
// code}}` / Anthropic `{"type":"error","error":{type,message}}`, and
// `x-should-retry: false` on every 4xx the gateway makes. A request the gateway
// rejects reaches neither provider nor MCP server. No case may get a 5xx, and
// the runtime log must show no panic, uncaught exception or hung request.
//
// Requests go out through node:http so that literal paths, repeated headers,
// invalid UTF-8, lying content-lengths and chunked uploads reach the gateway
// exactly as written. This gateway runs with MAX_BODY_BYTES = 2 MiB.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';
import { test, assertNoLeaks, SEEN, SECRETS } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream } from './setup.mjs';

const MAX = 2 * 1024 * 1024;
const ADMIN_MAX = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let S;
let stack;
let gw;
let globexKeyId;
let goneKey;
const results = { cases: 0, byStatus: new Map(), fiveXX: [], settled: [] };

before(async () => {
  S = await standardStack({ vars: { MAX_BODY_BYTES: String(MAX) } });
  ({ stack, gw } = S);
  globexKeyId = (await gw.createKey('globex')).id;
  // A tenant whose key is revoked by deleting the tenant.
  await gw.putTenant('gone', { providers: { openai: { api_key: stack.openaiKey('gone') } } });
  goneKey = (await gw.createKey('gone')).key;
  assert.equal((await gw.deleteTenant('gone')).status, 204);
});

after(async () => {
  await stack?.close();
});

// ---------------------------------------------------------------------------
// Sending

/** The gateway's request log lines so far (README "Logs"). */
function logLines() {
  const out = [];
  for (const line of gw.log().split('\n')) {
    const at = line.indexOf('{"request_id"');
    if (at < 0) continue;
    try {
      out.push(JSON.parse(line.slice(at)));
    } catch {
      /* not one */
    }
  }
  return out;
}

/**
 * Sends one request exactly as given. `headers` values may be arrays (repeated
 * header lines). `body`: string | Buffer | undefined. `chunks`: pieces sent with
 * chunked transfer encoding. `declared`: a content-length to announce while
 * sending only the first bytes of `body`; the rest goes out only after the
 * gateway has logged its answer (`early` is then that log line). wrangler dev
 * holds every answer until the request body is drained (its
 * middleware-ensure-req-body-drained), so the gateway's log line is what shows
 * that the answer was decided before the body was read.
 * Resolves {status, headers (Headers), text, json, ms, early}.
 */
async function send(opts) {
  if (opts.declared !== undefined) await sleep(300); // let earlier requests' log lines land first
  return sendNow(opts);
}

function sendNow({ method, path, headers = {}, body, chunks, declared, timeoutMs = 15_000 }) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (declared !== undefined) h['content-length'] = String(declared);
    else if (chunks) h['transfer-encoding'] = 'chunked';
    else if (body !== undefined) h['content-length'] = String(Buffer.byteLength(body));
    const t0 = Date.now();
    let early = null;
    const req = http.request({ host: '127.0.0.1', port: gw.port, method, path, headers: h, agent: false }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const hs = new Headers();
        for (const [k, v] of Object.entries(res.headers)) hs.set(k, Array.isArray(v) ? v.join(', ') : v);
        SEEN.push({ method, url: path, status: res.statusCode, headers: [...hs.entries()], body: Buffer.from(text), allowSecrets: [], done: Promise.resolve() });
        resolve({ status: res.statusCode, headers: hs, text, json, ms: Date.now() - t0, early });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (chunks) {
      (async () => {
        for (const c of chunks) {
          if (req.destroyed) return;
          req.write(c);
          await sleep(0);
        }
        req.end();
      })();
    } else if (declared !== undefined) {
      const before = logLines().length;
      const head = body.subarray(0, 16);
      req.write(head);
      (async () => {
        for (let i = 0; i < 100 && !early; i++) {
          await sleep(50);
          early = logLines().slice(before).find((l) => l.method === method && l.status >= 400) ?? null;
        }
        // The rest of the announced body, so the request ends normally.
        for (let at = head.length; at < body.length; at += 256 * 1024) {
          if (req.destroyed) return;
          if (!req.write(body.subarray(at, Math.min(at + 256 * 1024, body.length)))) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })();
    } else {
      req.end(body);
    }
  });
}

// ---------------------------------------------------------------------------
// Expectations

const oai = (key) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const ant = (key, beta) => ({ 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json', ...(beta ? { 'anthropic-beta': beta } : {}) });
const adm = () => ({ authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' });

const E = {
  oai400: (param, mentions) => ({ status: 400, shape: 'openai', type: 'invalid_request_error', param, mentions }),
  ant400: (mentions) => ({ status: 400, shape: 'anthropic', type: 'invalid_request_error', mentions }),
  oai401: { status: 401, shape: 'openai', type: 'invalid_request_error', code: 'invalid_api_key' },
  ant401: { status: 401, shape: 'anthropic', type: 'authentication_error' },
  oai403: { status: 403, shape: 'openai', type: 'permission_error' },
  ant403: { status: 403, shape: 'anthropic', type: 'permission_error' },
  oaiRefused: { status: 403, shape: 'openai', type: 'permission_error', code: 'route_refused_by_mcp_policy' },
  oai404: { status: 404, shape: 'openai', type: 'not_found_error' },
  ant404: { status: 404, shape: 'anthropic', type: 'not_found_error' },
  oai405: (allow) => ({ status: 405, shape: 'openai', type: 'invalid_request_error', allow }),
  oai413: { status: 413, shape: 'openai', type: 'invalid_request_error' },
  ant413: { status: 413, shape: 'anthropic', type: 'request_too_large' },
  /** Not the gateway's to reject: forwarded to the provider, whose answer comes back. */
  fwd: (status = 200) => ({ status, forwarded: true }),
  ok: (status = 200) => ({ status, local: true }),
};

/** Checks an answer against an expectation; returns a list of problems. */
function problems(r, ex, { upstreamCalls, mcpCalls }) {
  const out = [];
  if (r.status !== ex.status) out.push(`status ${r.status}, expected ${ex.status}`);
  if (ex.forwarded) {
    if (upstreamCalls !== 1) out.push(`${upstreamCalls} provider calls, expected 1 (forwarded)`);
    return out;
  }
  if (upstreamCalls !== 0) out.push(`${upstreamCalls} provider calls for a request the gateway must answer itself`);
  if (mcpCalls !== 0) out.push(`${mcpCalls} MCP server calls`);
  if (ex.local) return out;
  if (!/^application\/json/.test(r.headers.get('content-type') ?? '')) out.push(`content-type ${r.headers.get('content-type')}`);
  if (!r.headers.get('mcpgate-request-id')) out.push('no mcpgate-request-id');
  if (ex.status < 500 && r.headers.get('x-should-retry') !== 'false') out.push(`x-should-retry ${r.headers.get('x-should-retry')}, expected false`);
  if (ex.allow && r.headers.get('allow') !== ex.allow) out.push(`allow ${r.headers.get('allow')}, expected ${ex.allow}`);
  const j = r.json;
  if (!j || typeof j !== 'object') return [...out, `not JSON: ${r.text.slice(0, 200)}`];
  if (ex.shape === 'openai') {
    if (JSON.stringify(Object.keys(j)) !== '["error"]') out.push(`top-level keys ${Object.keys(j)}`);
    const e = j.error ?? {};
    if (JSON.stringify(Object.keys(e).sort()) !== '["code","message","param","type"]') out.push(`error keys ${Object.keys(e)}`);
    if (e.type !== ex.type) out.push(`type ${e.type}, expected ${ex.type}`);
    if (e.code !== (ex.code ?? null)) out.push(`code ${e.code}, expected ${ex.code ?? null}`);
    if (ex.param !== undefined && e.param !== ex.param) out.push(`param ${e.param}, expected ${ex.param}`);
    if (e.param !== null && typeof e.param !== 'string') out.push(`param ${e.param} is neither null nor a string`);
  } else {
    if (JSON.stringify(Object.keys(j).sort()) !== '["error","type"]') out.push(`top-level keys ${Object.keys(j)}`);
    if (j.type !== 'error') out.push(`type ${j.type}, expected "error"`);
    const e = j.error ?? {};
    if (JSON.stringify(Object.keys(e).sort()) !== '["message","type"]') out.push(`error keys ${Object.keys(e)}`);
    if (e.type !== ex.type) out.push(`error.type ${e.type}, expected ${ex.type}`);
  }
  const msg = j.error?.message;
  if (typeof msg !== 'string' || !msg) out.push('empty message');
  else {
    if (msg.length > 600) out.push(`message of ${msg.length} chars (echoes the input?)`);
    if (ex.mentions && !ex.mentions.test(msg)) out.push(`message ${JSON.stringify(msg)} does not match ${ex.mentions}`);
  }
  return out;
}

/** Runs a table of cases; returns nothing, fails with every mismatch listed. */
async function runCases(cases) {
  const failures = [];
  for (const c of cases) {
    stack.reset();
    let r;
    try {
      r = await send(c);
    } catch (e) {
      failures.push(`${c.name}: ${e.message}`);
      continue;
    }
    results.cases++;
    results.byStatus.set(r.status, (results.byStatus.get(r.status) ?? 0) + 1);
    if (r.status >= 500) results.fiveXX.push(`${c.name}: ${r.status} ${r.text.slice(0, 200)}`);
    // Give a forwarded request's record a moment (the emulator records on arrival, before answering).
    const upstreamCalls = stack.providers.all().length;
    const mcpCalls = Object.values(S.servers).reduce((n, s) => n + s.calls.length + s.rejections.length, 0);
    const p = problems(r, c.expect, { upstreamCalls, mcpCalls });
    if (c.declared !== undefined) {
      if (!r.early) p.push('the gateway logged no answer while the body was still unsent (413 must be decided from content-length)');
      else if (r.early.status !== c.expect.status) p.push(`the gateway logged ${r.early.status} before the body, expected ${c.expect.status}`);
    }
    if (c.extra) {
      try {
        await c.extra(r);
      } catch (e) {
        p.push(e.message);
      }
    }
    if (p.length) failures.push(`${c.name}: ${p.join('; ')}\n      -> ${r.status} ${r.text.slice(0, 240)}`);
    if (c.settle) {
      // wrangler dev only: after the worker stops reading a chunked upload early, the
      // next POST with a body through wrangler's proxy gets its own 503 ("Your worker
      // restarted mid-request") without reaching the worker. Absorb it here, outside
      // the corpus counts, so it cannot land on the next case; it is reported below.
      const probe = await send({ method: 'POST', path: '/healthz', headers: { 'content-type': 'text/plain' }, body: 'x' });
      results.settled.push(probe.status);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed:\n  ${failures.join('\n  ')}`);
}

// ---------------------------------------------------------------------------
// Routes and bodies

const MODEL = 'claude-sonnet-4-6';
const REWRITTEN = () => [
  { route: 'responses', path: '/openai/v1/responses', headers: oai(S.keys.acme), shape: 'openai', valid: { model: 'gpt-4.1', input: 'hello' } },
  { route: 'messages', path: '/anthropic/v1/messages', headers: ant(S.keys.acme), shape: 'anthropic', valid: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] } },
  { route: 'count_tokens', path: '/anthropic/v1/messages/count_tokens', headers: ant(S.keys.acme), shape: 'anthropic', valid: { model: MODEL, messages: [{ role: 'user', content: 'hello' }] } },
  { route: 'messages?beta', path: '/anthropic/v1/messages?beta=true', headers: ant(S.keys.acme), shape: 'anthropic', valid: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] } },
];
const bad400 = (rw, mentions) => (rw.shape === 'openai' ? E.oai400(undefined, mentions) : E.ant400(mentions));

const deep = (n, open, close) => open.repeat(n) + close.repeat(n);

test('malformed, truncated and non-object JSON bodies on every rewritten route → 400', async () => {
  const cases = [];
  for (const rw of REWRITTEN()) {
    const valid = JSON.stringify(rw.valid);
    const bodies = [
      ['truncated after "{"', valid.slice(0, 1)],
      ['truncated inside a key', valid.slice(0, 5)],
      ['truncated in the middle', valid.slice(0, Math.floor(valid.length / 2))],
      ['truncated before the last brace', valid.slice(0, -1)],
      ['not JSON', 'not json at all'],
      ['trailing comma', valid.replace(/}$/, ',}')],
      ['single quotes', valid.replaceAll('"', "'")],
      ['unquoted key', `{model:"x"}`],
      ['NaN', '{"model":"x","temperature":NaN}'],
      ['comment', '{"model":"x" /* comment */}'],
      ['two objects', `${valid}${valid}`],
      ['trailing garbage', `${valid} x`],
      ['byte order mark', `\ufeff${valid}`],
      ['raw control character in a string', '{"model":"a\u0001b"}'],
      ['number beyond f64', '{"model":"x","n":1e400}'],
      ['lone surrogate escape', '{"model":"x","s":"\\ud800"}'],
      ['array', '[]'],
      ['array of objects', `[${valid}]`],
      ['string', '"a string"'],
      ['number', '42'],
      ['true', 'true'],
      ['null', 'null'],
      ['empty', ''],
      ['whitespace only', '  \n\t '],
    ];
    for (const [what, body] of bodies) {
      cases.push({ name: `${rw.route}: ${what}`, method: 'POST', path: rw.path, headers: rw.headers, body, expect: bad400(rw) });
    }
  }
  await runCases(cases);
});

test('duplicate keys at any depth, invalid UTF-8, 10 000-deep nesting → 400 on every rewritten route', async () => {
  const cases = [];
  for (const rw of REWRITTEN()) {
    const dup = [
      ['duplicate top-level key', '{"model":"a","model":"b","input":"x","messages":[],"max_tokens":1}'],
      ['duplicate key in metadata', '{"model":"a","input":"x","messages":[],"max_tokens":1,"metadata":{"k":1,"k":2}}'],
      ['duplicate key in tools[0]', '{"model":"a","input":"x","messages":[],"max_tokens":1,"tools":[{"type":"function","name":"f","name":"g"}]}'],
      ['duplicate key 6 levels deep', '{"model":"a","input":"x","messages":[],"max_tokens":1,"x":{"a":{"b":[{"c":{"d":{"e":1,"e":1}}}]}}}'],
      ['duplicate key spelled with an escape', '{"model":"a","mod\\u0065l":"b","input":"x","messages":[],"max_tokens":1}'],
      ['duplicate key in an mcp entry', rw.shape === 'openai'
        ? '{"model":"a","input":"x","tools":[{"type":"mcp","server_label":"crm","server_label":"public"}]}'
        : '{"model":"a","messages":[],"max_tokens":1,"mcp_servers":[{"type":"url","name":"crm","name":"public","url":"https://x.example/mcp"}]}'],
    ];
    for (const [what, body] of dup) {
      cases.push({ name: `${rw.route}: ${what}`, method: 'POST', path: rw.path, headers: rw.headers, body, expect: bad400(rw) });
    }
    const valid = JSON.stringify(rw.valid);
    const inString = (bytes) => Buffer.concat([Buffer.from(valid.slice(0, -1) + ',"s":"ab'), Buffer.from(bytes), Buffer.from('cd"}')]);
    const utf8 = [
      ['invalid UTF-8: 0xFF', [0xff]],
      ['invalid UTF-8: overlong "/"', [0xc0, 0xaf]],
      ['invalid UTF-8: lone continuation byte', [0x80]],
      ['invalid UTF-8: truncated 3-byte sequence', [0xe2, 0x82]],
      ['invalid UTF-8: UTF-16 surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
      ['invalid UTF-8: beyond U+10FFFF', [0xf5, 0x80, 0x80, 0x80]],
    ];
    for (const [what, bytes] of utf8) {
      cases.push({ name: `${rw.route}: ${what}`, method: 'POST', path: rw.path, headers: rw.headers, body: inString(bytes), expect: bad400(rw) });
    }
    cases.push({ name: `${rw.route}: invalid UTF-8 in a key`, method: 'POST', path: rw.path, headers: rw.headers, body: Buffer.concat([Buffer.from('{"mo'), Buffer.from([0xfe]), Buffer.from('del":"x"}')]), expect: bad400(rw) });
    const nest = [
      ['arrays nested 10 000 deep', `${valid.slice(0, -1)},"x":${deep(10_000, '[', ']')}}`],
      ['objects nested 10 000 deep', `${valid.slice(0, -1)},"x":${deep(10_000, '{"a":', '}').replace(/\{"a":\}/, '{"a":1}')}}`],
      ['arrays nested 10 000 deep, unclosed', `${valid.slice(0, -1)},"x":${'['.repeat(10_000)}`],
    ];
    for (const [what, body] of nest) {
      cases.push({ name: `${rw.route}: ${what}`, method: 'POST', path: rw.path, headers: rw.headers, body, expect: bad400(rw) });
    }
  }
  await runCases(cases);
});

test('wrong types for every field the OpenAI rewriter reads → 400 naming the field', async () => {
  const cases = [];
  const P = '/openai/v1/responses';
  const add = (what, extra, param, key = S.keys.acme) => cases.push({
    name: `responses: ${what}`, method: 'POST', path: P, headers: oai(key), body: JSON.stringify({ model: 'gpt-4.1', input: 'x', ...extra }), expect: E.oai400(param),
  });
  for (const v of ['mcp', 5, {}, true]) add(`tools = ${JSON.stringify(v)}`, { tools: v }, 'tools');
  for (const v of ['mcp', 5, [], null]) add(`tools[0] = ${JSON.stringify(v)}`, { tools: [v] }, 'tools[0]');
  for (const v of [5, null, [], {}]) add(`tools[0].type = ${JSON.stringify(v)}`, { tools: [{ type: v, server_label: 'crm' }] }, 'tools[0].type');
  add('tools[0] without type', { tools: [{ server_label: 'crm' }] }, 'tools[0].type');
  for (const v of [5, null, [], {}, true]) add(`server_label = ${JSON.stringify(v)}`, { tools: [{ type: 'mcp', server_label: v }] }, 'tools[0].server_label');
  add('mcp tool without server_label', { tools: [{ type: 'mcp' }] }, 'tools[0].server_label');
  const mcp = (extra) => ({ tools: [{ type: 'function', name: 'f', parameters: {} }, { type: 'mcp', server_label: 'crm', ...extra }] });
  for (const v of ['search', 5, true, [1], ['search', 2], { tool_names: 'search' }, { tool_names: [1] }, { read_only: 'yes' }, { colour: 1 }]) {
    add(`allowed_tools = ${JSON.stringify(v)}`, mcp({ allowed_tools: v }), 'tools[1].allowed_tools');
  }
  for (const v of ['sometimes', 5, true, [], { always: 'x' }, { never: 5 }, { always: { tool_names: 'x' } }, { sometimes: {} }]) {
    add(`require_approval = ${JSON.stringify(v)}`, mcp({ require_approval: v }), 'tools[1].require_approval');
  }
  for (const [field, v] of [['server_url', 5], ['server_url', 'https://evil.example/mcp'], ['headers', 'x'], ['headers', {}], ['authorization', 5], ['authorization', 'client-token'], ['connector_id', 'connector_gmail'], ['tunnel_id', []]]) {
    add(`client-sent ${field} = ${JSON.stringify(v)} for a managed server`, mcp({ [field]: v }), `tools[1].${field}`);
  }
  add('the same managed label twice', { tools: [{ type: 'mcp', server_label: 'crm' }, { type: 'mcp', server_label: 'crm' }] }, 'tools[1].server_label');
  // Shape errors stay errors for a tenant that allows unmanaged servers.
  for (const v of ['mcp', 5]) add(`tools = ${JSON.stringify(v)} (tenant allowing unmanaged servers)`, { tools: v }, 'tools', S.keys.open);
  add('tools[0].server_label = 5 (tenant allowing unmanaged servers)', { tools: [{ type: 'mcp', server_label: 5, server_url: 'https://x.example/mcp' }] }, 'tools[0].server_label', S.keys.open);
  await runCases(cases);
});

test('wrong types for every field the Anthropic rewriter reads → 400 naming the field', async () => {
  const cases = [];
  const add = (what, extra, mentions, beta = MCP_BETA_OLD, path = '/anthropic/v1/messages') => cases.push({
    name: `${path.split('/').pop()} [${beta}]: ${what}`, method: 'POST', path, headers: ant(S.keys.acme, beta),
    body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], ...extra }), expect: E.ant400(mentions),
  });
  const srv = (extra = {}) => ({ type: 'url', name: 'crm', url: 'https://placeholder.invalid/mcp', ...extra });
  for (const path of ['/anthropic/v1/messages', '/anthropic/v1/messages/count_tokens']) {
    for (const v of ['crm', 5, {}, true]) add(`mcp_servers = ${JSON.stringify(v)}`, { mcp_servers: v }, /mcp_servers/, MCP_BETA_OLD, path);
    for (const v of ['crm', 5, [], null]) add(`mcp_servers[0] = ${JSON.stringify(v)}`, { mcp_servers: [v] }, /mcp_servers\[0\]/, MCP_BETA_OLD, path);
  }
  for (const v of [5, null, [], {}, true]) add(`mcp_servers[0].name = ${JSON.stringify(v)}`, { mcp_servers: [srv({ name: v })] }, /mcp_servers\[0\]\.name/);
  add('mcp_servers[0] without name', { mcp_servers: [{ type: 'url', url: 'https://x.example/mcp' }] }, /mcp_servers\[0\]\.name/);
  for (const v of ['client-token', 5]) add(`authorization_token = ${JSON.stringify(v)} for a managed server`, { mcp_servers: [srv({ authorization_token: v })] }, /authorization_token/);
  for (const v of ['yes', 5, [], { enabled: 'true' }, { allowed_tools: 'search' }, { allowed_tools: [1] }]) {
    add(`tool_configuration = ${JSON.stringify(v)}`, { mcp_servers: [srv({ tool_configuration: v })] }, /tool_configuration/);
  }
  for (const v of ['x', 5, {}]) add(`tools = ${JSON.stringify(v)} (no mcp_servers)`, { tools: v }, /tools/, null);
  for (const v of ['x', 5, null]) add(`tools[0] = ${JSON.stringify(v)}`, { tools: [v] }, /tools\[0\]/, null);
  add('tools[0].type = 5', { tools: [{ type: 5, name: 'f' }] }, /tools\[0\]\.type/, null);
  const ts = (extra) => ({ mcp_servers: [srv()], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', ...extra }] });
  for (const v of [5, null, []]) add(`mcp_toolset.mcp_server_name = ${JSON.stringify(v)}`, ts({ mcp_server_name: v }), /mcp_server_name/, MCP_BETA_NEW);
  for (const v of ['x', [], { search: 'yes' }, { search: { enabled: 'yes' } }, { search: { defer_loading: 1 } }]) {
    add(`mcp_toolset.configs = ${JSON.stringify(v)}`, ts({ configs: v }), /configs/, MCP_BETA_NEW);
  }
  for (const v of ['x', 5, { enabled: 'no' }]) add(`mcp_toolset.default_config = ${JSON.stringify(v)}`, ts({ default_config: v }), /default_config/, MCP_BETA_NEW);
  add('both MCP betas at once', { mcp_servers: [srv()] }, /mcp-client/, `${MCP_BETA_OLD},${MCP_BETA_NEW}`);
  add('a managed server with header credentials', { mcp_servers: [srv({ name: 'files' })] }, /files/);
  add('the same managed name twice', { mcp_servers: [srv(), srv()] }, /crm/);
  await runCases(cases);
});

test('server label / name edge cases: empty, 65 chars, unicode, path tricks, case and space variants → 400', async () => {
  const labels = ['', 'a'.repeat(65), 'c'.repeat(1_000_000), '../crm', 'crm/../crm', '..', 'ｃｒｍ', 'crm\u0000', 'crm\n', 'CRM', ' crm', 'crm ', 'c r m', '%63rm', 'crm\u200b', 'nosuchserver'];
  const cases = [];
  for (const l of labels) {
    const shown = l.length > 80 ? `${l.length} chars` : JSON.stringify(l);
    cases.push({
      name: `responses: server_label ${shown}`, method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme),
      body: JSON.stringify({ model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: l }] }),
      expect: E.oai400('tools[0].server_label', l === 'nosuchserver' ? /nosuchserver/ : undefined),
    });
    cases.push({
      name: `messages: name ${shown}`, method: 'POST', path: '/anthropic/v1/messages', headers: ant(S.keys.acme, MCP_BETA_OLD),
      body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [], mcp_servers: [{ type: 'url', name: l, url: 'https://x.example/mcp' }] }),
      expect: E.ant400(l === 'nosuchserver' ? /nosuchserver/ : /\bname\b/),
    });
  }
  // globex has crm but not strict.
  cases.push({
    name: "responses: another tenant's label", method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.globex),
    body: JSON.stringify({ model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'strict' }] }), expect: E.oai400('tools[0].server_label', /strict/),
  });
  await runCases(cases);
});

test('bad, doubled or conflicting auth headers → 401 in the route\'s shape; accepted spellings go through', async () => {
  const K = S.keys.acme;
  const routes = [
    ['responses', 'POST', '/openai/v1/responses', JSON.stringify({ model: 'gpt-4.1', input: 'x' }), 'openai'],
    ['models', 'GET', '/openai/v1/models', undefined, 'openai'],
    ['messages', 'POST', '/anthropic/v1/messages', JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), 'anthropic'],
  ];
  const variants = [
    ['no credentials', {}],
    ['Authorization: Bearer (no key)', { authorization: 'Bearer' }],
    ['Authorization: "Bearer " (blank key)', { authorization: 'Bearer ' }],
    ['Authorization: Basic <key>', { authorization: `Basic ${K}` }],
    ['Authorization: Token <key>', { authorization: `Token ${K}` }],
    ['Authorization: <key> without scheme', { authorization: K }],
    ['Authorization: Bearer <key> with a trailing word', { authorization: `Bearer ${K} extra` }],
    ['unknown key', { authorization: 'Bearer mgk_0000000000000000000000000000000000000000' }],
    ['a 10 KB key', { authorization: `Bearer mgk_${'k'.repeat(10_000)}` }],
    ['two Authorization lines, same key', { authorization: [`Bearer ${K}`, `Bearer ${K}`] }],
    ['two Authorization lines, different keys', { authorization: [`Bearer ${K}`, `Bearer ${S.keys.globex}`] }],
    ['Authorization and x-api-key with different keys', { authorization: `Bearer ${K}`, 'x-api-key': S.keys.globex }],
    ['two x-api-key lines', { 'x-api-key': [K, K] }],
    ['x-api-key blank', { 'x-api-key': '   ' }],
    ['the provider key instead of a gateway key', { authorization: `Bearer ${S.pk.acmeOpenai}`, 'x-api-key': S.pk.acmeAnthropic }],
    ['the admin token instead of a gateway key', { authorization: `Bearer ${gw.adminToken}` }],
    ["a deleted tenant's key", { authorization: `Bearer ${goneKey}` }],
  ];
  const ok = [
    ['scheme in lower case', { authorization: `bearer ${K}` }],
    ['surrounding whitespace', { authorization: `   Bearer    ${K}   ` }],
    ['x-api-key only', { 'x-api-key': K }],
    ['both headers, same key', { authorization: `Bearer ${K}`, 'x-api-key': K }],
    ['another scheme in Authorization, key in x-api-key', { authorization: 'Basic Zm9vOmJhcg==', 'x-api-key': K }],
  ];
  const cases = [];
  for (const [route, method, path, body, shape] of routes) {
    const base = shape === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {};
    if (body) base['content-type'] = 'application/json';
    for (const [what, h] of variants) {
      cases.push({ name: `${route}: ${what}`, method, path, headers: { ...base, ...h }, body, expect: shape === 'openai' ? E.oai401 : E.ant401 });
    }
    for (const [what, h] of ok) cases.push({ name: `${route}: ${what}`, method, path, headers: { ...base, ...h }, body, expect: E.fwd(200) });
  }
  await runCases(cases);
});

test('content types: the gateway judges the bytes, not the label', async () => {
  const K = S.keys.acme;
  const cases = [];
  const json = JSON.stringify({ model: 'gpt-4.1', input: 'x' });
  const ajson = JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
  const utf16 = Buffer.from(`\ufeff${json}`, 'utf16le');
  for (const [path, headers, good, shape] of [
    ['/openai/v1/responses', { authorization: `Bearer ${K}` }, json, 'openai'],
    ['/anthropic/v1/messages', { 'x-api-key': K, 'anthropic-version': '2023-06-01' }, ajson, 'anthropic'],
  ]) {
    const e400 = shape === 'openai' ? E.oai400() : E.ant400();
    cases.push(
      { name: `${path}: form-urlencoded body`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: 'model=gpt-4.1&input=x', expect: e400 },
      { name: `${path}: multipart body`, method: 'POST', path, headers: { ...headers, 'content-type': 'multipart/form-data; boundary=b' }, body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nx\r\n--b--\r\n', expect: e400 },
      { name: `${path}: UTF-16 JSON`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/json; charset=utf-16' }, body: utf16, expect: e400 },
      { name: `${path}: XML`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/xml' }, body: '<model>x</model>', expect: e400 },
      { name: `${path}: gzip-labelled plain JSON`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: 'not gzip', expect: e400 },
      { name: `${path}: valid JSON labelled text/plain`, method: 'POST', path, headers: { ...headers, 'content-type': 'text/plain' }, body: good, expect: E.fwd(200) },
      { name: `${path}: valid JSON without content-type`, method: 'POST', path, headers, body: good, expect: E.fwd(200) },
    );
  }
  await runCases(cases);
});

test('methods: 405 with allow on known routes; provider routes forward body-less methods and refuse unknown body routes', async () => {
  const A = adm();
  const cases = [];
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) cases.push({ name: `${m} /healthz`, method: m, path: '/healthz', headers: {}, expect: E.oai405('GET') });
  cases.push({ name: 'HEAD /healthz', method: 'HEAD', path: '/healthz', headers: {}, expect: E.ok(405) });
  for (const m of ['POST', 'PATCH']) cases.push({ name: `${m} /admin/tenants/acme`, method: m, path: '/admin/tenants/acme', headers: A, body: '{}', expect: E.oai405('GET, PUT, DELETE') });
  for (const m of ['PUT', 'DELETE', 'PATCH']) cases.push({ name: `${m} /admin/tenants/acme/keys`, method: m, path: '/admin/tenants/acme/keys', headers: A, body: '{}', expect: E.oai405('GET, POST') });
  for (const m of ['GET', 'POST', 'PUT']) cases.push({ name: `${m} /admin/tenants/acme/keys/key_x`, method: m, path: '/admin/tenants/acme/keys/key_x', headers: A, expect: E.oai405('DELETE') });
  for (const m of ['POST', 'DELETE']) cases.push({ name: `${m} /admin/tenants/acme/usage`, method: m, path: '/admin/tenants/acme/usage', headers: A, expect: E.oai405('GET') });
  // Provider routes: body-less methods go to the provider, which answers; a body on a
  // route the gateway cannot police is refused before it leaves.
  cases.push({ name: 'PATCH /openai/v1/responses (refused: unknown body route)', method: 'PATCH', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: '{}', expect: E.oaiRefused });
  cases.push({ name: 'GET /anthropic/v1/messages (forwarded)', method: 'GET', path: '/anthropic/v1/messages', headers: ant(S.keys.acme), expect: E.fwd(405) });
  cases.push({ name: 'DELETE /openai/v1/chat/completions (forwarded)', method: 'DELETE', path: '/openai/v1/chat/completions', headers: oai(S.keys.acme), expect: E.fwd(405) });
  await runCases(cases);
});

test('unknown routes and path tricks → 404 in the path\'s shape; nothing leaves {BASE_URL}/v1/', async () => {
  const O = oai(S.keys.acme);
  const A = ant(S.keys.acme);
  const cases = [];
  for (const p of ['/', '/nope', '/openai', '/openai/', '/openai/v1', '/openai/v1/', '/openai/v2/models', '/openaiv1/models', '/OPENAI/v1/models', '//openai/v1/models',
    '/openai/v1/./models/../../x', '/openai/v1/%2e%2e/%2e%2e/x', '/openai/v1/.%2E/x', '/openai/v1/models%2F..%2F..%2Fx', '/openai/v1/a%5cb', '/openai/v1/%2E%2E%2Fhealthz',
    '/healthz/', '/healthz/x', '/admin', '/admin/nothing.js', '/admin/tenants/acme/keys/k/extra', '/admin/tenants/acme/', '/admin/tenants/acme/other']) {
    cases.push({ name: `GET ${p}`, method: 'GET', path: p, headers: p.startsWith('/admin') ? adm() : O, expect: E.oai404 });
  }
  // The console page and the tenant list are routes now: answered locally, nothing goes upstream.
  for (const p of ['/admin/', '/admin/tenants']) cases.push({ name: `GET ${p}`, method: 'GET', path: p, headers: adm(), expect: E.ok() });
  for (const p of ['/anthropic', '/anthropic/v1', '/anthropic/v1/', '/anthropic/v2/messages', '/anthropic/messages', '/anthropic/v1/..%2Fv2/messages', '/anthropic/v1/%2e%2e%2fv2%2fmessages', '/anthropic/v1/messages%2F..%2F..%2F..%2Fx']) {
    cases.push({ name: `POST ${p}`, method: 'POST', path: p, headers: A, body: '{}', expect: E.ant404 });
  }
  // Literal dot segments and backslashes are resolved by the runtime's URL parser
  // (WHATWG) before the worker runs: these arrive as the paths they resolve to,
  // and none of them gets out of /v1/.
  cases.push({ name: 'GET /openai/v1/../../healthz (resolves to /healthz)', method: 'GET', path: '/openai/v1/../../healthz', headers: O, expect: E.ok(200) });
  cases.push({ name: 'GET /openai/v1/../../admin/tenants/acme (resolves to admin; a gateway key is not an admin token)', method: 'GET', path: '/openai/v1/../../admin/tenants/acme', headers: O, expect: E.oai401 });
  cases.push({ name: 'POST /anthropic/v1/../v1/messages (resolves to /anthropic/v1/messages)', method: 'POST', path: '/anthropic/v1/../v1/messages', headers: A, body: '{}', expect: E.fwd(400) });
  cases.push({ name: 'GET /openai/v1/a\\b (resolves to /openai/v1/a/b, still below /v1/)', method: 'GET', path: '/openai/v1/a\\b', headers: O, expect: E.fwd(404),
    extra: () => assert.equal(stack.providers.all()[0]?.path, '/v1/a/b') });
  await runCases(cases);
});

test('403: a tenant without a key for the provider, on every provider route kind', async () => {
  await runCases([
    { name: 'antonly → responses', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.antonly), body: '{"model":"gpt-4.1","input":"x"}', expect: E.oai403 },
    { name: 'antonly → models', method: 'GET', path: '/openai/v1/models', headers: oai(S.keys.antonly), expect: E.oai403 },
    { name: 'oaionly → messages', method: 'POST', path: '/anthropic/v1/messages', headers: ant(S.keys.oaionly), body: '{"model":"x","max_tokens":1,"messages":[]}', expect: E.ant403 },
    { name: 'oaionly → count_tokens', method: 'POST', path: '/anthropic/v1/messages/count_tokens', headers: ant(S.keys.oaionly), body: '{"model":"x","messages":[]}', expect: E.ant403 },
    { name: 'oaionly → anthropic models', method: 'GET', path: '/anthropic/v1/models', headers: ant(S.keys.oaionly), expect: E.ant403 },
  ]);
});

test('oversized bodies: 413 from content-length before the body is read; chunked uploads over the limit; the limit itself passes', async () => {
  const cases = [];
  const big = Buffer.alloc(MAX + 1, 0x61);
  const open = (path, headers, declared, shape) => ({
    name: `${path}: content-length ${declared}, answered before the body is sent`, method: 'POST', path, headers, declared,
    body: Buffer.concat([Buffer.from('{"model":"'), Buffer.alloc(declared - 10, 0x61)]), expect: shape === 'openai' ? E.oai413 : E.ant413,
  });
  for (const [path, headers, shape] of [
    ['/openai/v1/responses', oai(S.keys.acme), 'openai'],
    ['/openai/v1/chat/completions', oai(S.keys.acme), 'openai'],
    ['/anthropic/v1/messages', ant(S.keys.acme), 'anthropic'],
    ['/anthropic/v1/messages/count_tokens', ant(S.keys.acme), 'anthropic'],
  ]) {
    cases.push(open(path, headers, MAX + 1, shape));
    cases.push(open(path, headers, 4 * MAX, shape));
    const pad = (n) => {
      const head = shape === 'openai' ? '{"model":"gpt-4.1","input":"' : `{"model":"${MODEL}","max_tokens":5,"messages":[{"role":"user","content":"`;
      const tail = shape === 'openai' ? '"}' : '"}]}';
      return Buffer.concat([Buffer.from(head), Buffer.alloc(n - head.length - tail.length, 0x61), Buffer.from(tail)]);
    };
    cases.push({ name: `${path}: ${MAX + 1} bytes with content-length`, method: 'POST', path, headers, body: pad(MAX + 1), expect: shape === 'openai' ? E.oai413 : E.ant413 });
    const chunks = [];
    const body = pad(MAX + 64 * 1024);
    for (let i = 0; i < body.length; i += 64 * 1024) chunks.push(body.subarray(i, i + 64 * 1024));
    cases.push({ name: `${path}: ${body.length} bytes chunked, no content-length`, method: 'POST', path, headers, chunks, settle: true, expect: shape === 'openai' ? E.oai413 : E.ant413 });
    if (path !== '/openai/v1/chat/completions') {
      // Exactly at the limit is not too large.
      cases.push({ name: `${path}: exactly ${MAX} bytes`, method: 'POST', path, headers, body: pad(MAX), expect: E.fwd(200) });
    }
  }
  // Admin bodies have their own 1 MiB limit.
  cases.push({ name: 'admin PUT: content-length over 1 MiB, answered before the body is sent', method: 'PUT', path: '/admin/tenants/big', headers: adm(), declared: ADMIN_MAX + 1, body: big.subarray(0, ADMIN_MAX + 1), expect: E.oai413 });
  cases.push({ name: 'admin PUT: 1 MiB + 1 bytes', method: 'PUT', path: '/admin/tenants/big', headers: adm(), body: big.subarray(0, ADMIN_MAX + 1), expect: E.oai413 });
  await runCases(cases);
  assert.equal((await gw.getTenant('big')).status, 404, 'no tenant was created');
  assert.ok(big.length > MAX);
});

test('1 MB strings: accepted where the provider may take them, never echoed in an error', async () => {
  const mb = 'x'.repeat(1_000_000);
  await runCases([
    { name: 'responses: 1 MB input', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: JSON.stringify({ model: 'gpt-4.1', input: mb }), expect: E.fwd(200) },
    { name: 'responses: 1 MB key', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: JSON.stringify({ model: 'gpt-4.1', input: 'x', [mb]: 1 }), expect: E.fwd(200) },
    { name: 'messages: 1 MB string in metadata', method: 'POST', path: '/anthropic/v1/messages', headers: ant(S.keys.acme), body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }], metadata: { user_id: mb } }), expect: E.fwd(200) },
    { name: 'responses: 1 MB string, unterminated', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: `{"model":"gpt-4.1","input":"${mb}`, expect: E.oai400() },
    { name: 'responses: 1 MB of escapes with a bad one at the end', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: `{"model":"gpt-4.1","input":"${'\\n'.repeat(500_000)}\\q"}`, expect: E.oai400() },
    { name: 'responses: duplicate 1 MB keys', method: 'POST', path: '/openai/v1/responses', headers: oai(S.keys.acme), body: `{"model":"gpt-4.1","${mb}":1,"${mb}":2}`, expect: E.oai400() },
    { name: 'messages: 1 MB mcp_toolset name', method: 'POST', path: '/anthropic/v1/messages', headers: ant(S.keys.acme, MCP_BETA_NEW), body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [], mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x.example/mcp' }], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', configs: { [mb]: { enabled: 'x' } } }] }), expect: E.ant400() },
    { name: 'admin: 1 MB provider key', method: 'PUT', path: '/admin/tenants/mbkey', headers: adm(), body: JSON.stringify({ providers: { openai: { api_key: mb } } }), expect: E.oai400('providers.openai.api_key') },
    { name: 'admin: 1 MB server name', method: 'PUT', path: '/admin/tenants/mbname', headers: adm(), body: JSON.stringify({ mcp_servers: { [mb]: { url: 'https://x.example/mcp', auth: { type: 'none' } } } }), expect: E.oai400('mcp_servers') },
  ]);
});

test('bad admin payloads → 400 naming the field; nothing stored', async () => {
  const T = '/admin/tenants/corpus-bad';
  const url = 'https://mcp.example.com/mcp';
  const srv = (extra) => ({ mcp_servers: { s: { url, auth: { type: 'none' }, ...extra } } });
  const bodies = [
    ['malformed JSON', '{"providers":', null],
    ['array body', '[]', undefined],
    ['string body', '"x"', undefined],
    ['empty body', '', undefined],
    ['duplicate top-level key', '{"providers":{},"providers":{}}', undefined],
    ['duplicate nested key', '{"mcp_servers":{"s":{"url":"https://a.example/","url":"https://b.example/","auth":{"type":"none"}}}}', undefined],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), undefined],
    ['nesting 10 000 deep', `{"providers":${deep(10_000, '{"a":', '}').replace(/\{"a":\}/, '{"a":1}')}}`, undefined],
    ['unknown top-level field', { colour: 'blue' }, '$'],
    ['providers = []', { providers: [] }, 'providers'],
    // serde reads a struct from a JSON array too; the type must be checked.
    ['providers.openai = ["sk-…"] (array for an object)', { providers: { openai: ['sk-array-key-1'] } }, 'providers.openai'],
    ['server = [url, auth] (array for an object)', { mcp_servers: { s: [url, { type: 'none' }] } }, 'mcp_servers.s'],
    ['auth = ["bearer", token] (array for an object)', srv({ auth: ['bearer', 'array-token-1'] }), 'mcp_servers.s.auth'],
    ['rate_limit = [5] (array for an object)', { rate_limit: [5] }, 'rate_limit'],
    ['unknown provider', { providers: { mistral: { api_key: 'k' } } }, 'providers'],
    ['api_key = 5', { providers: { openai: { api_key: 5 } } }, 'providers.openai.api_key'],
    ['api_key empty', { providers: { openai: { api_key: '' } } }, 'providers.openai.api_key'],
    ['api_key with a newline', { providers: { openai: { api_key: 'sk-a\nb' } } }, 'providers.openai.api_key'],
    ['api_key with NUL', { providers: { anthropic: { api_key: 'sk-a\u0000b' } } }, 'providers.anthropic.api_key'],
    ['api_key of 9000 chars', { providers: { openai: { api_key: 'k'.repeat(9000) } } }, 'providers.openai.api_key'],
    ['api_key non-ASCII', { providers: { openai: { api_key: 'sk-ключ' } } }, 'providers.openai.api_key'],
    ['provider with an extra field', { providers: { openai: { api_key: 'k', org: 'x' } } }, 'providers.openai'],
    ['mcp_servers = []', { mcp_servers: [] }, 'mcp_servers'],
    ['server name empty', { mcp_servers: { '': { url, auth: { type: 'none' } } } }, 'mcp_servers'],
    ['server name of 65 chars', { mcp_servers: { ['a'.repeat(65)]: { url, auth: { type: 'none' } } } }, 'mcp_servers'],
    ['server name unicode', { mcp_servers: { 'ｃｒｍ': { url, auth: { type: 'none' } } } }, 'mcp_servers'],
    ['server name ../x', { mcp_servers: { '../x': { url, auth: { type: 'none' } } } }, 'mcp_servers'],
    ['server name with a space', { mcp_servers: { 'a b': { url, auth: { type: 'none' } } } }, 'mcp_servers'],
    ['server = "x"', { mcp_servers: { s: 'x' } }, 'mcp_servers.s'],
    ['server without url', { mcp_servers: { s: { auth: { type: 'none' } } } }, 'mcp_servers.s'],
    ['server without auth', { mcp_servers: { s: { url } } }, 'mcp_servers.s'],
    ['server with an unknown field', srv({ colour: 1 }), 'mcp_servers.s'],
    ['url = 5', srv({ url: 5 }), 'mcp_servers.s.url'],
    ['url http:// not loopback', srv({ url: 'http://mcp.example.com/mcp' }), 'mcp_servers.s.url'],
    ['url ftp://', srv({ url: 'ftp://mcp.example.com/' }), 'mcp_servers.s.url'],
    ['url with userinfo', srv({ url: 'https://user:pw@mcp.example.com/mcp' }), 'mcp_servers.s.url'],
    ['url with a fragment', srv({ url: 'https://mcp.example.com/mcp#x' }), 'mcp_servers.s.url'],
    ['url not absolute', srv({ url: '/mcp' }), 'mcp_servers.s.url'],
    ['url without host', srv({ url: 'https:///mcp' }), 'mcp_servers.s.url'],
    ['url javascript:', srv({ url: 'javascript:alert(1)' }), 'mcp_servers.s.url'],
    ['url of 3000 chars', srv({ url: `https://mcp.example.com/${'a'.repeat(3000)}` }), 'mcp_servers.s.url'],
    ['auth = "bearer"', srv({ auth: 'bearer' }), 'mcp_servers.s.auth'],
    ['auth type unknown', srv({ auth: { type: 'kerberos' } }), 'mcp_servers.s.auth.type'],
    ['auth type = 5', srv({ auth: { type: 5 } }), 'mcp_servers.s.auth'],
    ['auth without type', srv({ auth: { token: 't' } }), 'mcp_servers.s.auth'],
    ['bearer without token', srv({ auth: { type: 'bearer' } }), 'mcp_servers.s.auth'],
    ['bearer token empty', srv({ auth: { type: 'bearer', token: '' } }), 'mcp_servers.s.auth.token'],
    ['bearer token with CRLF', srv({ auth: { type: 'bearer', token: 'a\r\nX-Injected: 1' } }), 'mcp_servers.s.auth.token'],
    ['bearer token = []', srv({ auth: { type: 'bearer', token: [] } }), 'mcp_servers.s.auth.token'],
    ['bearer with an extra field', srv({ auth: { type: 'bearer', token: 't', header: 'x' } }), 'mcp_servers.s.auth'],
    ['none with a token', srv({ auth: { type: 'none', token: 't' } }), 'mcp_servers.s.auth'],
    ['headers = {}', srv({ auth: { type: 'headers', headers: {} } }), 'mcp_servers.s.auth.headers'],
    ['headers = []', srv({ auth: { type: 'headers', headers: [] } }), 'mcp_servers.s.auth.headers'],
    ['header name with a space', srv({ auth: { type: 'headers', headers: { 'Bad Name': 'v' } } }), 'mcp_servers.s.auth.headers'],
    ['header name with a colon', srv({ auth: { type: 'headers', headers: { 'X-A:b': 'v' } } }), 'mcp_servers.s.auth.headers'],
    ['header name empty', srv({ auth: { type: 'headers', headers: { '': 'v' } } }), 'mcp_servers.s.auth.headers'],
    ['header value with CR LF', srv({ auth: { type: 'headers', headers: { 'X-Key': 'a\r\nb' } } }), 'mcp_servers.s.auth.headers.X-Key'],
    ['header value with NUL', srv({ auth: { type: 'headers', headers: { 'X-Key': 'a\u0000b' } } }), 'mcp_servers.s.auth.headers.X-Key'],
    ['header value = 5', srv({ auth: { type: 'headers', headers: { 'X-Key': 5 } } }), 'mcp_servers.s.auth.headers'],
    ['header Host as a credential', srv({ auth: { type: 'headers', headers: { Host: 'evil.example' } } }), 'mcp_servers.s.auth.headers.Host'],
    ['header Content-Length as a credential', srv({ auth: { type: 'headers', headers: { 'Content-Length': '0' } } }), 'mcp_servers.s.auth.headers.Content-Length'],
    ['allowed_tools = "search"', srv({ allowed_tools: 'search' }), 'mcp_servers.s.allowed_tools'],
    ['allowed_tools = [1]', srv({ allowed_tools: [1] }), 'mcp_servers.s.allowed_tools'],
    ['allowed_tools = [""]', srv({ allowed_tools: [''] }), 'mcp_servers.s.allowed_tools'],
    ['allowed_tools with a control char', srv({ allowed_tools: ['a\u0007'] }), 'mcp_servers.s.allowed_tools'],
    ['allowed_tools of 513 tools', srv({ allowed_tools: Array.from({ length: 513 }, (_, i) => `t${i}`) }), 'mcp_servers.s.allowed_tools'],
    ['require_approval = "sometimes"', srv({ require_approval: 'sometimes' }), 'mcp_servers.s.require_approval'],
    ['require_approval = true', srv({ require_approval: true }), 'mcp_servers.s.require_approval'],
    ['allow_unmanaged_mcp_servers = "yes"', { allow_unmanaged_mcp_servers: 'yes' }, 'allow_unmanaged_mcp_servers'],
    ['allow_unmanaged_mcp_servers = 1', { allow_unmanaged_mcp_servers: 1 }, 'allow_unmanaged_mcp_servers'],
    ['rate_limit requests_per_minute = 0', { rate_limit: { requests_per_minute: 0 } }, 'rate_limit.requests_per_minute'],
    ['rate_limit requests_per_minute = -1', { rate_limit: { requests_per_minute: -1 } }, 'rate_limit'],
    ['rate_limit requests_per_minute = 1.5', { rate_limit: { requests_per_minute: 1.5 } }, 'rate_limit'],
    ['rate_limit with an unknown field', { rate_limit: { rpm: 3 } }, 'rate_limit'],
    ['65 servers', { mcp_servers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`s${i}`, { url, auth: { type: 'none' } }])) }, 'mcp_servers'],
  ];
  const cases = bodies.map(([what, body, param]) => ({
    name: `admin PUT: ${what}`, method: 'PUT', path: T, headers: adm(),
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), expect: E.oai400(param),
    extra: (r) => {
      // Errors never quote a submitted secret-like value.
      for (const s of ['sk-a', 'sk-ключ', 'X-Injected', 'evil.example']) assert.ok(!r.text.includes(s), `the error quotes ${s}`);
    },
  }));
  await runCases(cases);
  assert.equal((await gw.getTenant('corpus-bad')).status, 404, 'nothing was stored');
});

test('admin paths, tokens and queries: tenant ids with path tricks, bad tokens, another tenant\'s key, bad usage ranges', async () => {
  const A = adm();
  const cases = [];
  for (const [p, ex] of [
    ['/admin/tenants/a%20b', E.oai400('tenant_id')],
    [`/admin/tenants/${'a'.repeat(65)}`, E.oai400('tenant_id')],
    [`/admin/tenants/${'a'.repeat(10_000)}`, E.oai400('tenant_id')],
    ['/admin/tenants/acme%00', E.oai400('tenant_id')],
    ['/admin/tenants/%EF%BD%81cme', E.oai400('tenant_id')],
    ['/admin/tenants/acme.json', E.oai400('tenant_id')],
    // The URL parser resolves these to /admin/ (the console page) before the worker runs.
    ['/admin/tenants/..', E.ok()],
    ['/admin/tenants/%2e%2e', E.ok()],
    ['/admin/tenants/acme%2Fkeys', E.oai404],
    ['/admin/tenants/acme%5Ckeys', E.oai404],
    ['/admin/tenants/acme/keys/..%2F..%2Fglobex', E.oai404],
    ['/admin/tenants/acme/keys/%2e%2e', E.oai404],
    ['/admin/tenants/nosuchtenant', E.oai404],
    ['/admin/tenants/nosuchtenant/keys', E.oai404],
  ]) {
    cases.push({ name: `GET ${p.length > 90 ? `${p.slice(0, 40)}…(${p.length})` : p}`, method: 'GET', path: p, headers: A, expect: ex });
  }
  cases.push({ name: 'DELETE a tenant that does not exist', method: 'DELETE', path: '/admin/tenants/nosuchtenant', headers: A, expect: E.oai404 });
  cases.push({ name: "DELETE globex's key through acme's path", method: 'DELETE', path: `/admin/tenants/acme/keys/${globexKeyId}`, headers: A, expect: E.oai404 });
  cases.push({ name: 'DELETE a key id with path characters', method: 'DELETE', path: '/admin/tenants/acme/keys/key_%2F..', headers: A, expect: E.oai404 });
  cases.push({ name: 'POST keys for a tenant that does not exist', method: 'POST', path: '/admin/tenants/nosuchtenant/keys', headers: A, expect: E.oai404 });
  for (const [what, h] of [
    ['no token', {}],
    ['wrong token', { authorization: 'Bearer adm_wrong' }],
    ['Basic scheme', { authorization: `Basic ${gw.adminToken}` }],
    ['token in x-api-key', { 'x-api-key': gw.adminToken }],
    ['doubled Authorization', { authorization: [`Bearer ${gw.adminToken}`, `Bearer ${gw.adminToken}`] }],
    ['token with a suffix', { authorization: `Bearer ${gw.adminToken}x` }],
    ['token prefix', { authorization: `Bearer ${gw.adminToken.slice(0, -1)}` }],
    ['a gateway key', { authorization: `Bearer ${S.keys.acme}` }],
  ]) {
    cases.push({ name: `admin GET with ${what}`, method: 'GET', path: '/admin/tenants/acme', headers: h, expect: E.oai401 });
    cases.push({ name: `admin PUT with ${what}`, method: 'PUT', path: '/admin/tenants/intruder', headers: { ...h, 'content-type': 'application/json' }, body: '{}', expect: E.oai401 });
  }
  for (const [q, param] of [['from=2026-13-01', 'from'], ['from=yesterday', 'from'], ['to=2026-1-1', 'to'], ['from=2026-02-01&to=2026-01-01', 'from'], ['from=%00', 'from']]) {
    cases.push({ name: `usage ?${q}`, method: 'GET', path: `/admin/tenants/acme/usage?${q}`, headers: A, expect: E.oai400(param) });
  }
  await runCases(cases);
  // Nothing above changed a tenant or a key.
  assert.equal((await gw.getTenant('intruder')).status, 404);
  const keys = await gw.admin('GET', '/admin/tenants/globex/keys');
  assert.ok(keys.json.keys.some((k) => k.id === globexKeyId), "globex's key survived");
  const still = await gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${S.keys.globex}` } });
  assert.equal(still.status, 200);
});

test('healthz answers through all of it', async () => {
  await runCases([
    { name: 'GET /healthz', method: 'GET', path: '/healthz', headers: {}, expect: E.ok(200), extra: (r) => assert.deepEqual(r.json, { status: 'ok' }) },
    { name: 'GET /healthz?x=../..', method: 'GET', path: '/healthz?x=../..', headers: {}, expect: E.ok(200) },
    { name: 'GET /healthz with garbage auth', method: 'GET', path: '/healthz', headers: { authorization: 'Bearer \u00ff\u00fe' }, expect: E.ok(200) },
  ]);
});

test('corpus totals: every case answered, zero 5xx for bad input, nothing gateway-side went upstream', async () => {
  const statuses = [...results.byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
  console.log(`# bad-input corpus: ${results.cases} cases run; statuses ${statuses}; 5xx: ${results.fiveXX.length}`);
  console.log(`# wrangler-dev probes after early-cancelled chunked uploads (405 = clean, 503 = wrangler proxy artifact): ${results.settled.join(' ')}`);
  assert.ok(results.cases >= 150, `${results.cases} cases`);
  assert.deepEqual(results.fiveXX, [], '5xx answers to bad input');
  assertNothingGatewaySideUpstream(stack);
});

test('the runtime log shows no panic, uncaught exception or hung request; no secret leaked', async () => {
  await sleep(300);
  await assertNoLeaks(stack);
  const log = stack.gw.log();
  assert.doesNotMatch(log, /panic|Uncaught|hung|RuntimeError|unreachable executed/i);
  assert.ok(SECRETS.size > 0);
});
