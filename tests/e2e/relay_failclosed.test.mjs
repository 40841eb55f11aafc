// The relay's tools/list filter fails closed. A hostile MCP server (below)
// answers a restricted `tools/list` in every shape a filter could misread:
// SSE framed with each line ending the format allows (also split over
// writes), data that is not JSON, duplicate keys, a `tools` that is not a
// list, a JSON body that does not parse, an unexpected content type, and
// answers far over the relay's bound (64 MiB chunked JSON, an endless SSE
// event). The client gets the filtered list, or a JSON-RPC error for its
// request id — never a tool the tenant does not allow. Oversized answers are
// cut off while being read: the server sees its connection closed early.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { test, startGateway, newSecret } from './harness.mjs';

const ALLOWED = ['search'];
const TOOLS = [{ name: 'search', inputSchema: { type: 'object' } }, { name: 'delete_everything', inputSchema: { type: 'object' } }];
const list = (id) => JSON.stringify({ jsonrpc: '2.0', id, result: { tools: TOOLS } });

/** How the hostile server answers `tools/list`, by mode; each returns [content-type, writes]. */
const MODES = {
  'lf-crlf': (id) => ['text/event-stream', [`event: message\ndata: ${list(id)}\n\r\n`]],
  'cr-cr': (id) => ['text/event-stream', [`event: message\rdata: ${list(id)}\r\r`]],
  'crlf-lf': (id) => ['text/event-stream', [`: hi\r\n\nevent: message\r\ndata: ${list(id)}\r\n\n`]],
  'crlf split over writes': (id) => ['text/event-stream', [`data: ${list(id)}\r`, '\n\r', '\n']],
  'data lines split': (id) => ['text/event-stream', [`data: ${list(id).replace(',"result"', '\ndata: ,"result"')}\n\n`]],
  'sse not json': (id) => ['text/event-stream', [`data: ${list(id)} trailing garbage\n\n`]],
  'sse duplicate keys': (id) => ['text/event-stream', [`data: {"jsonrpc":"2.0","id":${id},"result":{"tools":[],"tools":${JSON.stringify(TOOLS)}}}\n\n`]],
  'sse tools not a list': (id) => ['text/event-stream', [`data: {"jsonrpc":"2.0","id":${id},"result":{"tools":{"0":{"name":"delete_everything"}}}}\n\n`]],
  'json not json': (id) => ['application/json', [`${list(id)}}`]],
  'json duplicate keys': (id) => ['application/json', [`{"jsonrpc":"2.0","id":${id},"result":{"tools":[],"tools":${JSON.stringify(TOOLS)}}}`]],
  'text/plain': (id) => ['text/plain', [list(id)]],
  'no content type': (id) => ['', [list(id)]],
};

/** Modes whose answer the filter can read: the client gets the filtered list. */
const READABLE = new Set(['lf-crlf', 'cr-cr', 'crlf-lf', 'crlf split over writes', 'data lines split']);

let gw;
let hostile;
let mode = 'lf-crlf';
/** Per huge answer: bytes the server wrote, and whether the connection closed before it finished. */
const huge = { written: 0, closedEarly: false };

/** Writes `total` bytes (a JSON document or one endless SSE event) respecting back-pressure, until closed. */
async function writeHuge(res, id, sse, total) {
  const pad = Buffer.alloc(64 * 1024, 0x78);
  res.on('close', () => {
    if (!res.writableFinished) huge.closedEarly = true;
  });
  const head = sse ? `data: {"jsonrpc":"2.0","id":${id},"result":{"tools":${JSON.stringify(TOOLS)},"pad":"` : `{"jsonrpc":"2.0","id":${id},"result":{"tools":${JSON.stringify(TOOLS)},"pad":"`;
  res.write(head);
  while (huge.written < total && !res.destroyed) {
    huge.written += pad.length;
    if (!res.write(pad)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
  }
  if (!res.destroyed) res.end(sse ? '"}}\n\n' : '"}}');
}

async function startHostile() {
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    let msg = {};
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch { /* not for us */ }
    if (msg.method !== 'tools/list') {
      if (msg.id === undefined) return res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      const result = msg.method === 'initialize'
        ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } }
        : {};
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    }
    if (mode === 'huge json' || mode === 'huge sse') {
      res.writeHead(200, { 'content-type': mode === 'huge sse' ? 'text/event-stream' : 'application/json' });
      return writeHuge(res, msg.id, mode === 'huge sse', 64 * 1024 * 1024);
    }
    const [type, writes] = MODES[mode](msg.id);
    res.writeHead(200, type ? { 'content-type': type } : {});
    for (const [i, w] of writes.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      res.write(w);
    }
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

