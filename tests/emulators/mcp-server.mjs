// Real MCP servers for the end-to-end tests, built on the official
// @modelcontextprotocol/sdk (McpServer + StreamableHTTPServerTransport) and
// served over node:http on 127.0.0.1 with a random port.
//
// Each server checks its credential the way a real protected MCP server does:
// (`oauth` servers accept only live access tokens issued for them by the OAuth
// emulator, publish RFC 9728 protected-resource metadata and point to it from
// their 401 challenge)
// a request without the right credential gets 401 (with `WWW-Authenticate:
// Bearer ...` for bearer servers) before any MCP processing, and the rejection
// is recorded. Accepted JSON-RPC messages are recorded too, with the raw
// credential that came with them, so tests can assert which tenant's secret
// reached which server. Tool results never contain a credential, only a
// fingerprint (first 8 hex digits of its SHA-256) -- except the opt-in
// `echo_auth` tool (`startMcpServer({..., echoAuth: true})`), a deliberately
// misbehaving tool that echoes the raw `Authorization` and `X-Api-Key` values
// it received, plain and as JSON, so the scrubbing tests have a leak to catch.
//
// `whoami` of an `oauth` server also names the account (`subject`) the token belongs to.
//
// `transport` picks the server's shape (default 'json'):
//   'json'            stateless, every answer one application/json body (POST only)
//   'sse'             stateless, answers as text/event-stream
//   'sessions'        Mcp-Session-Id sessions, SSE answers, a GET stream, DELETE ends a session
//   'stateless-2026'  the stateless 2026-07-28 revision (no initialize, no sessions,
//                     MCP-Protocol-Version/Mcp-Method/Mcp-Name checked against the body),
//                     hand-written because the SDK does not speak it yet
// Every transport but 'json' adds two tools: `ticks` (sends `count` log
// notifications `gap_ms` apart, then answers) and `notify` (sessions: sends
// notifications/tools/list_changed on the GET stream).

import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/** First 8 hex digits of the SHA-256 of a credential; safe to show. */
export function fingerprint(secret) {
  if (secret == null) return 'none';
  return createHash('sha256').update(String(secret)).digest('hex').slice(0, 8);
}

function jsonRpcMethods(body) {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.filter((m) => m && typeof m === 'object').map((m) => ({
    method: m.method ?? null,
    id: m.id ?? null,
    tool: m.method === 'tools/call' ? m.params?.name ?? null : null,
    arguments: m.method === 'tools/call' ? m.params?.arguments ?? {} : undefined,
  }));
}

/** Reads the credential a request presented, per the server's auth type. */
function presentedCredential(req, auth) {
  if (auth.type === 'bearer' || auth.type === 'oauth') {
    const h = req.headers.authorization;
    if (typeof h !== 'string') return null;
    const m = /^Bearer\s+(.+)$/i.exec(h.trim());
    return m ? m[1].trim() : null;
  }
  if (auth.type === 'headers') {
    const out = {};
    for (const name of Object.keys(auth.headers)) {
      const v = req.headers[name.toLowerCase()];
      if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
    }
    return out;
  }
  return null;
}

function credentialOk(cred, auth, resource) {
  if (auth.type === 'none') return true;
  if (auth.type === 'oauth') return auth.as.checkAccessToken(cred, resource);
  if (auth.type === 'bearer') return cred !== null && (auth.tokens ?? [auth.token]).includes(cred);
  if (auth.type === 'headers') {
    return Object.entries(auth.headers).every(([k, v]) => cred?.[k] === v);
  }
  return false;
}

function credentialFingerprint(cred, auth) {
  if (auth.type === 'none') return 'none';
  if (auth.type === 'bearer' || auth.type === 'oauth') return fingerprint(cred);
  return fingerprint(Object.keys(auth.headers).map((k) => `${k}:${cred?.[k] ?? ''}`).join('\n'));
}

/**
 * Starts one MCP server.
 * @param {{name: string, auth?: {type:'bearer', token?:string, tokens?:string[]}|{type:'headers', headers:Record<string,string>}|{type:'none'}|{type:'oauth', as: object, scope?: string}, path?: string, echoAuth?: boolean}} opts
 * @returns {Promise<{name:string, url:string, calls:object[], rejections:object[], toolCalls:(tool?:string)=>object[], reset:()=>void, close:()=>Promise<void>}>}
 */
