// An OAuth 2.1 authorization server for the end-to-end tests, behaving like a
// real one as docs/oauth.md describes it:
//
//  - RFC 8414 metadata at /.well-known/oauth-authorization-server
//  - RFC 7591 dynamic client registration at /register
//  - /authorize: checks client, redirect URI, PKCE S256 parameters and auto-approves
//    (302 back to the redirect URI with code and state; or error=access_denied when told to);
//    with `consent: true` it shows a consent page instead, an HTML form whose Approve / Deny
//    buttons POST to /authorize/decision, which redirects the same way
//  - /token: authorization_code (PKCE verified, single-use codes), refresh_token (rotation
//    on every use; reusing a rotated token is detected and revokes the whole family) and
//    client_credentials; client_secret_basic / client_secret_post / public clients; never
//    both methods in one request; RFC 8707 resource checked against the grant
//  - RFC 9207 `iss` on authorization responses (and the metadata flag), when `issParameter`
//  - short access-token lifetimes (seconds) so tokens expire during a test
//  - accounts: the browser that follows an authorization link is signed in as the account
//    its `emu_account` cookie names (`default` without one), as with a real login session;
//    every code, access and refresh token belongs to that account (its subject), which
//    `subjectOf(token)` tells an MCP server, and each token request records it
//
// It counts and records every token request (without keeping secrets in the
// record) so tests can assert exact numbers of token-endpoint calls.
// `checkAccessToken` lets MCP servers validate the tokens this server issued.

import http from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (prefix) => `${prefix}${randomBytes(24).toString('base64url')}`;
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const now = () => Date.now();

