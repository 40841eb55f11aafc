// Shared by the two JS baseline workers of mcpgate's benchmark (bench/run.mjs).
//
// KV record (plaintext: the baselines do no decryption), under
//   `bench:gk:<sha256 hex of the gateway key>`:
//   {"tenant_id": "...", "openai_key": "sk-...",
//    "mcp_servers": {"crm": {"url": "...", "token": "...", "allowed_tools": [...],
//                            "require_approval": "never"}, ...},
//    "allow_unmanaged": false}

const enc = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function gatewayKey(req) {
  const auth = req.headers.get('authorization');
  if (auth && /^bearer\s/i.test(auth)) return auth.slice(7).trim();
  return req.headers.get('x-api-key')?.trim() || null;
}

/** One KV read: the tenant record stored under the key's SHA-256. */
export async function lookupTenant(req, env) {
  const key = gatewayKey(req);
  if (!key) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(key)));
  let hex = '';
  for (const b of digest) hex += HEX[b];
  return env.GATEWAY_KV.get(`bench:gk:${hex}`, 'json');
}

export function error(status, message) {
  return new Response(JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code: null } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/** Client headers minus hop-by-hop and cf-*, with the provider key swapped in. */
export function upstreamHeaders(req, providerKey) {
  const h = new Headers();
  for (const [k, v] of req.headers) {
    if (k === 'authorization' || k === 'x-api-key' || k === 'host' || k === 'connection' ||
        k === 'keep-alive' || k === 'transfer-encoding' || k === 'content-length' || k.startsWith('cf-')) continue;
    h.append(k, v);
  }
  h.set('authorization', `Bearer ${providerKey}`);
  return h;
}

/** `/openai/v1/x?q` → `{OPENAI_BASE_URL}/v1/x?q`, or null. */
export function upstreamUrl(req, env) {
  const url = new URL(req.url);
  if (!url.pathname.startsWith('/openai/v1/')) return null;
  return `${env.OPENAI_BASE_URL}${url.pathname.slice('/openai'.length)}${url.search}`;
}
