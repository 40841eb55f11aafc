// No way around the MCP policy: every provider route that can carry MCP
// configuration is policed or refused, whatever the path spelling or the
// request's Content-Encoding, and an empty allowed-tools set never reaches a
// provider. The emulators record everything they receive: a refused request
// must leave no trace there, and a policed one must arrive completed.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { test, assertNoLeaks } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream, headerNames } from './setup.mjs';
import { MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';

let S;
let stack;
let gw;

before(async () => {
  S = await standardStack();
  ({ stack, gw } = S);
});

after(async () => {
  await stack?.close();
});

const V = '2023-06-01';
const oai = () => ({ authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' });
const ant = (beta) => ({ 'x-api-key': S.keys.acme, 'anthropic-version': V, 'content-type': 'application/json', ...(beta ? { 'anthropic-beta': beta } : {}) });
const EVIL = 'https://evil.example/mcp';
const unmanagedTool = { type: 'mcp', server_label: 'evil', server_url: EVIL, require_approval: 'never' };

/** Sends a request and asserts the gateway refused it with `status` and nothing reached a provider. */
async function refused(method, path, opts, status, mentions) {
  stack.reset();
  const r = await gw.request(method, path, opts);
  assert.equal(r.status, status, `${method} ${path}: ${r.status} ${r.text}`);
  assert.ok(r.json?.error, `an error body in the route's shape: ${r.text}`);
  if (mentions) assert.match(r.json.error.message, mentions);
  assert.deepEqual(stack.providers.all().map((x) => `${x.method} ${x.path}`), [], 'nothing reached a provider');
  return r;
}

/** The one request a provider emulator received since the last reset. */
function onlyUpstream() {
  const all = stack.providers.all();
  assert.equal(all.length, 1, all.map((x) => `${x.method} ${x.path}`).join(', '));
  return all[0];
}

test('responses/input_tokens is rewritten like responses: managed servers completed, unmanaged refused', async () => {
  await refused('POST', '/openai/v1/responses/input_tokens', { headers: oai(), body: { model: 'gpt-4.1', input: 'hi', tools: [unmanagedTool] } }, 400, /evil/);
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/responses/input_tokens', { headers: oai(), body: { model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm' }] } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'response.input_tokens');
  const sent = onlyUpstream().json.tools[0];
  assert.equal(sent.server_url, S.servers.crm.url);
  assert.equal(sent.authorization, S.TA);
  assert.deepEqual(sent.allowed_tools, ['whoami', 'search', 'lookup']);
  assert.ok(!r.text.includes(S.TA));
});

test('Anthropic message batches: every request is policed and completed', async () => {
  const params = (servers) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }], mcp_servers: servers });
  await refused('POST', '/anthropic/v1/messages/batches', {
    headers: ant(MCP_BETA_NEW),
    body: { requests: [{ custom_id: 'ok', params: params([{ type: 'url', name: 'crm', url: 'https://x' }]) }, { custom_id: 'bad', params: params([{ type: 'url', name: 'evil', url: EVIL }]) }] },
  }, 400, /requests\[1\]\.params/);
  await refused('POST', '/anthropic/v1/messages/batches', {
    headers: ant(MCP_BETA_NEW),
    body: { requests: [{ custom_id: 'a', params: params([{ type: 'url', name: 'crm', url: 'https://x', authorization_token: 'mine' }]) }] },
  }, 400, /authorization_token/);
  stack.reset();
  const r = await gw.request('POST', '/anthropic/v1/messages/batches', {
    headers: ant(),
    body: { requests: [{ custom_id: 'a', params: params([{ type: 'url', name: 'crm', url: 'https://x' }]) }] },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.type, 'message_batch');
  const up = onlyUpstream();
  const server = up.json.requests[0].params.mcp_servers[0];
  assert.equal(server.url, S.servers.crm.url);
  assert.equal(server.authorization_token, S.TA);
  assert.match(up.headers['anthropic-beta'], /mcp-client-/);
});

