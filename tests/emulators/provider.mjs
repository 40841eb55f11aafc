// OpenAI, Anthropic, xAI, Groq, Azure OpenAI and Gemini API emulators for the end-to-end tests.
//
// Each emulator is a node:http server on 127.0.0.1 (random port) that behaves
// like the real API as docs/providers.md describes it: it checks
// the provider key and required headers, validates the request body, answers
// with the real JSON and SSE shapes (with real delays between stream events),
// and for MCP tools it really connects to the MCP server named in the request
// with the official MCP SDK client, lists its tools and calls one. The "model"
// is deterministic: an input text containing `call <tool>` (optionally
// `call <tool> on <server>`) makes it call that tool; otherwise it calls the
// first available tool; `key=value` words in the text fill the tool's string
// arguments.
//
// Every request is recorded (method, path, query, headers, raw body) so tests
// can assert exactly what reached the provider; the answer is recorded with it
// (`response`: status, the bytes written, whether the connection closed before
// the end) and, for answers that report usage, `reported`: {input_tokens,
// output_tokens, mcp_calls: {server: n}}, the numbers the answer carries.
// `x-emulator-split-writes: N` on a request makes the answer go out in N-byte
// writes, `x-emulator-gzip: 1` gzip-encoded (see captureResponse), and
// `x-emulator-delta-chars: N` streams text in N-character deltas (see splitText).

import http from 'node:http';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createFaults } from './faults.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rid = (prefix, bytes = 24) => `${prefix}${randomBytes(bytes).toString('hex')}`;
const nowSec = () => Math.floor(Date.now() / 1000);
const approxTokens = (v) => Math.max(1, Math.ceil((typeof v === 'string' ? v : JSON.stringify(v ?? '')).length / 4));
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Turns node's header object into a plain lowercase map (duplicates joined by ", "). */
function headerMap(req) {
  const out = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

function record(list, history, provider, req, body) {
  const u = new URL(req.url, 'http://127.0.0.1');
  let json;
  try {
    json = body.length ? JSON.parse(body.toString('utf8')) : undefined;
  } catch {
    json = undefined;
  }
  const entry = {
    provider,
    time: Date.now(),
    method: req.method,
    url: req.url,
    path: u.pathname,
    query: u.search,
    headers: headerMap(req),
    rawHeaders: [...req.rawHeaders],
    body,
    text: body.toString('utf8'),
    json,
  };
  list.push(entry);
  history.push(entry);
  return entry;
}

/**
 * Records what the emulator answers to a request on `entry.response`
 * (`{status, chunks, body, closed, complete}`; `body` is the concatenated bytes
 * as the emulator produced them, before any of the transformations below).
 * Two request headers change how the answer is sent, for tests of the
 * gateway's response handling:
 * - `x-emulator-split-writes: N`: every write goes out in pieces of N bytes with
 *   a short pause between them, so values in the body (a secret an MCP tool
 *   echoed, say) cross network chunk boundaries on their way to the gateway;
 * - `x-emulator-gzip: 1`: the answer is sent with `content-encoding: gzip`
 *   (flushed after every write, so SSE stays incremental).
 */
function captureResponse(req, res, entry) {
  // `closed`: the connection is gone; `complete`: the whole answer was sent before that.
  const captured = { status: null, chunks: [], closed: false, complete: false, get body() { return Buffer.concat(this.chunks); } };
  entry.response = captured;
  res.on('close', () => {
    captured.closed = true;
    captured.complete = res.writableFinished;
  });
  const split = Number.parseInt(String(req.headers['x-emulator-split-writes'] ?? ''), 10) || 0;
  const gzip = /^(1|true|gzip)$/i.test(String(req.headers['x-emulator-gzip'] ?? ''));
  captured.encoding = gzip ? 'gzip' : null;
  const origWriteHead = res.writeHead.bind(res);
  const origWrite = res.write.bind(res);
  const origEnd = res.end.bind(res);
  const toBuf = (d, enc) => (d == null || typeof d === 'function' ? null
    : Buffer.isBuffer(d) ? d : Buffer.from(d, typeof enc === 'string' ? enc : 'utf8'));
  res.writeHead = (status, ...rest) => {
    captured.status = status;
    if (gzip) {
      const i = rest.findIndex((a) => a && typeof a === 'object');
      const h = Object.fromEntries(Object.entries(i >= 0 ? rest[i] : {}).filter(([k]) => k.toLowerCase() !== 'content-length'));
      h['content-encoding'] = 'gzip';
      if (i >= 0) rest[i] = h;
      else rest.push(h);
    }
    return origWriteHead(status, ...rest);
  };
  if (split <= 0 && !gzip) {
    res.write = (d, ...rest) => {
      const b = toBuf(d, rest[0]);
      if (b) captured.chunks.push(b);
      return origWrite(d, ...rest);
    };
    res.end = (d, ...rest) => {
      const b = toBuf(d, rest[0]);
      if (b) captured.chunks.push(b);
      return origEnd(d, ...rest);
    };
    return;
  }
  // Where the (possibly compressed) bytes go: straight out, or in pieces.
  let sinkWrite = (b) => {
    if (!res.destroyed) origWrite(b);
  };
  let sinkEnd = () => origEnd();
  if (split > 0) {
    let queue = Promise.resolve();
    const piecewise = async (b) => {
      for (let i = 0; i < b.length; i += split) {
        if (res.destroyed) return;
        if (i > 0) await sleep(1);
        origWrite(b.subarray(i, i + split));
      }
    };
    sinkWrite = (b) => {
      queue = queue.then(() => piecewise(b));
    };
    sinkEnd = () => {
      queue = queue.then(() => origEnd());
    };
  }
  let z = null;
  if (gzip) {
    z = zlib.createGzip();
    z.on('data', (b) => sinkWrite(b));
    z.on('end', () => sinkEnd());
  }
  res.write = (d, enc) => {
    const b = toBuf(d, enc);
    if (b) {
      captured.chunks.push(b);
      if (z) {
        z.write(b);
        z.flush(zlib.constants.Z_SYNC_FLUSH);
      } else sinkWrite(b);
    }
    return true;
  };
  res.end = (d, enc) => {
    const b = toBuf(d, enc);
    if (b) captured.chunks.push(b);
    if (z) z.end(b ?? undefined);
    else {
      if (b) sinkWrite(b);
      sinkEnd();
    }
    return res;
  };
}

/** The usage an answer reports, kept on the recorded request as `entry.reported`. */
function reportUsage(entry, inputTokens, outputTokens, items = [], serverKey = 'server_label', type = 'mcp_call') {
  const mcp_calls = {};
  for (const it of items) {
    if (it?.type === type) mcp_calls[it[serverKey]] = (mcp_calls[it[serverKey]] ?? 0) + 1;
  }
  entry.reported = { input_tokens: inputTokens, output_tokens: outputTokens, mcp_calls };
}

function sendJson(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes SSE frames one by one with a real delay between them. */
async function streamSse(res, frames, delayMs, headers = {}) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  for (let i = 0; i < frames.length; i++) {
    if (closed) return;
    if (i > 0 && delayMs > 0) await sleep(delayMs);
    if (closed) return;
    res.write(frames[i]);
  }
  res.end();
}

// ---------------------------------------------------------------------------
// MCP client side (what OpenAI's and Anthropic's MCP connectors do)

class McpFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // HTTP status of the MCP server, or null if unreachable
  }
}

