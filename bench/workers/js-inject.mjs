// js-inject: mcpgate's OpenAI Responses injection written as plainly as a
// TypeScript gateway would: JSON.parse the body, complete every `tools[]` entry of
// type "mcp" naming a configured server (server_url, authorization/headers,
// allowed_tools ∩ client list, require_approval), JSON.stringify, forward.
// One KV read, like js-pass. Secrets are stored in plaintext (no decryption).
import { error, lookupTenant, upstreamHeaders, upstreamUrl } from './common.mjs';

const OWNED = ['server_url', 'headers', 'authorization', 'connector_id', 'tunnel_id'];

function inject(body, tenant) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('body must be a JSON object');
  const tools = body.tools;
  if (tools == null) return false;
  if (!Array.isArray(tools)) throw new Error('tools must be an array');
  const seen = new Set();
  for (const [i, tool] of tools.entries()) {
    if (tool === null || typeof tool !== 'object') throw new Error(`tools[${i}] must be an object`);
    if (tool.type !== 'mcp') continue;
    const server = tenant.mcp_servers[tool.server_label];
    if (!server) {
      if (tenant.allow_unmanaged) continue;
      throw new Error(`Unknown MCP server '${tool.server_label}'`);
    }
    if (seen.has(tool.server_label)) throw new Error('MCP server used twice');
    seen.add(tool.server_label);
    for (const f of OWNED) {
      if (tool[f] != null) throw new Error(`do not send ${f}`);
      delete tool[f];
    }
    tool.server_url = server.url;
    if (server.token) tool.authorization = server.token;
    if (server.headers) tool.headers = server.headers;
    if (server.allowed_tools) {
      const client = Array.isArray(tool.allowed_tools) ? tool.allowed_tools : null;
      tool.allowed_tools = client ? client.filter((t) => server.allowed_tools.includes(t)) : server.allowed_tools;
    }
    if (server.require_approval === 'always' || tool.require_approval == null) tool.require_approval = server.require_approval;
  }
  return seen.size > 0;
}

export default {
  async fetch(req, env) {
    const target = upstreamUrl(req, env);
    if (!target) return error(404, 'not found');
    const tenant = await lookupTenant(req, env);
    if (!tenant) return error(401, 'invalid gateway key');
    const headers = upstreamHeaders(req, tenant.openai_key);
    let body;
    if (req.method === 'POST' && new URL(req.url).pathname === '/openai/v1/responses') {
      const text = await req.text();
      let parsed;
      try {
        parsed = JSON.parse(text);
        body = inject(parsed, tenant) ? JSON.stringify(parsed) : text;
      } catch (e) {
        return error(400, String(e.message));
      }
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      body = req.body;
    }
    return fetch(target, { method: req.method, headers, body, redirect: 'manual' });
  },
};