test('OpenAI batch input files with MCP tools are refused; uploads for batch are refused', async () => {
  const boundary = 'mcpgate-test-boundary';
  const form = (purpose, file) => Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n`
    + `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="b.jsonl"\r\ncontent-type: application/jsonl\r\n\r\n${file}\r\n--${boundary}--\r\n`,
  );
  const line = (tools) => JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/responses', body: { model: 'gpt-4.1', input: 'hi', tools } });
  const headers = { authorization: `Bearer ${S.keys.acme}`, 'content-type': `multipart/form-data; boundary=${boundary}` };
  await refused('POST', '/openai/v1/files', { headers, body: form('batch', `${line([])}\n${line([{ type: 'mcp', server_label: 'crm' }])}\n`) }, 400, /line 2/);
  await refused('POST', '/openai/v1/files', { headers, body: form('batch', line([unmanagedTool])) }, 400);
  await refused('POST', '/openai/v1/uploads', { headers: oai(), body: { purpose: 'batch', filename: 'b.jsonl', bytes: 10, mime_type: 'text/jsonl' } }, 400, /POST \/v1\/files/);
  // A batch file without MCP tools goes through as the same bytes.
  stack.reset();
  const body = form('batch', line([]));
  await gw.request('POST', '/openai/v1/files', { headers, body });
  assert.deepEqual(onlyUpstream().body, body);
});

test('Realtime keys and sessions cannot be minted past a managed-only policy', async () => {
  for (const path of ['/openai/v1/realtime/client_secrets', '/openai/v1/realtime/sessions', '/openai/v1/realtime/calls']) {
    await refused('POST', path, { headers: oai(), body: { session: { type: 'realtime', model: 'gpt-realtime' } } }, 403, /Realtime/);
  }
  // A tenant that allows unmanaged servers may use Realtime, but never with a managed label.
  const openKey = S.keys.open;
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/realtime/client_secrets', {
    headers: { authorization: `Bearer ${openKey}`, 'content-type': 'application/json' },
    body: { session: { type: 'realtime', tools: [unmanagedTool] } },
  });
  assert.notEqual(r.status, 403, r.text);
  assert.equal(onlyUpstream().path, '/v1/realtime/client_secrets');
});

test('unknown routes with a body are refused by default; known passthrough routes are not', async () => {
  await refused('POST', '/openai/v1/agents/run', { headers: oai(), body: { tools: [unmanagedTool] } }, 403, /unknown_routes/);
  await refused('PUT', '/openai/v1/responses', { headers: oai(), body: { tools: [unmanagedTool] } }, 403);
  await refused('POST', '/anthropic/v1/agents', { headers: ant(), body: { mcp_servers: [{ name: 'evil', url: EVIL }] } }, 403);
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/chat/completions', { headers: oai(), body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(r.status, 200, r.text);
  // A tenant that opts in passes unknown routes through (the emulator answers 404 for them).
  await gw.putTenant('passer', { ...S.tenants.open, unknown_routes: 'pass' });
  const key = (await gw.createKey('passer')).key;
  stack.reset();
  const p = await gw.request('POST', '/openai/v1/agents/run', { headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: {} });
  assert.equal(p.status, 404, p.text);
  assert.equal(onlyUpstream().path, '/v1/agents/run');
  const bad = await gw.admin('PUT', '/admin/tenants/passer', { ...S.tenants.open, unknown_routes: 'sometimes' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'unknown_routes');
});

test('every spelling of a policed path is policed or refused, and the canonical path goes upstream', async () => {
  await refused('POST', '/openai/v1/respons%65s', { headers: oai(), body: { model: 'gpt-4.1', input: 'hi', tools: [unmanagedTool] } }, 400, /evil/);
  await refused('POST', '/openai/v1/Responses', { headers: oai(), body: { model: 'gpt-4.1', input: 'hi', tools: [unmanagedTool] } }, 400, /evil/);
  await refused('POST', '/anthropic/v1/%6Dessages', { headers: ant(), body: { model: 'm', max_tokens: 5, messages: [], mcp_servers: [{ type: 'url', name: 'evil', url: EVIL }] } }, 400, /evil/);
  for (const path of ['/openai/v1/responses/', '/anthropic/v1//messages', '/openai//v1/responses', '/openai/v1/responses%2F']) {
    await refused('POST', path, { headers: path.startsWith('/openai') ? oai() : ant(), body: { tools: [unmanagedTool] } }, 404);
  }
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/respons%65s', { headers: oai(), body: { model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] } });
  assert.equal(r.status, 200, r.text);
  const up = onlyUpstream();
  assert.equal(up.path, '/v1/responses');
  assert.equal(up.json.tools[0].authorization, S.TA);
});

test('request Content-Encoding: decoded, policed and forwarded plain; mislabelled, unknown and bomb bodies refused', async () => {
  const managed = { model: 'gpt-4.1', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] };
  const evil = { model: 'gpt-4.1', input: 'hi', tools: [unmanagedTool] };
  const coded = (enc, obj) => ({ gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync }[enc])(Buffer.from(JSON.stringify(obj)));
  // A plain body labelled gzip never reaches the provider mislabelled.
  await refused('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': 'gzip' }, body: JSON.stringify(evil) }, 400);
  // workerd has no brotli decompressor: a br body is refused unread (415), never forwarded.
  await refused('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': 'br' }, body: coded('br', managed) }, 415, /'br'/);
  for (const enc of ['gzip', 'deflate']) {
    await refused('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': enc }, body: coded(enc, evil) }, 400, /evil/);
    stack.reset();
    const r = await gw.request('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': enc }, body: coded(enc, managed) });
    assert.equal(r.status, 200, `${enc}: ${r.text}`);
    const up = onlyUpstream();
    assert.equal(up.json.tools[0].authorization, S.TA, enc);
    assert.ok(!headerNames(up).includes('content-encoding'), `${enc}: forwarded decoded, without the header`);
  }
  // Passthrough routes are decoded too (the provider reads what the gateway saw).
  stack.reset();
  const chat = await gw.request('POST', '/openai/v1/chat/completions', { headers: { ...oai(), 'content-encoding': 'gzip' }, body: coded('gzip', { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(chat.status, 200, chat.text);
  assert.equal(onlyUpstream().json.model, 'gpt-4.1');
  await refused('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': 'zstd' }, body: 'x' }, 415, /zstd/);
  // 64 MiB of zeros in 64 KiB of gzip: cut off at MAX_BODY_BYTES after decoding.
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  assert.ok(bomb.length < 1024 * 1024);
  await refused('POST', '/openai/v1/responses', { headers: { ...oai(), 'content-encoding': 'gzip' }, body: bomb }, 413);
});

test('an empty allowed-tools set is never forwarded: 400 naming the server, both providers and both betas', async () => {
  await refused('POST', '/openai/v1/responses', { headers: oai(), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', allowed_tools: ['delete_everything'] }] } }, 400, /'crm'/);
  await refused('POST', '/openai/v1/responses', { headers: oai(), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', allowed_tools: { tool_names: [] } }] } }, 400, /'crm'/);
  await refused('POST', '/openai/v1/responses', { headers: oai(), body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', allowed_tools: { read_only: true } }] } }, 400, /read_only/);
  const msg = (extra) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'x' }], ...extra });
  await refused('POST', '/anthropic/v1/messages', {
    headers: ant(MCP_BETA_OLD),
    body: msg({ mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x', tool_configuration: { allowed_tools: ['delete_everything'] } }] }),
  }, 400, /'crm'/);
  await refused('POST', '/anthropic/v1/messages', {
    headers: ant(MCP_BETA_NEW),
    body: msg({ mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x' }], tools: [{ type: 'mcp_toolset', mcp_server_name: 'crm', default_config: { enabled: false }, configs: { delete_everything: { enabled: true } } }] }),
  }, 400, /'crm'/);
  await refused('POST', '/anthropic/v1/messages', { headers: ant('mcp-client-2099-01-01'), body: msg({ mcp_servers: [{ type: 'url', name: 'crm', url: 'https://x' }] }) }, 400, /mcp-client-2099-01-01/);
});

test('header policy: billing selectors and client path headers stay home, cookies do not come back', async () => {
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/chat/completions', {
    headers: { ...oai(), 'openai-organization': 'org-other', 'openai-project': 'proj_other', 'x-forwarded-for': '1.2.3.4', forwarded: 'for=1.2.3.4', 'x-real-ip': '1.2.3.4' },
    body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(r.status, 200, r.text);
  const names = headerNames(onlyUpstream());
  for (const h of ['openai-organization', 'openai-project', 'forwarded', 'x-real-ip']) assert.ok(!names.includes(h), h);
  assert.ok(!names.some((n) => n.startsWith('x-forwarded-')), names.join(','));
  assert.equal(r.headers.get('set-cookie'), null);
});

test('nothing gateway-side reached upstream, nothing secret reached a client or the logs', async () => {
  assertNothingGatewaySideUpstream(stack);
  await assertNoLeaks(stack);
});