/** Connects to an MCP server with the given request headers; returns a small session. */
async function mcpSession(url, headers) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new McpFailure(null, 'invalid server URL');
  }
  const client = new Client({ name: 'provider-emulator-mcp-connector', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(parsed, { requestInit: { headers } });
  const wrap = (e) => {
    if (e instanceof McpFailure) return e;
    const code = typeof e?.code === 'number' && e.code >= 100 ? e.code : null;
    if (e?.constructor?.name === 'UnauthorizedError') return new McpFailure(401, 'Unauthorized');
    return new McpFailure(code, code ? `HTTP ${code}` : `connection failed: ${e?.cause?.code ?? e?.message ?? e}`);
  };
  try {
    await client.connect(transport);
  } catch (e) {
    await client.close().catch(() => {});
    throw wrap(e);
  }
  return {
    async listTools() {
      try {
        const r = await client.listTools();
        return r.tools;
      } catch (e) {
        throw wrap(e);
      }
    },
    async callTool(name, args) {
      try {
        return await client.callTool({ name, arguments: args });
      } catch (e) {
        throw wrap(e);
      }
    },
    close: () => client.close().catch(() => {}),
  };
}

function textOfToolResult(result) {
  return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

/** Extracts the deterministic "model" decision from the user's text. */
function parseDirective(text) {
  const m = /\bcall\s+([A-Za-z0-9_-]+)(?:\s+on\s+([A-Za-z0-9_-]+))?/i.exec(text ?? '');
  const kv = {};
  for (const mm of (text ?? '').matchAll(/\b([A-Za-z_][A-Za-z0-9_]*)=([^\s,;]+)/g)) kv[mm[1]] = mm[2];
  return { tool: m?.[1] ?? null, server: m?.[2] ?? null, kv };
}

/** Builds tool-call arguments from the tool's input schema and the user's key=value words. */
function buildArguments(tool, kv) {
  const schema = tool.inputSchema ?? tool.input_schema ?? {};
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const args = {};
  for (const [k, p] of Object.entries(props)) {
    if (k in kv) {
      args[k] = p.type === 'boolean' ? kv[k] === 'true' : p.type === 'number' || p.type === 'integer' ? Number(kv[k]) : kv[k];
    } else if (required.has(k)) {
      args[k] = p.type === 'boolean' ? false : p.type === 'number' || p.type === 'integer' ? 0 : `${k}-value`;
    }
  }
  return args;
}

/**
 * Picks the tool the deterministic model calls.
 * @param {{label:string, tools:object[]}[]} available
 */
function chooseTool(available, text) {
  const d = parseDirective(text);
  if (d.tool) {
    for (const s of available) {
      if (d.server && s.label !== d.server) continue;
      const t = s.tools.find((x) => x.name === d.tool);
      if (t) return { label: s.label, tool: t, args: buildArguments(t, d.kv) };
    }
    return { missing: d.tool };
  }
  for (const s of available) {
    if (s.tools.length) return { label: s.label, tool: s.tools[0], args: buildArguments(s.tools[0], d.kv) };
  }
  return null;
}

/**
 * The pieces a streamed text is sent in: about five runs of whole words, or,
 * with `chars` (the `x-emulator-delta-chars: N` request header), pieces of N
 * characters cut anywhere, mid-word included, as a real model's tokens are —
 * so a value in the text (a secret an MCP tool echoed) crosses delta events.
 */
function splitText(text, parts = 5, chars = 0) {
  if (chars > 0) {
    const cps = [...text];
    const out = [];
    for (let i = 0; i < cps.length; i += chars) out.push(cps.slice(i, i + chars).join(''));
    return out.length ? out : [''];
  }
  const words = text.split(/(?<= )/);
  const per = Math.max(1, Math.ceil(words.length / parts));
  const out = [];
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(''));
  return out.length ? out : [''];
}

/** `x-emulator-delta-chars: N` (see splitText), or 0. */
const deltaCharsOf = (req) => Number.parseInt(String(req.headers['x-emulator-delta-chars'] ?? ''), 10) || 0;

// ---------------------------------------------------------------------------
// OpenAI

const OPENAI_MODELS = ['gpt-4.1', 'gpt-4.1-mini', 'gpt-4o', 'o4-mini'];

class OpenAIError extends Error {
  constructor(status, message, { type = 'invalid_request_error', param = null, code = null } = {}) {
    super(message);
    Object.assign(this, { status, type, param, code });
  }
}

function oaiErrorBody(e) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

function maskKey(k) {
  return k.length > 8 ? `${k.slice(0, 3)}*****${k.slice(-4)}` : '*****';
}

function userTextOfInput(input) {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  let text = '';
  for (const item of input) {
    if (!isObj(item)) continue;
    if ((item.type === 'message' || item.type === undefined) && item.role === 'user') {
      if (typeof item.content === 'string') text = item.content;
      else if (Array.isArray(item.content)) {
        text = item.content.filter((p) => p?.type === 'input_text').map((p) => p.text).join(' ');
      }
    }
  }
  return text;
}

function filterAllowed(tools, allowed) {
  if (allowed == null) return tools;
  if (Array.isArray(allowed)) return tools.filter((t) => allowed.includes(t.name));
  return tools.filter((t) => {
    if (Array.isArray(allowed.tool_names) && !allowed.tool_names.includes(t.name)) return false;
    if (allowed.read_only === true && t.annotations?.readOnlyHint !== true) return false;
    return true;
  });
}

function filterMatches(f, tool) {
  if (!isObj(f)) return false;
  const hasNames = Array.isArray(f.tool_names);
  const hasRo = typeof f.read_only === 'boolean';
  if (!hasNames && !hasRo) return false;
  if (hasNames && !f.tool_names.includes(tool.name)) return false;
  if (hasRo && (tool.annotations?.readOnlyHint === true) !== f.read_only) return false;
  return true;
}

/** OpenAI's default for require_approval is "always". */
function needsApproval(ra, tool) {
  if (ra == null || ra === 'always') return true;
  if (ra === 'never') return false;
  if (filterMatches(ra.always, tool)) return true;
  if (filterMatches(ra.never, tool)) return false;
  return true;
}

function validateFilter(f, where) {
  if (f == null) return;
  if (!isObj(f)) throw new OpenAIError(400, `Invalid type for '${where}': expected an object.`, { param: where, code: 'invalid_type' });
  for (const k of Object.keys(f)) {
    if (k !== 'tool_names' && k !== 'read_only') {
      throw new OpenAIError(400, `Unknown parameter: '${where}.${k}'.`, { param: `${where}.${k}`, code: 'unknown_parameter' });
    }
  }
  if (f.tool_names != null && (!Array.isArray(f.tool_names) || f.tool_names.some((n) => typeof n !== 'string'))) {
    throw new OpenAIError(400, `Invalid type for '${where}.tool_names': expected an array of strings.`, { param: `${where}.tool_names`, code: 'invalid_type' });
  }
  if (f.read_only != null && typeof f.read_only !== 'boolean') {
    throw new OpenAIError(400, `Invalid type for '${where}.read_only': expected a boolean.`, { param: `${where}.read_only`, code: 'invalid_type' });
  }
}

function validateMcpTool(t, i) {
  const p = `tools[${i}]`;
  if (typeof t.server_label !== 'string' || !t.server_label) {
    throw new OpenAIError(400, `Missing required parameter: '${p}.server_label'.`, { param: `${p}.server_label`, code: 'missing_required_parameter' });
  }
  if (t.server_url == null && t.connector_id == null && t.tunnel_id == null) {
    throw new OpenAIError(400, `Missing required parameter: one of '${p}.server_url', '${p}.connector_id' or '${p}.tunnel_id' must be provided.`, { param: `${p}.server_url`, code: 'missing_required_parameter' });
  }
  if (t.server_url != null) {
    let u;
    try {
      u = new URL(t.server_url);
    } catch {
      throw new OpenAIError(400, `Invalid URL for '${p}.server_url'.`, { param: `${p}.server_url`, code: 'invalid_value' });
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new OpenAIError(400, `Invalid URL for '${p}.server_url'.`, { param: `${p}.server_url`, code: 'invalid_value' });
    }
  }
  if (t.headers != null && (!isObj(t.headers) || Object.values(t.headers).some((v) => typeof v !== 'string'))) {
    throw new OpenAIError(400, `Invalid type for '${p}.headers': expected an object with string values.`, { param: `${p}.headers`, code: 'invalid_type' });
  }
  if (t.authorization != null && typeof t.authorization !== 'string') {
    throw new OpenAIError(400, `Invalid type for '${p}.authorization': expected a string.`, { param: `${p}.authorization`, code: 'invalid_type' });
  }
  const at = t.allowed_tools;
  if (at != null) {
    if (Array.isArray(at)) {
      if (at.some((n) => typeof n !== 'string')) {
        throw new OpenAIError(400, `Invalid type for '${p}.allowed_tools[]': expected a string.`, { param: `${p}.allowed_tools`, code: 'invalid_type' });
      }
    } else validateFilter(at, `${p}.allowed_tools`);
  }
  const ra = t.require_approval;
  if (ra != null && ra !== 'always' && ra !== 'never') {
    if (!isObj(ra)) {
      throw new OpenAIError(400, `Invalid value for '${p}.require_approval': expected 'always', 'never' or an object.`, { param: `${p}.require_approval`, code: 'invalid_value' });
    }
    for (const k of Object.keys(ra)) {
      if (k !== 'always' && k !== 'never') {
        throw new OpenAIError(400, `Unknown parameter: '${p}.require_approval.${k}'.`, { param: `${p}.require_approval.${k}`, code: 'unknown_parameter' });
      }
      validateFilter(ra[k], `${p}.require_approval.${k}`);
    }
  }
}

/** What the MCP connector sends to the MCP server for this tool definition. */
function mcpHeadersOf(t) {
  const h = {};
  if (isObj(t.headers)) Object.assign(h, t.headers);
  if (typeof t.authorization === 'string') {
    for (const k of Object.keys(h)) if (k.toLowerCase() === 'authorization') delete h[k];
    h.Authorization = `Bearer ${t.authorization}`;
  }
  return h;
}

/** The tool as OpenAI echoes it in a Response: no credentials, URL without its path. */
function redactTool(t) {
  if (t?.type !== 'mcp') return t;
  const out = { ...t };
  if (typeof out.server_url === 'string') {
    try {
      out.server_url = new URL(out.server_url).origin;
    } catch {
      /* keep */
    }
  }
  if ('headers' in out) out.headers = null;
  delete out.authorization;
  return out;
}

function toolForOutput(t) {
  const o = { name: t.name, input_schema: t.inputSchema ?? {}, description: t.description ?? null };
  o.annotations = t.annotations ?? null;
  return o;
}

/** Builds the Responses API SSE frames for a finished response. */
function responseEvents(resp, deltaChars = 0) {
  const frames = [];
  let seq = 0;
  const ev = (type, data) => {
    const payload = { type, ...data, sequence_number: seq++ };
    frames.push(`event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`);
  };
  const start = { ...resp, status: 'in_progress', output: [], usage: null };
  ev('response.created', { response: start });
  ev('response.in_progress', { response: start });
  resp.output.forEach((item, output_index) => {
    if (item.type === 'mcp_list_tools') {
      ev('response.output_item.added', { output_index, item: { ...item, tools: [] } });
      ev('response.mcp_list_tools.in_progress', { item_id: item.id, output_index });
      ev(item.error ? 'response.mcp_list_tools.failed' : 'response.mcp_list_tools.completed', { item_id: item.id, output_index });
      ev('response.output_item.done', { output_index, item });
    } else if (item.type === 'mcp_call') {
      ev('response.output_item.added', { output_index, item: { ...item, arguments: '', output: null, error: null, status: 'in_progress' } });
      ev('response.mcp_call_arguments.delta', { item_id: item.id, output_index, delta: item.arguments });
      ev('response.mcp_call_arguments.done', { item_id: item.id, output_index, arguments: item.arguments });
      ev('response.mcp_call.in_progress', { item_id: item.id, output_index });
      ev(item.status === 'failed' ? 'response.mcp_call.failed' : 'response.mcp_call.completed', { item_id: item.id, output_index });
      ev('response.output_item.done', { output_index, item });
    } else if (item.type === 'message') {
      const text = item.content[0].text;
      ev('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } });
      ev('response.content_part.added', { item_id: item.id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
      for (const delta of splitText(text, 5, deltaChars)) {
        ev('response.output_text.delta', { item_id: item.id, output_index, content_index: 0, delta, logprobs: [] });
      }
      ev('response.output_text.done', { item_id: item.id, output_index, content_index: 0, text, logprobs: [] });
      ev('response.content_part.done', { item_id: item.id, output_index, content_index: 0, part: item.content[0] });
      ev('response.output_item.done', { output_index, item });
    } else {
      ev('response.output_item.added', { output_index, item });
      ev('response.output_item.done', { output_index, item });
    }
  });
  ev(resp.status === 'completed' ? 'response.completed' : 'response.incomplete', { response: resp });
  return frames;
}

/**
 * The APIs modelled on OpenAI's Responses API (docs/providers.md): where the
 * API lives, which header carries the key, and what an `mcp` tool may hold.
 * - xai:   /v1/*, Bearer; no require_approval, no connector_id (400), allowed_tools
 *          a list of names; MCP calls run without approval.
 * - groq:  /openai/v1/*, Bearer; the OpenAI mcp tool.
 * - azure: /openai/v1/* and the dated /openai/* (api-version query required), `api-key`.
 */
export const OPENAI_FLAVORS = {
  openai: { roots: ['/v1'], keyHeader: 'authorization', approval: true, filterObject: true, connector: true },
  xai: { roots: ['/v1'], keyHeader: 'authorization', approval: false, filterObject: false, connector: false },
  groq: { roots: ['/openai/v1'], keyHeader: 'authorization', approval: true, filterObject: true, connector: true },
  azure: { roots: ['/openai/v1', '/openai'], keyHeader: 'api-key', approval: true, filterObject: true, connector: false, apiVersion: true },
};

/**
 * Starts the OpenAI emulator, or one of its flavors (OPENAI_FLAVORS).
 * @param {{keys?: Iterable<string>, delayMs?: number, flavor?: string}} opts
 */
export async function startOpenAIEmulator({ keys = [], delayMs = 100, flavor = 'openai' } = {}) {
  const F = OPENAI_FLAVORS[flavor];
  const validKeys = new Set(keys);
  const requests = [];
  const history = []; // every request ever received; reset() leaves it alone
  const stored = new Map(); // response id -> {key, response, approvals: Map, listed: Map(label -> tools)}
  const faults = createFaults('openai');

  function authKey(req) {
    if (F.keyHeader === 'api-key') {
      const k = req.headers['api-key'];
      if (typeof k !== 'string' || !validKeys.has(k)) {
        throw new OpenAIError(401, 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.', { code: '401' });
      }
      return k;
    }
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h.trim()) {
      throw new OpenAIError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", { code: null });
    }
    const m = /^Bearer (.+)$/.exec(h.trim());
    const key = m ? m[1] : h;
    if (!validKeys.has(key)) {
      throw new OpenAIError(401, `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, { code: 'invalid_api_key' });
    }
    return key;
  }

  function parseJsonBody(body) {
    let j;
    try {
      j = JSON.parse(body.toString('utf8'));
    } catch {
      throw new OpenAIError(400, 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)');
    }
    if (!isObj(j)) throw new OpenAIError(400, 'Invalid type for body: expected an object.', { code: 'invalid_type' });
    return j;
  }

  function chainOf(key, prevId) {
    const chain = [];
    let id = prevId;
    while (id) {
      const s = stored.get(id);
      if (!s || s.key !== key) break;
      chain.push(s);
      id = s.response.previous_response_id;
    }
    return chain;
  }

  async function createResponse(key, body) {
    if (typeof body.model !== 'string') {
      throw new OpenAIError(400, "Missing required parameter: 'model'.", { param: 'model', code: 'missing_required_parameter' });
    }
    const tools = body.tools ?? [];
    if (!Array.isArray(tools)) throw new OpenAIError(400, "Invalid type for 'tools': expected an array.", { param: 'tools', code: 'invalid_type' });
    const labels = new Set();
    tools.forEach((t, i) => {
      if (!isObj(t) || typeof t.type !== 'string') {
        throw new OpenAIError(400, `Missing required parameter: 'tools[${i}].type'.`, { param: `tools[${i}].type`, code: 'missing_required_parameter' });
      }
      if (t.type === 'mcp') {
        for (const [k, ok] of [['require_approval', F.approval], ['connector_id', F.connector]]) {
          if (!ok && t[k] != null) throw new OpenAIError(400, `Unsupported parameter: 'tools[${i}].${k}'.`, { param: `tools[${i}].${k}`, code: 'unsupported_parameter' });
        }
        if (!F.filterObject && t.allowed_tools != null && !Array.isArray(t.allowed_tools)) {
          throw new OpenAIError(400, `Invalid type for 'tools[${i}].allowed_tools': expected an array of strings.`, { param: `tools[${i}].allowed_tools`, code: 'invalid_type' });
        }
        validateMcpTool(t, i);
        if (labels.has(t.server_label)) {
          throw new OpenAIError(400, `Duplicate MCP server_label '${t.server_label}' in tools.`, { param: `tools[${i}].server_label`, code: 'invalid_value' });
        }
        labels.add(t.server_label);
      }
    });
    let chain = [];
    if (body.previous_response_id != null) {
      chain = chainOf(key, body.previous_response_id);
      if (!chain.length) {
        throw new OpenAIError(400, `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id', code: 'previous_response_not_found' });
      }
    }
    const input = body.input;
    const items = Array.isArray(input) ? input : [];
    const approvalsIn = items.filter((x) => isObj(x) && x.type === 'mcp_approval_response');
    for (const a of approvalsIn) {
      if (typeof a.approval_request_id !== 'string' || typeof a.approve !== 'boolean') {
        throw new OpenAIError(400, "Invalid 'mcp_approval_response': 'approval_request_id' (string) and 'approve' (boolean) are required.", { param: 'input', code: 'invalid_value' });
      }
    }
    const mcpTools = tools.filter((t) => t.type === 'mcp');
    const output = [];
    const listed = new Map();
    const approvals = new Map();
    const text = userTextOfInput(input);
    let reply;

    const callTool = async (t, label, name, args, approvalRequestId) => {
      const item = {
        id: rid('mcp_'), type: 'mcp_call', approval_request_id: approvalRequestId, arguments: JSON.stringify(args),
        error: null, name, output: null, server_label: label, status: 'completed',
      };
      let session;
      try {
        session = await mcpSession(t.server_url, mcpHeadersOf(t));
        const r = await session.callTool(name, args);
        const out = textOfToolResult(r);
        if (r.isError) {
          item.status = 'failed';
          item.error = { type: 'mcp_tool_execution_error', content: r.content };
        } else item.output = out;
      } catch (e) {
        item.status = 'failed';
        item.error = e.status
          ? { type: 'http_error', code: e.status, message: http.STATUS_CODES[e.status] ?? `HTTP ${e.status}` }
          : { type: 'mcp_protocol_error', code: -32000, message: e.message };
      } finally {
        await session?.close();
      }
      output.push(item);
      return item;
    };

    if (approvalsIn.length) {
      for (const a of approvalsIn) {
        let req = null;
        for (const s of chain) {
          if (s.approvals.has(a.approval_request_id)) {
            req = s.approvals.get(a.approval_request_id);
            break;
          }
        }
        if (!req) {
          throw new OpenAIError(400, `No tool call found for MCP approval request '${a.approval_request_id}'.`, { param: 'input', code: 'invalid_value' });
        }
        const t = mcpTools.find((x) => x.server_label === req.server_label);
        if (!t) {
          throw new OpenAIError(400, `The MCP approval response for '${a.approval_request_id}' refers to server_label '${req.server_label}', which is not in 'tools'. Include the MCP tool on every request.`, { param: 'tools', code: 'invalid_value' });
        }
        if (t.server_url == null) {
          throw new OpenAIError(424, `Error retrieving tool list from MCP server: '${t.server_label}'. Http status code: 424 (Failed Dependency)`, { type: 'external_connector_error', param: 'tools', code: 'http_error' });
        }
        if (a.approve) {
          const item = await callTool(t, req.server_label, req.name, JSON.parse(req.arguments), a.approval_request_id);
          reply = item.status === 'completed'
            ? `Called ${item.name} on ${item.server_label}: ${item.output}`
            : `Calling ${item.name} on ${item.server_label} failed: ${item.error.message ?? 'tool error'}`;
        } else {
          reply = `The call to ${req.name} on ${req.server_label} was not approved${a.reason ? `: ${a.reason}` : ''}.`;
        }
      }
    } else {
      const available = [];
      for (const t of mcpTools) {
        const earlier = chain.find((s) => s.listed.has(t.server_label));
        if (earlier) {
          available.push({ label: t.server_label, def: t, tools: filterAllowed(earlier.listed.get(t.server_label), t.allowed_tools) });
          continue;
        }
        if (t.server_url == null) {
          throw new OpenAIError(424, `Error retrieving tool list from MCP server: '${t.server_label}'. Http status code: 424 (Failed Dependency)`, { type: 'external_connector_error', param: 'tools', code: 'http_error' });
        }
        let all;
        let session;
        try {
          session = await mcpSession(t.server_url, mcpHeadersOf(t));
          all = await session.listTools();
        } catch (e) {
          const st = e.status ? `${e.status} (${http.STATUS_CODES[e.status]})` : '424 (Failed Dependency)';
          throw new OpenAIError(424, `Error retrieving tool list from MCP server: '${t.server_label}'. Http status code: ${st}`, { type: 'external_connector_error', param: 'tools', code: 'http_error' });
        } finally {
          await session?.close();
        }
        const filtered = filterAllowed(all, t.allowed_tools);
        listed.set(t.server_label, filtered);
        output.push({ id: rid('mcpl_'), type: 'mcp_list_tools', server_label: t.server_label, tools: filtered.map(toolForOutput), error: null });
        available.push({ label: t.server_label, def: t, tools: filtered });
      }
      const choice = available.length ? chooseTool(available, text) : null;
      if (!choice) {
        reply = `Echo: ${text}`;
      } else if (choice.missing) {
        reply = `I cannot call ${choice.missing}: it is not among the available tools.`;
      } else {
        const def = available.find((s) => s.label === choice.label).def;
        if (F.approval && needsApproval(def.require_approval, choice.tool)) {
          const ar = { id: rid('mcpr_'), type: 'mcp_approval_request', arguments: JSON.stringify(choice.args), name: choice.tool.name, server_label: choice.label };
          approvals.set(ar.id, ar);
          output.push(ar);
        } else {
          const item = await callTool(def, choice.label, choice.tool.name, choice.args, null);
          reply = item.status === 'completed'
            ? `Called ${item.name} on ${item.server_label}: ${item.output}`
            : `Calling ${item.name} on ${item.server_label} failed: ${item.error.message ?? 'tool error'}`;
        }
      }
    }
    if (reply !== undefined) {
      output.push({
        id: rid('msg_'), type: 'message', status: 'completed', role: 'assistant',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text: reply }],
      });
    }
    const inTok = approxTokens(input) + approxTokens(tools);
    const outTok = approxTokens(output);
    const response = {
      id: rid('resp_'), object: 'response', created_at: nowSec(), status: 'completed', background: false, error: null,
      incomplete_details: null, instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null,
      model: body.model, output, parallel_tool_calls: true, previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort: null, summary: null }, store: body.store !== false, temperature: body.temperature ?? 1,
      text: { format: { type: 'text' } }, tool_choice: body.tool_choice ?? 'auto', tools: tools.map(redactTool),
      top_p: body.top_p ?? 1, truncation: 'disabled',
      usage: { input_tokens: inTok, input_tokens_details: { cached_tokens: 0 }, output_tokens: outTok, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inTok + outTok },
      user: null, metadata: body.metadata ?? {},
    };
    if (body.store !== false) stored.set(response.id, { key, response, approvals, listed });
    return response;
  }

  function chatCompletion(body) {
    if (typeof body.model !== 'string') {
      throw new OpenAIError(400, "Missing required parameter: 'model'.", { param: 'model', code: 'missing_required_parameter' });
    }
    if (!Array.isArray(body.messages) || !body.messages.length) {
      throw new OpenAIError(400, "Missing required parameter: 'messages'.", { param: 'messages', code: 'missing_required_parameter' });
    }
    const last = [...body.messages].reverse().find((m) => m?.role === 'user');
    const content = typeof last?.content === 'string' ? last.content : (last?.content ?? []).map((p) => p?.text ?? '').join(' ');
    return { text: `Echo: ${content}`, promptTokens: approxTokens(body.messages) };
  }

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const rec = record(requests, history, flavor, req, body);
    captureResponse(req, res, rec);
    const reqId = rid('req_', 16);
    // The real API's edge sets a bot-management cookie on every answer.
    const baseHeaders = { 'x-request-id': reqId, 'openai-processing-ms': '7', 'openai-version': '2020-10-01', 'set-cookie': '__cf_bm=emu-cookie; path=/; HttpOnly; Secure' };
    const fail = (e) => {
      if (!(e instanceof OpenAIError)) e = new OpenAIError(500, `The server had an error while processing your request: ${e?.message}`, { type: 'server_error' });
      sendJson(res, e.status, oaiErrorBody(e), baseHeaders);
    };
    try {
      // The flavor's root is mapped onto OpenAI's `/v1`; Azure's dated root needs api-version.
      const root = F.roots.find((r) => rec.path.startsWith(`${r}/`));
      if (root === '/openai' && !new URL(req.url, 'http://x').searchParams.get('api-version')) {
        throw new OpenAIError(404, 'Resource not found', { code: '404' });
      }
      const path = root === undefined ? rec.path : `/v1${rec.path.slice(root.length)}`;
      if (root === undefined && flavor !== 'openai') throw new OpenAIError(404, `Invalid URL (${req.method} ${rec.path})`);
      const route =
        path === '/v1/responses' ? 'responses'
          : path === '/v1/responses/input_tokens' ? 'input_tokens'
          : /^\/v1\/responses\/[^/]+$/.test(path) ? 'response'
            : path === '/v1/chat/completions' ? 'chat'
              : path === '/v1/models' ? 'models'
                : /^\/v1\/models\/[^/]+$/.test(path) ? 'model'
                  : null;
      if (!route) throw new OpenAIError(404, `Invalid URL (${req.method} ${path})`);
      const key = authKey(req);
      const allowed = { responses: ['POST'], input_tokens: ['POST'], response: ['GET', 'DELETE'], chat: ['POST'], models: ['GET'], model: ['GET'] }[route];
      if (!allowed.includes(req.method)) throw new OpenAIError(405, `Invalid method for URL (${req.method} ${path})`);
      // Fault modes (tests/emulators/faults.mjs): `x-emu-fault` or a `fault-…` model.
      if (await faults.handle({ req, res, rec, path, baseHeaders, requestId: reqId })) return;

      if (route === 'models') {
        return sendJson(res, 200, { object: 'list', data: OPENAI_MODELS.map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'system' })) }, baseHeaders);
      }
      if (route === 'model') {
        const id = decodeURIComponent(path.split('/').pop());
        if (!OPENAI_MODELS.includes(id)) {
          throw new OpenAIError(404, `The model '${id}' does not exist or you do not have access to it.`, { code: 'model_not_found' });
        }
        return sendJson(res, 200, { id, object: 'model', created: 1700000000, owned_by: 'system' }, baseHeaders);
      }
      if (route === 'response') {
        const id = decodeURIComponent(path.split('/').pop());
        const s = stored.get(id);
        if (!s || s.key !== key) throw new OpenAIError(404, `Response with id '${id}' not found.`, { param: 'response_id', code: null });
        if (req.method === 'DELETE') {
          stored.delete(id);
          return sendJson(res, 200, { id, object: 'response.deleted', deleted: true }, baseHeaders);
        }
        if (new URL(req.url, 'http://x').searchParams.get('stream') === 'true') {
          return streamSse(res, responseEvents(s.response), 0, baseHeaders);
        }
        return sendJson(res, 200, s.response, baseHeaders);
      }
      const json = parseJsonBody(body);
      if (route === 'input_tokens') {
        // POST /v1/responses/input_tokens: the same body as a response, counted, not run.
        if (typeof json.model !== 'string') throw new OpenAIError(400, "Missing required parameter: 'model'.", { param: 'model', code: 'missing_required_parameter' });
        return sendJson(res, 200, { object: 'response.input_tokens', input_tokens: approxTokens(json.input ?? '') + approxTokens(json.tools ?? []) }, baseHeaders);
      }
      if (route === 'chat') {
        const { text, promptTokens } = chatCompletion(json);
        const id = rid('chatcmpl-', 12);
        const created = nowSec();
        const usage = { prompt_tokens: promptTokens, completion_tokens: approxTokens(text), total_tokens: promptTokens + approxTokens(text) };
        if (json.stream !== true || json.stream_options?.include_usage) reportUsage(rec, usage.prompt_tokens, usage.completion_tokens);
        else reportUsage(rec, 0, 0);
        if (json.stream === true) {
          const chunk = (delta, finish, extra = {}) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: json.model, system_fingerprint: 'fp_emu', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`;
          const frames = [chunk({ role: 'assistant', content: '', refusal: null }, null)];
          for (const d of splitText(text)) frames.push(chunk({ content: d }, null));
          frames.push(chunk({}, 'stop'));
          if (json.stream_options?.include_usage) {
            frames.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: json.model, choices: [], usage })}\n\n`);
          }
          frames.push('data: [DONE]\n\n');
          return streamSse(res, frames, delayMs, baseHeaders);
        }
        return sendJson(res, 200, {
          id, object: 'chat.completion', created, model: json.model, system_fingerprint: 'fp_emu',
          choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
          usage,
        }, baseHeaders);
      }
      // POST /v1/responses
      const response = await createResponse(key, json);
      reportUsage(rec, response.usage.input_tokens, response.usage.output_tokens, response.output);
      if (json.stream === true) return streamSse(res, responseEvents(response, deltaCharsOf(req)), delayMs, baseHeaders);
      return sendJson(res, 200, response, baseHeaders);
    } catch (e) {
      fail(e);
    }
  });
  // Longer than any pause in a test: a server closing an idle keep-alive connection just as
  // workerd reuses it makes the gateway's fetch fail (a spurious 502). close() ends them anyway.
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    history,
    keys: validKeys,
    stored,
    /** Fault-mode answers and the `hold` gate (tests/emulators/faults.mjs). */
    faults,
    /** Requests to one path (exact match on the path, query excluded). */
    requestsTo(path) {
      return requests.filter((r) => r.path === path);
    },
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------
// Anthropic