function safeEq(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/**
 * @param {{accessTtlSec?: number, tokenDelayMs?: number, rotate?: boolean, issParameter?: boolean,
 *          onIssue?: (value: string, kind: string) => void}} opts
 */
export async function startOAuthServer({ accessTtlSec = 3, tokenDelayMs = 0, rotate = true, issParameter = false, onIssue = () => {}, consent = false } = {}) {
  const pendingConsents = new Map(); // request id -> authorization parameters, until the user decides
  const clients = new Map(); // client_id -> {client_id, client_secret?, redirect_uris, token_endpoint_auth_method, grant_types}
  const codes = new Map(); // code -> {client_id, redirect_uri, challenge, resource, scope, expires, used}
  const access = new Map(); // token -> {client_id, resource, scope, expires, family, revoked, subject}
  const refresh = new Map(); // token -> {client_id, resource, scope, family, status: active|used|revoked, subject}
  const tokenCalls = []; // {time, grant_type, client_id, client_auth, resource, scope, ok, error, refresh_token_fp, subject}
  const registrations = [];
  const authorizations = [];
  const events = { reuseDetected: 0 };
  let denyNext = false;

  const issuer = () => `http://127.0.0.1:${server.address().port}`;
  const fp = (s) => (s ? createHash('sha256').update(s).digest('hex').slice(0, 8) : null);

  function issueAccess(client_id, resource, scope, family, subject = 'default') {
    const token = rand('at_');
    const ttl = state.accessTtlSec;
    access.set(token, { client_id, resource, scope, expires: now() + ttl * 1000, family, revoked: false, subject });
    onIssue(token, 'access token');
    return { access_token: token, token_type: 'Bearer', expires_in: ttl };
  }

  function issueRefresh(client_id, resource, scope, family, subject = 'default') {
    const token = rand('rt_');
    refresh.set(token, { client_id, resource, scope, family, status: 'active', subject });
    onIssue(token, 'refresh token');
    return token;
  }

  function revokeFamily(family) {
    for (const r of refresh.values()) if (r.family === family) r.status = 'revoked';
    for (const a of access.values()) if (a.family === family) a.revoked = true;
  }

  /** Authenticates the client of a token request; returns {client, method} or an error tuple. */
  function authenticate(req, form) {
    const h = req.headers.authorization;
    const basic = typeof h === 'string' && /^basic /i.test(h);
    const postSecret = form.has('client_secret');
    if (basic && postSecret) return { error: ['invalid_request', 400, 'two client authentication methods'] };
    if (basic) {
      const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) return { error: ['invalid_client', 401] };
      const id = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
      const secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' '));
      const c = clients.get(id);
      if (!c || !c.client_secret || !safeEq(c.client_secret, secret)) return { error: ['invalid_client', 401] };
      return { client: c, method: 'client_secret_basic' };
    }
    const id = form.get('client_id');
    const c = id ? clients.get(id) : undefined;
    if (!c) return { error: ['invalid_client', 401] };
    if (postSecret) {
      if (!c.client_secret || !safeEq(c.client_secret, form.get('client_secret'))) return { error: ['invalid_client', 401] };
      return { client: c, method: 'client_secret_post' };
    }
    if (c.client_secret) return { error: ['invalid_client', 401] }; // a confidential client must authenticate
    return { client: c, method: 'none' };
  }

  async function token(req, res) {
    const form = new URLSearchParams(await readBody(req));
    const grant = form.get('grant_type');
    const call = {
      time: now(), grant_type: grant, client_id: null, client_auth: null,
      resource: form.get('resource'), scope: form.get('scope'), ok: false, error: null,
      refresh_token_fp: fp(form.get('refresh_token')),
      subject: refresh.get(form.get('refresh_token') ?? '')?.subject ?? codes.get(form.get('code') ?? '')?.subject ?? null,
    };
    tokenCalls.push(call);
    if (state.tokenDelayMs > 0) await sleep(state.tokenDelayMs);
    if (state.mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Service temporarily unavailable</body></html>');
      call.error = 'garbage';
      return;
    }
    const fail = (error, status = 400, headers = {}) => {
      call.error = error;
      send(res, status, { error, error_description: `rejected: ${error}` }, headers);
    };
    const auth = authenticate(req, form);
    if (auth.error) {
      const [error, status] = auth.error;
      return fail(error, status, status === 401 ? { 'www-authenticate': 'Basic realm="oauth-emulator"' } : {});
    }
    const { client, method } = auth;
    call.client_id = client.client_id;
    call.client_auth = method;
    const resource = form.get('resource');
    const scope = form.get('scope');

    if (grant === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '');
      if (!code || code.client_id !== client.client_id) return fail('invalid_grant');
      if (code.used) {
        revokeFamily(code.family);
        return fail('invalid_grant');
      }
      code.used = true;
      if (code.expires < now()) return fail('invalid_grant');
      if (form.get('redirect_uri') !== code.redirect_uri) return fail('invalid_grant');
      const verifier = form.get('code_verifier') ?? '';
      if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return fail('invalid_grant');
      if (b64url(createHash('sha256').update(verifier).digest()) !== code.challenge) return fail('invalid_grant');
      if (code.resource && resource !== code.resource) return fail('invalid_target');
      const body = issueAccess(client.client_id, code.resource, code.scope, code.family, code.subject);
      body.refresh_token = issueRefresh(client.client_id, code.resource, code.scope, code.family, code.subject);
      if (code.scope) body.scope = code.scope;
      call.ok = true;
      return send(res, 200, body);
    }
    if (grant === 'refresh_token') {
      const rt = refresh.get(form.get('refresh_token') ?? '');
      if (!rt || rt.client_id !== client.client_id) return fail('invalid_grant');
      if (rt.status === 'used') {
        events.reuseDetected++;
        revokeFamily(rt.family);
        return fail('invalid_grant');
      }
      if (rt.status !== 'active') return fail('invalid_grant');
      if (rt.resource && resource && resource !== rt.resource) return fail('invalid_target');
      if (scope && rt.scope && !scope.split(' ').every((s) => rt.scope.split(' ').includes(s))) return fail('invalid_scope');
      const body = issueAccess(client.client_id, rt.resource, rt.scope, rt.family, rt.subject);
      if (state.rotate) {
        rt.status = 'used';
        body.refresh_token = issueRefresh(client.client_id, rt.resource, rt.scope, rt.family, rt.subject);
      }
      call.ok = true;
      return send(res, 200, body);
    }
    if (grant === 'client_credentials') {
      if (method === 'none') return fail('unauthorized_client');
      if (!client.grant_types.includes('client_credentials')) return fail('unauthorized_client');
      const family = rand('fam_');
      const body = issueAccess(client.client_id, resource, scope, family);
      if (scope) body.scope = scope;
      call.ok = true;
      return send(res, 200, body);
    }
    return fail('unsupported_grant_type');
  }

  function register(body, res) {
    let meta;
    try {
      meta = JSON.parse(body);
    } catch {
      return send(res, 400, { error: 'invalid_client_metadata' });
    }
    if (!Array.isArray(meta.redirect_uris) || meta.redirect_uris.length === 0) {
      return send(res, 400, { error: 'invalid_redirect_uri' });
    }
    const method = meta.token_endpoint_auth_method ?? 'client_secret_basic';
    const c = {
      client_id: rand('dyn_'),
      redirect_uris: meta.redirect_uris,
      token_endpoint_auth_method: method,
      grant_types: meta.grant_types ?? ['authorization_code', 'refresh_token'],
    };
    if (method !== 'none') {
      c.client_secret = rand('dsec_');
      onIssue(c.client_secret, 'registered client secret');
    }
    clients.set(c.client_id, c);
    registrations.push({ time: now(), request: meta, client_id: c.client_id });
    send(res, 201, { ...c, client_id_issued_at: Math.floor(now() / 1000), client_name: meta.client_name });
  }

  /** The account the browser is signed in as (its `emu_account` cookie). */
  function accountOf(req) {
    const m = /(?:^|;\s*)emu_account=([^;]+)/.exec(req.headers.cookie ?? '');
    return m ? decodeURIComponent(m[1]) : 'default';
  }

  function authorize(url, req, res) {
    const p = { ...Object.fromEntries(url.searchParams), subject: accountOf(req) };
    authorizations.push({ time: now(), ...p });
    const c = clients.get(p.client_id ?? '');
    if (!c || !c.redirect_uris.includes(p.redirect_uri)) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      return res.end('invalid client or redirect_uri');
    }
    if (!consent) return decide(p, c, true, res);
    const id = rand('req_');
    pendingConsents.set(id, p);
    const esc = (v) => String(v).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Authorize access</title></head><body>