export async function startMcpServer({ name, auth = { type: 'none' }, path = '/mcp', echoAuth = false, transport: kind = 'json' }) {
  const calls = [];
  const rejections = [];
  const history = []; // every accepted message and rejection; reset() leaves it alone
  const requests = []; // every HTTP request that passed the credential check: {method, headers, time}
  const sessions = new Map(); // 'sessions': session id -> {transport, server}

  function buildServer(ctx) {
    const server = new McpServer({ name: `emu-${name}`, version: '1.0.0' }, kind === 'json' ? {} : { capabilities: { logging: {} } });
    server.registerTool('whoami', {
      title: 'Who am I',
      description: 'Tells which MCP server answered and a fingerprint of the credential used.',
      inputSchema: {},
      annotations: { readOnlyHint: true },
    }, async () => ({
      content: [{ type: 'text', text: JSON.stringify({ server: name, credential_fingerprint: ctx.fingerprint, ...(ctx.subject ? { subject: ctx.subject } : {}) }) }],
    }));
    server.registerTool('search', {
      description: 'Searches the records and echoes the query.',
      inputSchema: { query: z.string() },
      annotations: { readOnlyHint: true },
    }, async ({ query }) => ({
      content: [{ type: 'text', text: JSON.stringify({ server: name, query, results: [`${query}-1`, `${query}-2`] }) }],
    }));
    server.registerTool('lookup', {
      description: 'Looks up one record by id.',
      inputSchema: { id: z.string() },
      annotations: { readOnlyHint: true },
    }, async ({ id }) => ({
      content: [{ type: 'text', text: JSON.stringify({ server: name, id, found: true }) }],
    }));
    server.registerTool('delete_everything', {
      description: 'Deletes every record. Dangerous; meant to be excluded by allowed_tools.',
      inputSchema: { confirm: z.boolean().optional() },
      annotations: { destructiveHint: true, readOnlyHint: false },
    }, async () => {
      ctx.deleted = true;
      return { content: [{ type: 'text', text: JSON.stringify({ server: name, deleted: true }) }] };
    });
    server.registerTool('fail', {
      description: 'Always fails with a tool execution error.',
      inputSchema: {},
    }, async () => ({ isError: true, content: [{ type: 'text', text: 'tool failed on purpose' }] }));
    if (echoAuth) {
      server.registerTool('echo_auth', {
        description: 'Misbehaving on purpose: echoes the credentials it received.',
        inputSchema: {},
        annotations: { readOnlyHint: true },
      }, async () => {
        const authorization = ctx.headers.authorization ?? null;
        const apiKey = ctx.headers['x-api-key'] ?? null;
        const text = `authorization: ${authorization}\nx-api-key: ${apiKey}\n`
          + JSON.stringify({ server: name, authorization, x_api_key: apiKey });
        return { content: [{ type: 'text', text }] };
      });
    }
    if (kind !== 'json') {
      server.registerTool('ticks', {
        description: 'Sends `count` log notifications `gap_ms` apart, then answers.',
        inputSchema: { count: z.number().optional(), gap_ms: z.number().optional() },
      }, async ({ count = 3, gap_ms = 300 }, extra) => {
        for (let i = 1; i <= count; i++) {
          await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `tick ${i}` } });
          await new Promise((r) => setTimeout(r, gap_ms));
        }
        return { content: [{ type: 'text', text: JSON.stringify({ server: name, ticks: count }) }] };
      });
      server.registerTool('notify', {
        description: 'Sends notifications/tools/list_changed on the standalone stream.',
        inputSchema: {},
      }, async () => {
        server.sendToolListChanged();
        return { content: [{ type: 'text', text: 'notified' }] };
      });
    }
    return server;
  }

  /** The stateless 2026-07-28 revision, by hand: JSON for lists, SSE for calls. */
  async function handle2026(req, res, body, ctx) {
    const send = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (req.method !== 'POST') return send(405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
    const id = body?.id ?? null;
    const version = req.headers['mcp-protocol-version'];
    const metaVersion = body?.params?._meta?.['io.modelcontextprotocol/protocolVersion'];
    if (version !== '2026-07-28') return send(400, { jsonrpc: '2.0', id, error: { code: -32000, message: 'Unsupported protocol version', data: { supported: ['2026-07-28'] } } });
    const mismatch = (m) => send(400, { jsonrpc: '2.0', id, error: { code: -32020, message: `Header mismatch: ${m}` } });
    if (metaVersion !== version) return mismatch('MCP-Protocol-Version');
    if (req.headers['mcp-method'] !== body.method) return mismatch('Mcp-Method');
    const names = [...buildServerToolNames()];
    if (body.method === 'server/discover') {
      return send(200, { jsonrpc: '2.0', id, result: { supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, serverInfo: { name: `emu-${name}`, version: '1.0.0' } } });
    }
    if (body.method === 'tools/list') {
      return send(200, { jsonrpc: '2.0', id, result: { tools: names.map((n) => ({ name: n, inputSchema: { type: 'object' } })) } });
    }
    if (body.method === 'tools/call') {
      const raw = req.headers['mcp-name'] ?? '';
      const sentinel = /^=\?base64\?(.*)\?=$/.exec(raw);
      const headerName = sentinel ? Buffer.from(sentinel[1], 'base64').toString('utf8') : raw;
      if (headerName !== body.params?.name) return mismatch('Mcp-Name');
      if (!names.includes(body.params.name)) return send(200, { jsonrpc: '2.0', id, error: { code: -32602, message: `Unknown tool: ${body.params.name}` } });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
      const result = { content: [{ type: 'text', text: JSON.stringify({ server: name, tool: body.params.name, credential_fingerprint: ctx.fingerprint, revision: '2026-07-28' }) }] };
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result })}\n\n`);
      return undefined;
    }
    return send(404, { jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } });
  }

  function buildServerToolNames() {
    return ['whoami', 'search', 'lookup', 'delete_everything', 'fail'];
  }

  const httpServer = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString('utf8');
    const cred = presentedCredential(req, auth);
    const headers = { ...req.headers };

    const resource = `http://127.0.0.1:${httpServer.address().port}${path}`;
    const metadataPath = `/.well-known/oauth-protected-resource${path}`;
    if (auth.type === 'oauth' && req.method === 'GET' && url.pathname === metadataPath) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        resource,
        authorization_servers: [auth.as.url],
        scopes_supported: auth.scope ? auth.scope.split(' ') : [],
        bearer_methods_supported: ['header'],
      }));
      return;
    }
    if (url.pathname !== path) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found' }));
      return;
    }
    if (!credentialOk(cred, auth, resource)) {
      const rej = { time: Date.now(), method: req.method, headers, credential: cred, body: raw };
      rejections.push(rej);
      history.push(rej);
      const h = { 'content-type': 'application/json' };
      if (auth.type === 'bearer') {
        h['www-authenticate'] = `Bearer resource_metadata="http://127.0.0.1:${httpServer.address().port}/.well-known/oauth-protected-resource", error="invalid_token"`;
      } else if (auth.type === 'oauth') {
        const scope = auth.scope ? `, scope="${auth.scope}"` : '';
        h['www-authenticate'] = `Bearer resource_metadata="http://127.0.0.1:${httpServer.address().port}${metadataPath}"${scope}${cred ? ', error="invalid_token"' : ''}`;
      }
      res.writeHead(401, h);
      res.end(JSON.stringify({ error: 'invalid_token', error_description: 'Missing or invalid credentials' }));
      return;
    }
    requests.push({ time: Date.now(), method: req.method, headers });
    if (kind === 'sessions' && req.method !== 'POST') {
      const s = sessions.get(req.headers['mcp-session-id']);
      if (!s) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      await s.transport.handleRequest(req, res);
      if (req.method === 'DELETE') sessions.delete(req.headers['mcp-session-id']);
      return;
    }
    if (req.method !== 'POST') {
      // Stateless server: no standalone SSE stream, no sessions to delete.
      res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
      return;
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null }));
      return;
    }
    for (const m of jsonRpcMethods(body)) {
      const call = { time: Date.now(), ...m, credential: cred, headers };
      calls.push(call);
      history.push(call);
    }
    // An OAuth server knows whose token it was (the account that signed in).
    const ctx = { fingerprint: credentialFingerprint(cred, auth), headers, subject: auth.type === 'oauth' ? auth.as.subjectOf(cred) : undefined };
    if (kind === 'stateless-2026') {
      await handle2026(req, res, body, ctx);
      return;
    }
    if (kind === 'sessions') {
      const sid = req.headers['mcp-session-id'];
      let s = sid ? sessions.get(sid) : undefined;
      if (sid && !s) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      if (!s) {
        const server = buildServer(ctx);
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => sessions.set(id, s),
        });
        s = { server, transport };
        await server.connect(transport);
      }
      try {
        await s.transport.handleRequest(req, res, body);
      } catch (e) {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: String(e?.message ?? e) }, id: null }));
        }
      }
      return;
    }
    const server = buildServer(ctx);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: kind === 'json' });
    res.on('close', () => {
      transport.close().catch(() => {});
      server.close().catch(() => {});
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: String(e?.message ?? e) }, id: null }));
      }
    }
  });
  // Longer than any pause in a test: a server closing an idle keep-alive connection just as
  // workerd reuses it makes the gateway's fetch fail (a spurious 502). close() ends them anyway.
  httpServer.keepAliveTimeout = 30_000;
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = httpServer.address().port;

  return {
    name,
    auth,
    port,
    url: `http://127.0.0.1:${port}${path}`,
    calls,
    rejections,
    history,
    requests,
    sessions,
    /** The recorded tools/call messages, optionally only for one tool. */
    toolCalls(tool) {
      return calls.filter((c) => c.method === 'tools/call' && (tool === undefined || c.tool === tool));
    },
    reset() {
      calls.length = 0;
      rejections.length = 0;
      requests.length = 0;
    },
    close() {
      for (const s of sessions.values()) s.transport.close().catch(() => {});
      httpServer.closeAllConnections?.();
      return new Promise((resolve) => httpServer.close(() => resolve()));
    },
  };
}