export const MCP_BETA_OLD = 'mcp-client-2025-04-04';
export const MCP_BETA_NEW = 'mcp-client-2025-11-20';
const ANTHROPIC_MODELS = ['claude-sonnet-4-6', 'claude-opus-4-6', 'claude-haiku-4-5'];

class AnthropicError extends Error {
  constructor(status, type, message) {
    super(message);
    Object.assign(this, { status, type });
  }
}

function antErrorBody(e, requestId) {
  return { type: 'error', error: { type: e.type, message: e.message }, request_id: requestId };
}

function userTextOfMessages(messages) {
  const last = [...messages].reverse().find((m) => m?.role === 'user');
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) return last.content.filter((b) => b?.type === 'text').map((b) => b.text).join(' ');
  return '';
}

/**
 * Starts the Anthropic emulator.
 * @param {{keys?: Iterable<string>, delayMs?: number, allowInsecureMcp?: boolean}} opts
 */
export async function startAnthropicEmulator({ keys = [], delayMs = 100, allowInsecureMcp = true } = {}) {
  const validKeys = new Set(keys);
  const faults = createFaults('anthropic');
  const requests = [];
  const history = []; // every request ever received; reset() leaves it alone

  function checkAuthAndVersion(req) {
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !key) throw new AnthropicError(401, 'authentication_error', 'x-api-key header is required');
    if (!validKeys.has(key)) throw new AnthropicError(401, 'authentication_error', 'invalid x-api-key');
    const v = req.headers['anthropic-version'];
    if (v === undefined) throw new AnthropicError(400, 'invalid_request_error', 'anthropic-version: header is required');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw new AnthropicError(400, 'invalid_request_error', `anthropic-version: "${v}" is not a valid version`);
    return key;
  }

  function betasOf(req) {
    const h = req.headers['anthropic-beta'];
    if (typeof h !== 'string') return [];
    return h.split(',').map((s) => s.trim()).filter(Boolean);
  }

  function parseJsonBody(body) {
    let j;
    try {
      j = JSON.parse(body.toString('utf8'));
    } catch {
      throw new AnthropicError(400, 'invalid_request_error', 'There was an error parsing the body of your request. Please make sure it is valid JSON.');
    }
    if (!isObj(j)) throw new AnthropicError(400, 'invalid_request_error', 'Input should be a valid dictionary');
    return j;
  }

  /** Validates mcp_servers (and mcp_toolset tools) and returns server specs with their tool filters. */
  function mcpSpecs(req, body) {
    if (body.mcp_servers == null) {
      const ts = (Array.isArray(body.tools) ? body.tools : []).findIndex((t) => t?.type === 'mcp_toolset');
      if (ts >= 0) throw new AnthropicError(400, 'invalid_request_error', `tools.${ts}: mcp_toolset requires a matching entry in mcp_servers`);
      return [];
    }
    const betas = betasOf(req);
    const hasOld = betas.includes(MCP_BETA_OLD);
    const hasNew = betas.includes(MCP_BETA_NEW);
    if (!hasOld && !hasNew) throw new AnthropicError(400, 'invalid_request_error', 'mcp_servers: Extra inputs are not permitted');
    if (hasOld && hasNew) {
      throw new AnthropicError(400, 'invalid_request_error', `anthropic-beta: '${MCP_BETA_OLD}' and '${MCP_BETA_NEW}' cannot be combined`);
    }
    if (!Array.isArray(body.mcp_servers)) throw new AnthropicError(400, 'invalid_request_error', 'mcp_servers: Input should be a valid list');
    const names = new Set();
    const specs = body.mcp_servers.map((s, i) => {
      const p = `mcp_servers.${i}`;
      if (!isObj(s)) throw new AnthropicError(400, 'invalid_request_error', `${p}: Input should be a valid dictionary`);
      if (s.type !== 'url') throw new AnthropicError(400, 'invalid_request_error', `${p}.type: Input should be 'url'`);
      if (typeof s.name !== 'string' || !s.name) throw new AnthropicError(400, 'invalid_request_error', `${p}.name: Field required`);
      if (names.has(s.name)) throw new AnthropicError(400, 'invalid_request_error', `${p}.name: MCP server names must be unique; '${s.name}' is used twice`);
      names.add(s.name);
      if (typeof s.url !== 'string') throw new AnthropicError(400, 'invalid_request_error', `${p}.url: Field required`);
      let u;
      try {
        u = new URL(s.url);
      } catch {
        throw new AnthropicError(400, 'invalid_request_error', `${p}.url: Input should be a valid URL`);
      }
      const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost';
      if (u.protocol !== 'https:' && !(allowInsecureMcp && u.protocol === 'http:' && loopback)) {
        throw new AnthropicError(400, 'invalid_request_error', `${p}.url: MCP server URL must start with https://`);
      }
      if (s.authorization_token != null && typeof s.authorization_token !== 'string') {
        throw new AnthropicError(400, 'invalid_request_error', `${p}.authorization_token: Input should be a valid string`);
      }
      for (const k of Object.keys(s)) {
        const ok = ['type', 'url', 'name', 'authorization_token'].includes(k) || (k === 'tool_configuration' && hasOld);
        if (!ok && !(k === 'tool_configuration' && s[k] == null)) {
          throw new AnthropicError(400, 'invalid_request_error', `${p}.${k}: Extra inputs are not permitted`);
        }
      }
      return { name: s.name, url: s.url, token: s.authorization_token ?? null, enabled: () => true, tc: s.tool_configuration };
    });
    const tools = Array.isArray(body.tools) ? body.tools : [];
    if (hasOld) {
      specs.forEach((sp, i) => {
        const tc = sp.tc;
        if (tc == null) return;
        if (!isObj(tc)) throw new AnthropicError(400, 'invalid_request_error', `mcp_servers.${i}.tool_configuration: Input should be a valid dictionary`);
        if (tc.enabled != null && typeof tc.enabled !== 'boolean') throw new AnthropicError(400, 'invalid_request_error', `mcp_servers.${i}.tool_configuration.enabled: Input should be a valid boolean`);
        if (tc.allowed_tools != null && (!Array.isArray(tc.allowed_tools) || tc.allowed_tools.some((n) => typeof n !== 'string'))) {
          throw new AnthropicError(400, 'invalid_request_error', `mcp_servers.${i}.tool_configuration.allowed_tools: Input should be a valid list of strings`);
        }
        sp.enabled = (name) => tc.enabled !== false && (tc.allowed_tools == null || tc.allowed_tools.includes(name));
      });
      const ts = tools.findIndex((t) => t?.type === 'mcp_toolset');
      if (ts >= 0) throw new AnthropicError(400, 'invalid_request_error', `tools.${ts}.type: 'mcp_toolset' requires the '${MCP_BETA_NEW}' beta`);
    } else {
      const refs = new Map();
      tools.forEach((t, i) => {
        if (t?.type !== 'mcp_toolset') return;
        const sp = specs.find((s) => s.name === t.mcp_server_name);
        if (!sp) throw new AnthropicError(400, 'invalid_request_error', `tools.${i}.mcp_server_name: no MCP server named '${t.mcp_server_name}' in mcp_servers`);
        if (refs.has(sp.name)) throw new AnthropicError(400, 'invalid_request_error', `tools.${i}: MCP server '${sp.name}' is referenced by more than one mcp_toolset`);
        const dc = t.default_config ?? {};
        const configs = t.configs ?? {};
        if (!isObj(dc) || !isObj(configs)) throw new AnthropicError(400, 'invalid_request_error', `tools.${i}: invalid mcp_toolset configuration`);
        for (const [n, c] of Object.entries(configs)) {
          if (!isObj(c)) throw new AnthropicError(400, 'invalid_request_error', `tools.${i}.configs.${n}: Input should be a valid dictionary`);
        }
        refs.set(sp.name, i);
        sp.enabled = (name) => {
          const c = configs[name];
          if (c && typeof c.enabled === 'boolean') return c.enabled;
          return dc.enabled !== false;
        };
      });
      for (const sp of specs) {
        if (!refs.has(sp.name)) {
          throw new AnthropicError(400, 'invalid_request_error', `mcp_servers: MCP server '${sp.name}' must be referenced by exactly one mcp_toolset in tools`);
        }
      }
    }
    return specs;
  }

  async function listAll(specs) {
    const available = [];
    for (const sp of specs) {
      let session;
      try {
        session = await mcpSession(sp.url, sp.token ? { Authorization: `Bearer ${sp.token}` } : {});
        const all = await session.listTools();
        available.push({ label: sp.name, spec: sp, tools: all.filter((t) => sp.enabled(t.name)) });
      } catch (e) {
        if (e.status === 401 || e.status === 403) {
          throw new AnthropicError(400, 'invalid_request_error', `Invalid authorization token for MCP server '${sp.name}'. Please check your token and try again.`);
        }
        throw new AnthropicError(400, 'invalid_request_error', `Failed to connect to MCP server '${sp.name}'. Please check the URL and try again.`);
      } finally {
        await session?.close();
      }
    }
    return available;
  }

  function validateMessagesBody(body, needMaxTokens) {
    if (typeof body.model !== 'string') throw new AnthropicError(400, 'invalid_request_error', 'model: Field required');
    if (needMaxTokens && typeof body.max_tokens !== 'number') throw new AnthropicError(400, 'invalid_request_error', 'max_tokens: Field required');
    if (!Array.isArray(body.messages)) throw new AnthropicError(400, 'invalid_request_error', 'messages: Field required');
    if (body.tools != null && !Array.isArray(body.tools)) throw new AnthropicError(400, 'invalid_request_error', 'tools: Input should be a valid list');
  }

  async function createMessage(req, body) {
    validateMessagesBody(body, true);
    const specs = mcpSpecs(req, body);
    const available = await listAll(specs);
    const text = userTextOfMessages(body.messages);
    const content = [];
    let reply;
    const choice = available.length ? chooseTool(available, text) : null;
    if (!choice) reply = `Echo: ${text}`;
    else if (choice.missing) reply = `I cannot call ${choice.missing}: it is not among the available tools.`;
    else {
      const sp = available.find((s) => s.label === choice.label).spec;
      const use = { type: 'mcp_tool_use', id: rid('mcptoolu_', 12), name: choice.tool.name, server_name: sp.name, input: choice.args };
      content.push({ type: 'text', text: `I'll call ${choice.tool.name} on ${sp.name}.` }, use);
      let session;
      const result = { type: 'mcp_tool_result', tool_use_id: use.id, is_error: false, content: [] };
      try {
        session = await mcpSession(sp.url, sp.token ? { Authorization: `Bearer ${sp.token}` } : {});
        const r = await session.callTool(choice.tool.name, choice.args);
        result.is_error = !!r.isError;
        result.content = [{ type: 'text', text: textOfToolResult(r) }];
      } catch (e) {
        result.is_error = true;
        result.content = [{ type: 'text', text: `MCP server error: ${e.status ? `HTTP ${e.status}` : e.message}` }];
      } finally {
        await session?.close();
      }
      content.push(result);
      reply = `Result of ${use.name} on ${sp.name}: ${result.content[0].text}`;
    }
    content.push({ type: 'text', text: reply });
    return {
      id: rid('msg_01', 12), type: 'message', role: 'assistant', model: body.model, content,
      stop_reason: 'end_turn', stop_sequence: null,
      usage: {
        input_tokens: approxTokens(body.messages) + approxTokens(body.system ?? ''), cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0, output_tokens: approxTokens(content), service_tier: 'standard',
      },
    };
  }

  function messageEvents(msg, deltaChars = 0) {
    const frames = [];
    const ev = (type, data) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    ev('message_start', { message: { ...msg, content: [], stop_reason: null, stop_sequence: null, usage: { ...msg.usage, output_tokens: 1 } } });
    ev('ping', {});
    msg.content.forEach((block, index) => {
      if (block.type === 'text') {
        ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
        for (const t of splitText(block.text, 5, deltaChars)) ev('content_block_delta', { index, delta: { type: 'text_delta', text: t } });
      } else if (block.type === 'mcp_tool_use') {
        ev('content_block_start', { index, content_block: { ...block, input: {} } });
        ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } });
      } else {
        ev('content_block_start', { index, content_block: block });
      }
      ev('content_block_stop', { index });
    });
    ev('message_delta', { delta: { stop_reason: msg.stop_reason, stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } });
    ev('message_stop', {});
    return frames;
  }

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const rec = record(requests, history, 'anthropic', req, body);
    captureResponse(req, res, rec);
    const requestId = rid('req_011', 12);
    const baseHeaders = { 'request-id': requestId, 'anthropic-organization-id': '00000000-0000-4000-8000-000000000000' };
    try {
      const path = rec.path;
      const route = path === '/v1/messages' ? 'messages'
        : path === '/v1/messages/batches' ? 'batches'
        : path === '/v1/messages/count_tokens' ? 'count'
          : path === '/v1/models' ? 'models'
            : null;
      if (!route) throw new AnthropicError(404, 'not_found_error', `Not found: ${req.method} ${path}`);
      checkAuthAndVersion(req);
      const allowed = { messages: 'POST', batches: 'POST', count: 'POST', models: 'GET' }[route];
      if (req.method !== allowed) throw new AnthropicError(405, 'invalid_request_error', `Method ${req.method} not allowed for ${path}`);
      // Fault modes (tests/emulators/faults.mjs): `x-emu-fault` or a `fault-…` model.
      if (await faults.handle({ req, res, rec, path, baseHeaders, requestId })) return;
      if (route === 'models') {
        const data = ANTHROPIC_MODELS.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
        return sendJson(res, 200, { data, has_more: false, first_id: data[0].id, last_id: data.at(-1).id }, baseHeaders);
      }
      const json = parseJsonBody(body);
      if (route === 'batches') {
        // POST /v1/messages/batches: each request's params is a Messages body; processed later.
        if (!Array.isArray(json.requests) || json.requests.length === 0) throw new AnthropicError(400, 'invalid_request_error', 'requests: Field required');
        for (const [i, r] of json.requests.entries()) {
          if (typeof r?.custom_id !== 'string') throw new AnthropicError(400, 'invalid_request_error', `requests.${i}.custom_id: Field required`);
          validateMessagesBody(r.params ?? {}, true);
        }
        const created = new Date();
        return sendJson(res, 200, {
          id: rid('msgbatch_', 24), type: 'message_batch', processing_status: 'in_progress',
          request_counts: { processing: json.requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
          ended_at: null, created_at: created.toISOString(), expires_at: new Date(created.getTime() + 86400000).toISOString(),
          archived_at: null, cancel_initiated_at: null, results_url: null,
        }, baseHeaders);
      }
      if (route === 'count') {
        validateMessagesBody(json, false);
        const specs = mcpSpecs(req, json);
        const available = await listAll(specs);
        const n = approxTokens(json.messages) + approxTokens(json.system ?? '') + approxTokens(json.tools ?? [])
          + available.reduce((acc, s) => acc + approxTokens(s.tools.map(toolForOutput)), 0);
        return sendJson(res, 200, { input_tokens: n }, baseHeaders);
      }
      const msg = await createMessage(req, json);
      reportUsage(rec, msg.usage.input_tokens, msg.usage.output_tokens, msg.content, 'server_name', 'mcp_tool_use');
      if (json.stream === true) return streamSse(res, messageEvents(msg, deltaCharsOf(req)), delayMs, baseHeaders);
      return sendJson(res, 200, msg, baseHeaders);
    } catch (e) {
      if (!(e instanceof AnthropicError)) e = new AnthropicError(500, 'api_error', `Internal server error: ${e?.message}`);
      sendJson(res, e.status, antErrorBody(e, requestId), baseHeaders);
    }
  });
  // Longer than any pause in a test: a server closing an idle keep-alive connection just as
  // workerd reuses it makes the gateway's fetch fail (a spurious 502). close() ends them anyway.
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    history,
    keys: validKeys,
    /** Fault-mode answers and the `hold` gate (tests/emulators/faults.mjs). */
    faults,
    requestsTo(path) {
      return requests.filter((r) => r.path === path);
    },
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------
// Gemini (Interactions API)