/** A capability token as the gateway mints it (HKDF-SHA256 subkey of MASTER_KEY, HMAC-SHA256). */
function mintToken(masterKeyB64) {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(masterKeyB64, 'base64'), 'mcpgate/subkey/v1', 'mcpgate/relay-capability-token/v1', 32));
  const claims = { ten: 'acme', srv: 'hostile', tools: null, exp: Math.floor(Date.now() / 1000) + 600, jti: randomBytes(16).toString('hex') };
  const signed = `mcr1.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

let token;

before(async () => {
  hostile = await startHostile();
  gw = await startGateway({ openaiBaseUrl: 'http://127.0.0.1:9', anthropicBaseUrl: 'http://127.0.0.1:9' });
  await gw.putTenant('acme', {
    providers: { openai: { api_key: newSecret('openai key', 'sk-proj-') } },
    mcp_servers: {
      hostile: { url: hostile.url, mode: 'relay', auth: { type: 'bearer', token: newSecret('hostile token', 'mcp_tok_') }, allowed_tools: ALLOWED },
    },
  });
  token = mintToken(gw.masterKey);
});

after(async () => {
  await gw?.stop();
  await hostile?.close();
});

function listTools(id = 7) {
  return gw.fetch(`${gw.url}/mcp/acme/hostile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }),
  });
}

/** The JSON-RPC messages of an answer, JSON or SSE (any line ending). */
function messages(res, text) {
  if ((res.headers.get('content-type') ?? '').includes('application/json')) return [JSON.parse(text)];
  return text.split(/\r\n\r\n|\n\n|\r\r|\n\r\n|\r\n\n/).map((ev) => ev.split(/\r\n|\r|\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'))
    .filter(Boolean).map((d) => JSON.parse(d));
}

for (const m of Object.keys(MODES)) {
  test(`tools/list answered as "${m}": ${READABLE.has(m) ? 'filtered' : 'refused with a JSON-RPC error'}, never an unlisted tool`, async () => {
    mode = m;
    const res = await listTools(7);
    const text = await res.text();
    assert.ok(!text.includes('delete_everything'), `${m}: ${text.slice(0, 300)}`);
    assert.equal(res.status, 200, text);
    const msgs = messages(res, text);
    assert.equal(msgs.length, 1, text);
    assert.equal(msgs[0].id, 7);
    if (READABLE.has(m)) assert.deepEqual(msgs[0].result.tools.map((t) => t.name), ALLOWED);
    else assert.equal(msgs[0].error.code, -32603, text);
  });
}

test('the official MCP SDK client sees the filtered list, or an error, never the unfiltered list', async () => {
  // (Not 'cr-cr': a stream ending in a bare \r leaves the SDK's own parser waiting for one more byte.)
  for (const m of ['lf-crlf', 'crlf split over writes', 'sse not json', 'json not json', 'text/plain']) {
    mode = m;
    const client = new Client({ name: 'failclosed', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/acme/hostile`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      fetch: (u, init) => gw.fetch(String(u), init),
    });
    await client.connect(transport);
    if (READABLE.has(m)) assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ALLOWED, m);
    else await assert.rejects(client.listTools(), (e) => e.code === -32603, m);
    await client.close();
  }
});

for (const m of ['huge json', 'huge sse']) {
  test(`a ${m === 'huge json' ? '64 MiB chunked JSON answer' : 'endless SSE event'} is cut off once over the bound and refused`, async () => {
    mode = m;
    huge.written = 0;
    huge.closedEarly = false;
    const res = await listTools(9);
    const text = await res.text();
    assert.ok(!text.includes('delete_everything'));
    const msgs = messages(res, text);
    assert.equal(msgs.at(-1).id, 9);
    assert.equal(msgs.at(-1).error.code, -32603);
    // The gateway stopped reading: the server could not write the whole answer.
    for (let i = 0; i < 100 && !huge.closedEarly; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(huge.closedEarly, 'the connection was closed before the answer ended');
    assert.ok(huge.written < 32 * 1024 * 1024, `${huge.written} bytes written before the cut`);
  });
}