<h1>Authorize access</h1>
<p>The application <strong id="client">${esc(c.client_id)}</strong> asks for access${p.scope ? ` to <code>${esc(p.scope)}</code>` : ''}.</p>
<form method="post" action="/authorize/decision">
<input type="hidden" name="request_id" value="${esc(id)}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>`);
  }

  /** The user's answer on the consent page. */
  async function decision(req, res) {
    const form = new URLSearchParams(await readBody(req));
    const p = pendingConsents.get(form.get('request_id') ?? '');
    pendingConsents.delete(form.get('request_id') ?? '');
    const c = p && clients.get(p.client_id);
    if (!p || !c) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      return res.end('unknown or used authorization request');
    }
    return decide(p, c, form.get('decision') === 'approve', res);
  }

  /** Redirects back to the client with a code, or with an error. */
  function decide(p, c, approved, res) {
    const back = new URL(p.redirect_uri);
    back.searchParams.set('state', p.state ?? '');
    if (issParameter) back.searchParams.set('iss', issuer());
    const badPkce = p.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(p.code_challenge ?? '');
    if (p.response_type !== 'code' || badPkce) {
      back.searchParams.set('error', 'invalid_request');
    } else if (denyNext || !approved) {
      denyNext = false;
      back.searchParams.set('error', 'access_denied');
    } else {
      const code = rand('code_');
      codes.set(code, {
        client_id: c.client_id, redirect_uri: p.redirect_uri, challenge: p.code_challenge,
        resource: p.resource ?? null, scope: p.scope ?? null, expires: now() + 60_000, used: false, family: rand('fam_'),
        subject: p.subject,
      });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.toString() });
    res.end();
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    try {
      if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
        const iss = issuer();
        return send(res, 200, {
          issuer: iss,
          authorization_endpoint: `${iss}/authorize`,
          token_endpoint: `${iss}/token`,
          registration_endpoint: `${iss}/register`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
          scopes_supported: ['mcp:tools'],
          ...(issParameter ? { authorization_response_iss_parameter_supported: true } : {}),
        });
      }
      if (req.method === 'POST' && url.pathname === '/register') return register(await readBody(req), res);
      if (req.method === 'GET' && url.pathname === '/authorize') return authorize(url, req, res);
      if (req.method === 'POST' && url.pathname === '/authorize/decision') return await decision(req, res);
      if (req.method === 'POST' && url.pathname === '/token') return await token(req, res);
      send(res, 404, { error: 'not_found' });
    } catch (e) {
      send(res, 500, { error: 'server_error', error_description: String(e?.message ?? e) });
    }
  });
  // Longer than any pause in a test: a server closing an idle keep-alive connection just as
  // workerd reuses it makes the gateway's fetch fail (a spurious 502). close() ends them anyway.
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));

  const state = {
    accessTtlSec,
    tokenDelayMs,
    rotate,
    /** null, or 'garbage' to answer token requests with an HTML page. */
    mode: null,
    get url() {
      return issuer();
    },
    get tokenUrl() {
      return `${issuer()}/token`;
    },
    clients,
    tokenCalls,
    registrations,
    authorizations,
    events,
    /** Token requests, optionally filtered by grant type and client. */
    calls({ grant, client, subject } = {}) {
      return tokenCalls.filter((c) => (!grant || c.grant_type === grant) && (!client || c.client_id === client)
        && (!subject || c.subject === subject));
    },
    /** A pre-registered client; `secret: true` makes it confidential. */
    addClient({ secret = false, grantTypes = ['authorization_code', 'refresh_token', 'client_credentials'], redirectUris = [] } = {}) {
      const c = { client_id: rand('pre_'), redirect_uris: redirectUris, grant_types: grantTypes };
      if (secret) {
        c.client_secret = rand('sec_');
        onIssue(c.client_secret, 'client secret');
      }
      clients.set(c.client_id, c);
      return c;
    },
    /** A refresh token obtained outside the gateway (for `grant: "refresh_token"` configs). */
    issueRefreshToken(clientId, { resource = null, scope = null } = {}) {
      return issueRefresh(clientId, resource, scope, rand('fam_'));
    },
    /** Revokes every refresh token (and their access tokens) of a client, as when a user withdraws consent. */
    revokeClient(clientId) {
      for (const r of refresh.values()) if (r.client_id === clientId) r.status = 'revoked';
      for (const a of access.values()) if (a.client_id === clientId) a.revoked = true;
    },
    /** Revokes every refresh and access token of one account (it withdrew its consent). */
    revokeSubject(subject) {
      for (const r of refresh.values()) if (r.subject === subject) r.status = 'revoked';
      for (const a of access.values()) if (a.subject === subject) a.revoked = true;
    },
    /** The account a live or expired access token of this server belongs to (null if unknown). */
    subjectOf(token) {
      return (token && access.get(token)?.subject) ?? null;
    },
    /** Makes the next authorization answer access_denied. */
    denyNextAuthorization() {
      denyNext = true;
    },
    /** Whether `token` is a live access token of this server for `resource`. */
    checkAccessToken(token, resource) {
      const a = token ? access.get(token) : undefined;
      if (!a || a.revoked || a.expires <= now()) return false;
      return !a.resource || !resource || a.resource === resource;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
  return state;
}