class GoogleError extends Error {
  constructor(code, status, message) {
    super(message);
    Object.assign(this, { code, status });
  }
}

const googleErrorBody = (e) => ({ error: { code: e.code, message: e.message, status: e.status } });

/** The last user text of an Interactions `input` (a string, content list or turn list). */
function userTextOfInteraction(input) {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  let text = '';
  for (const item of input) {
    if (!isObj(item)) continue;
    if (item.type === 'text' && typeof item.text === 'string') text = item.text;
    if (item.role === 'user' || item.type === 'user_input') {
      const c = item.content;
      if (typeof c === 'string') text = c;
      else if (Array.isArray(c)) text = c.filter((p) => p?.type === 'text').map((p) => p.text).join(' ');
    }
  }
  return text;
}

/**
 * Starts the Gemini emulator: `POST /v1beta/interactions` (and `/v1/...`, the
 * @google/genai 3.x default) with `mcp_server` tools it really connects to,
 * key in `x-goog-api-key` (or `?key=`), Google's error shape, and the steps
 * SSE sequence (interaction.created, interaction.status_update, step.start /
 * step.delta / step.stop per step, interaction.completed, `event: done`).
 * @param {{keys?: Iterable<string>, delayMs?: number}} opts
 */
export async function startGeminiEmulator({ keys = [], delayMs = 100 } = {}) {
  const validKeys = new Set(keys);
  const requests = [];
  const history = [];

  function checkKey(req) {
    const key = req.headers['x-goog-api-key'] ?? new URL(req.url, 'http://x').searchParams.get('key');
    if (typeof key !== 'string' || !key) {
      throw new GoogleError(403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
    }
    if (!validKeys.has(key)) throw new GoogleError(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.');
  }

  const invalid = (message) => new GoogleError(400, 'INVALID_ARGUMENT', message);

  /** Validates `tools[type=mcp_server]` entries; returns their specs. */
  function mcpSpecs(tools) {
    if (tools == null) return [];
    if (!Array.isArray(tools)) throw invalid("Invalid value at 'tools': expected a list.");
    const names = new Set();
    const specs = [];
    tools.forEach((t, i) => {
      if (!isObj(t) || typeof t.type !== 'string') throw invalid(`Invalid value at 'tools[${i}].type'.`);
      if (t.type !== 'mcp_server') return;
      for (const k of Object.keys(t)) {
        if (!['type', 'name', 'url', 'headers', 'allowed_tools'].includes(k)) throw invalid(`Unknown name "${k}" at 'tools[${i}]': Cannot find field.`);
      }
      if (typeof t.name !== 'string' || !t.name) throw invalid(`tools[${i}].name is required.`);
      if (names.has(t.name)) throw invalid(`Duplicate MCP server name '${t.name}'.`);
      names.add(t.name);
      let u;
      try {
        u = new URL(t.url);
      } catch {
        throw invalid(`Invalid value at 'tools[${i}].url': a valid URL is required.`);
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`Invalid value at 'tools[${i}].url'.`);
      if (t.headers != null && (!isObj(t.headers) || Object.values(t.headers).some((v) => typeof v !== 'string'))) {
        throw invalid(`Invalid value at 'tools[${i}].headers': expected a map of strings.`);
      }
      const at = t.allowed_tools;
      if (at != null && (!Array.isArray(at) || at.some((e) => !isObj(e) || (e.tools != null && (!Array.isArray(e.tools) || e.tools.some((n) => typeof n !== 'string')))))) {
        throw invalid(`Invalid value at 'tools[${i}].allowed_tools'.`);
      }
      // An entry without `tools` allows every tool; an absent list allows every tool.
      const allowed = at == null || at.some((e) => e.tools == null) ? null : new Set(at.flatMap((e) => e.tools));
      specs.push({ name: t.name, url: t.url, headers: t.headers ?? {}, allowed });
    });
    return specs;
  }

  async function createInteraction(body) {
    if (typeof body.model !== 'string' && typeof body.agent !== 'string') throw invalid('model is required.');
    if (body.input == null) throw invalid('input is required.');
    const specs = mcpSpecs(body.tools);
    const available = [];
    for (const sp of specs) {
      let session;
      try {
        session = await mcpSession(sp.url, sp.headers);
        const all = await session.listTools();
        available.push({ label: sp.name, spec: sp, tools: all.filter((t) => sp.allowed === null || sp.allowed.has(t.name)) });
      } catch (e) {
        throw invalid(`Failed to connect to MCP server '${sp.name}'${e.status ? ` (HTTP ${e.status})` : ''}.`);
      } finally {
        await session?.close();
      }
    }
    const text = userTextOfInteraction(body.input);
    const steps = [];
    let reply;
    const choice = available.length ? chooseTool(available, text) : null;
    if (!choice) reply = `Echo: ${text}`;
    else if (choice.missing) reply = `I cannot call ${choice.missing}: it is not among the available tools.`;
    else {
      const sp = available.find((s) => s.label === choice.label).spec;
      const call = { type: 'mcp_server_tool_call', id: rid('call_', 8), name: choice.tool.name, server_name: sp.name, arguments: choice.args };
      steps.push(call);
      let session;
      let out;
      try {
        session = await mcpSession(sp.url, sp.headers);
        const r = await session.callTool(choice.tool.name, choice.args);
        out = textOfToolResult(r);
      } catch (e) {
        out = `MCP server error: ${e.status ? `HTTP ${e.status}` : e.message}`;
      } finally {
        await session?.close();
      }
      steps.push({ type: 'mcp_server_tool_result', call_id: call.id, name: call.name, server_name: sp.name, result: [{ type: 'text', text: out }] });
      reply = `Result of ${call.name} on ${sp.name}: ${out}`;
    }
    steps.push({ type: 'model_output', content: [{ type: 'text', text: reply }] });
    const inTok = approxTokens(body.input) + approxTokens(body.tools ?? []);
    const outTok = approxTokens(steps);
    const now = new Date().toISOString();
    return {
      id: rid('v1_', 12), object: 'interaction', status: 'completed', model: body.model, created: now, updated: now,
      steps, usage: { total_input_tokens: inTok, total_output_tokens: outTok, total_tokens: inTok + outTok },
    };
  }

  function interactionEvents(it) {
    const frames = [];
    const ev = (type, data) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ ...data, event_type: type })}\n\n`);
    const head = { id: it.id, status: 'in_progress', object: 'interaction', model: it.model };
    ev('interaction.created', { interaction: head });
    ev('interaction.status_update', { interaction_id: it.id, status: 'in_progress' });
    it.steps.forEach((step, index) => {
      if (step.type === 'model_output') {
        ev('step.start', { index, step: { type: 'model_output' } });
        for (const t of splitText(step.content[0].text)) ev('step.delta', { index, delta: { type: 'text', text: t } });
      } else {
        ev('step.start', { index, step });
      }
      ev('step.stop', { index });
    });
    ev('interaction.completed', { interaction: { ...head, status: 'completed', usage: it.usage } });
    frames.push('event: done\ndata: [DONE]\n\n');
    return frames;
  }

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const rec = record(requests, history, 'gemini', req, body);
    captureResponse(req, res, rec);
    const baseHeaders = { 'x-goog-request-id': rid('', 8) };
    try {
      const m = /^\/(v1beta|v1)\/(interactions|models)$/.exec(rec.path);
      if (!m) throw new GoogleError(404, 'NOT_FOUND', `Method not found: ${req.method} ${rec.path}`);
      checkKey(req);
      const want = m[2] === 'interactions' ? 'POST' : 'GET';
      if (req.method !== want) throw new GoogleError(404, 'NOT_FOUND', `Method not found: ${req.method} ${rec.path}`);
      if (m[2] === 'models') return sendJson(res, 200, { models: [{ name: 'models/gemini-3-flash-preview' }] }, baseHeaders);
      let json;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw invalid('Invalid JSON payload received.');
      }
      if (!isObj(json)) throw invalid('Invalid JSON payload received.');
      const it = await createInteraction(json);
      reportUsage(rec, it.usage.total_input_tokens, it.usage.total_output_tokens, it.steps, 'server_name', 'mcp_server_tool_call');
      if (json.stream === true) return streamSse(res, interactionEvents(it), delayMs, baseHeaders);
      return sendJson(res, 200, it, baseHeaders);
    } catch (e) {
      if (!(e instanceof GoogleError)) e = new GoogleError(500, 'INTERNAL', `Internal error: ${e?.message}`);
      sendJson(res, e.code, googleErrorBody(e), baseHeaders);
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    history,
    keys: validKeys,
    requestsTo(path) {
      return requests.filter((r) => r.path === path);
    },
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Starts both emulators. */
export async function startProviders({ openaiKeys = [], anthropicKeys = [], delayMs = 100 } = {}) {
  const openai = await startOpenAIEmulator({ keys: openaiKeys, delayMs });
  const anthropic = await startAnthropicEmulator({ keys: anthropicKeys, delayMs });
  const xai = await startOpenAIEmulator({ delayMs, flavor: 'xai' });
  const groq = await startOpenAIEmulator({ delayMs, flavor: 'groq' });
  const azure = await startOpenAIEmulator({ delayMs, flavor: 'azure' });
  const gemini = await startGeminiEmulator({ delayMs });
  const each = [openai, anthropic, xai, groq, azure, gemini];
  return {
    openai,
    anthropic,
    xai,
    groq,
    azure,
    gemini,
    /** Every request any emulator received since the last reset(). */
    all: () => each.flatMap((e) => e.requests),
    /** Every request any emulator ever received. */
    history: () => each.flatMap((e) => e.history),
    reset() {
      for (const e of each) e.reset();
    },
    async close() {
      await Promise.all(each.map((e) => e.close()));
    },
  };
}
