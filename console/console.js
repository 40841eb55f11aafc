// mcpgate admin console: one module, no build step, no third-party code.
//
// Rules this file keeps (the page runs under a CSP of 'self' only):
//  - every value from the API is rendered as text (text nodes, textContent,
//    attribute values through setAttribute); no markup is ever parsed from data;
//  - the admin token lives in sessionStorage only, is sent as a bearer
//    header, and never appears in a URL;
//  - secrets are write-only: the API shows them as "[redacted]", the form
//    leaves them empty, and an empty secret field sends "[redacted]" back,
//    which keeps the stored value.

const TOKEN_KEY = 'mcpgate.adminToken';
const REDACTED = '[redacted]';
const PALETTE = ['#2456c7', '#e07b00', '#1b7f3b', '#9c27b0', '#b3261e', '#00838f', '#6d4c41', '#546e7a'];
const SVG_NS = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

/** Creates an element; string/number children become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = true;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

/** One admin API call; throws ApiError with the API's own message. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'The gateway could not be reached.');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = json?.error;
    throw new ApiError(res.status, err?.message ?? `The gateway answered HTTP ${res.status}.`, err?.param ?? null);
  }
  return json;
}

function showError(e) {
  const box = $('error');
  if (!e) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  const status = e.status ? `HTTP ${e.status}: ` : '';
  const field = e.param ? ` (field: ${e.param})` : '';
  box.textContent = `${status}${e.message}${field}`;
  box.hidden = false;
  if (e.status === 401 && token()) {
    // The token no longer works (rotated, or the wrong one): sign in again.
    sessionStorage.removeItem(TOKEN_KEY);
    renderSignIn();
  }
}

function notice(text) {
  $('notice').textContent = text ?? '';
  $('notice').hidden = !text;
}

function setMain(...children) {
  $('main').replaceChildren(...children);
}

const enc = encodeURIComponent;
const tenantPath = (id) => `/admin/tenants/${enc(id)}`;

// ---------------------------------------------------------------------------
// Sign in / out

function renderSignIn() {
  $('nav').hidden = true;
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'signin', id: 'signin' },
    h('section', {},
      h('h2', {}, 'Sign in'),
      h('label', {}, h('span', {}, 'Admin token (ADMIN_TOKEN)'), input),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in'))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await api('GET', '/admin/tenants?limit=1');
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError(e.status === 401 ? new ApiError(401, 'That admin token was not accepted.') : e);
      return;
    }
    showError(null);
    if (location.hash === '#/tenants') route();
    else location.hash = '#/tenants';
  });
  setMain(form);
  input.focus();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  showError(null);
  notice('Signed out.');
  history.replaceState(null, '', location.pathname);
  renderSignIn();
}

// ---------------------------------------------------------------------------
// Tenants list

/** Cursors of the pages seen, so "Previous" works; index 0 is the first page. */
const pages = { cursors: [null], index: 0 };

async function renderTenants() {
  const cursor = pages.cursors[pages.index];
  const q = new URLSearchParams({ limit: '50' });
  if (cursor) q.set('cursor', cursor);
  const page = await api('GET', `/admin/tenants?${q}`);
  pages.cursors[pages.index + 1] = page.cursor;
  const rows = page.tenants.map((t) =>
    h('tr', {}, h('td', {}, h('a', { href: `#/t/${enc(t.tenant_id)}`, class: 'tenant-link' }, t.tenant_id))));
  setMain(h('section', { id: 'tenants' },
    h('h2', {}, 'Tenants'),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Tenant id'))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No tenants yet.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', disabled: pages.index === 0, onclick: () => { pages.index -= 1; route(); } }, 'Previous page'),
      h('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: !page.cursor, onclick: () => { pages.index += 1; route(); } }, 'Next page'),
      h('a', { href: '#/new' }, h('button', { type: 'button' }, 'New tenant')))));
}

// ---------------------------------------------------------------------------
// Tenant detail

function authSummary(auth) {
  switch (auth.type) {
    case 'none': return 'none';
    case 'bearer': return `bearer ${auth.token}`;
    case 'headers': return `headers ${Object.entries(auth.headers).map(([k, v]) => `${k}: ${v}`).join(', ')}`;
    case 'oauth2': return `oauth2 (${auth.grant})`;
    default: return String(auth.type);
  }
}

async function renderTenant(id) {
  const tenant = await api('GET', tenantPath(id));
  const keysBox = h('div', { id: 'keys' });
  const usageBox = h('div', { id: 'usage' });
  const serverRows = Object.entries(tenant.mcp_servers).map(([name, s]) => {
    const oauthCell = h('td', {});
    if (s.auth.type === 'oauth2') loadOAuth(id, name, s.auth.grant, oauthCell);
    else oauthCell.append(h('span', { class: 'muted' }, '—'));
    return h('tr', { 'data-server': name },
      h('td', {}, name), h('td', {}, s.url), h('td', {}, authSummary(s.auth)),
      h('td', {}, s.mode, s.service ? ` via ${s.service}` : ''),
      h('td', {}, s.allowed_tools ? s.allowed_tools.join(', ') : 'all'),
      h('td', {}, s.require_approval), oauthCell);
  });
  const providers = ['openai', 'anthropic'].map((p) => h('li', {}, `${p}: `, tenant.providers[p] ? tenant.providers[p].api_key : 'not set'));
  setMain(
    h('section', { id: 'tenant' },
      h('h2', {}, 'Tenant ', h('span', { id: 'tenant-id' }, tenant.id)),
      h('h3', {}, 'Provider keys'), h('ul', {}, providers),
      h('p', {}, `Unmanaged MCP servers: ${tenant.allow_unmanaged_mcp_servers ? 'allowed' : 'not allowed'}. `,
        `Rate limit: ${tenant.rate_limit ? `${tenant.rate_limit.requests_per_minute} requests/minute` : 'none'}.`),
      h('h3', {}, 'MCP servers'),
      serverRows.length
        ? h('table', { id: 'servers' }, h('thead', {}, h('tr', {}, ['Name', 'URL', 'Auth', 'Mode', 'Allowed tools', 'Approval', 'OAuth'].map((t) => h('th', {}, t)))), h('tbody', {}, serverRows))
        : h('p', { class: 'muted' }, 'No MCP servers.'),
      h('div', { class: 'actions' },
        h('a', { href: `#/t/${enc(id)}/edit` }, h('button', { type: 'button' }, 'Edit')),
        h('button', { type: 'button', class: 'danger', onclick: () => deleteTenant(id) }, 'Delete tenant'))),
    h('section', {}, h('h2', {}, 'Gateway keys'), keysBox),
    h('section', {}, h('h2', {}, 'Usage'), usageBox));
  await Promise.all([renderKeys(id, keysBox), renderUsage(id, usageBox)]);
}

async function deleteTenant(id) {
  if (!confirm(`Delete tenant ${id}? Its keys stop working at once.`)) return;
  try {
    await api('DELETE', tenantPath(id));
    notice(`Tenant ${id} deleted.`);
    location.hash = '#/tenants';
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------------------
// OAuth

async function loadOAuth(id, server, grant, cell) {
  const base = `${tenantPath(id)}/mcp_servers/${enc(server)}/oauth`;
  let st;
  try {
    st = await api('GET', base);
  } catch (e) {
    cell.replaceChildren(h('span', { class: 'status-not_connected' }, e.message));
    return;
  }
  const status = h('span', { class: `oauth-status status-${st.status}` }, st.status.replace(/_/g, ' '));
  const detail = st.last_error ? h('div', { class: 'muted' }, `Last error: ${st.last_error.message}`) : null;
  const expiry = st.access_token_expires_at ? h('div', { class: 'muted' }, `Token expires ${st.access_token_expires_at}`) : null;
  const buttons = h('div', { class: 'actions' });
  if (grant !== 'client_credentials') {
    buttons.append(h('button', { type: 'button', class: 'connect', onclick: () => connect(id, server, grant, cell) }, st.connected ? 'Reconnect' : 'Connect'));
  }
  if (st.connected) {
    buttons.append(h('button', { type: 'button', class: 'danger', onclick: async () => {
      try {
        await api('DELETE', base);
        await loadOAuth(id, server, grant, cell);
      } catch (e) {
        showError(e);
      }
    } }, 'Disconnect'));
  }
  cell.replaceChildren(status, expiry ?? '', detail ?? '', buttons);
}

/** Runs the connect flow in a popup and polls the status until it settles. */
async function connect(id, server, grant, cell) {
  showError(null);
  let link;
  try {
    link = await api('POST', `${tenantPath(id)}/mcp_servers/${enc(server)}/oauth/connect`);
  } catch (e) {
    showError(e);
    return;
  }
  // noopener: the authorization server's pages get no handle on this window.
  window.open(link.authorization_url, 'mcpgate-oauth', 'popup,noopener,noreferrer,width=560,height=680');
  cell.replaceChildren(h('span', { class: 'oauth-status status-authorization_pending' }, 'waiting for the authorization in the popup…'));
  const deadline = Date.parse(link.expires_at) || Date.now() + 600_000;
  const base = `${tenantPath(id)}/mcp_servers/${enc(server)}/oauth`;
  while (Date.now() < deadline && cell.isConnected) {
    await new Promise((r) => setTimeout(r, 1000));
    let st;
    try {
      st = await api('GET', base);
    } catch {
      continue;
    }
    if (st.connected || st.status === 'reconnect_required' || (st.last_error && st.status !== 'authorization_pending')) {
      await loadOAuth(id, server, grant, cell);
      notice(st.connected ? `MCP server ${server} is connected.` : `MCP server ${server}: ${st.last_error?.message ?? st.status}`);
      return;
    }
  }
  if (cell.isConnected) await loadOAuth(id, server, grant, cell);
}

// ---------------------------------------------------------------------------
// Keys

async function renderKeys(id, box, created) {
  const list = await api('GET', `${tenantPath(id)}/keys`);
  const rows = list.keys.map((k) => h('tr', { 'data-key': k.id },
    h('td', {}, k.id), h('td', {}, k.created_at),
    h('td', {}, h('button', { type: 'button', class: 'danger revoke', onclick: async () => {
      if (!confirm(`Revoke key ${k.id}? Apps using it stop working at once.`)) return;
      try {
        await api('DELETE', `${tenantPath(id)}/keys/${enc(k.id)}`);
        notice(`Key ${k.id} revoked.`);
        await renderKeys(id, box);
      } catch (e) {
        showError(e);
      }
    } }, 'Revoke'))));
  box.replaceChildren(
    created ? h('div', { class: 'once', id: 'new-key' },
      h('strong', {}, 'New gateway key — shown only this once; copy it now:'),
      h('code', {}, created.key), h('span', { class: 'muted' }, `id ${created.id}`)) : '',
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Key id'), h('th', {}, 'Created'), h('th', {}, ''))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No keys.'),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'create-key', onclick: async () => {
      try {
        const k = await api('POST', `${tenantPath(id)}/keys`);
        await renderKeys(id, box, k);
      } catch (e) {
        showError(e);
      }
    } }, 'Create key')));
}

// ---------------------------------------------------------------------------
// Usage

const day = (ms) => new Date(ms).toISOString().slice(0, 10);

async function renderUsage(id, box, from, to) {
  to ??= day(Date.now());
  from ??= day(Date.parse(to) - 13 * 86_400_000);
  const u = await api('GET', `${tenantPath(id)}/usage?from=${enc(from)}&to=${enc(to)}`);
  const dates = [];
  for (let t = Date.parse(u.from); t <= Date.parse(u.to) && dates.length < 400; t += 86_400_000) dates.push(day(t));
  const byDate = new Map(u.days.map((d) => [d.date, d]));
  const servers = [...new Set(u.days.flatMap((d) => Object.keys(d.mcp_calls)))].sort();
  const fromIn = h('input', { type: 'date', value: u.from, 'aria-label': 'From' });
  const toIn = h('input', { type: 'date', value: u.to, 'aria-label': 'To' });
  const t = u.total;
  box.replaceChildren(
    h('div', { class: 'row' }, h('label', {}, h('span', {}, 'From'), fromIn), h('label', {}, h('span', {}, 'To'), toIn),
      h('div', {}, h('button', { type: 'button', class: 'secondary', onclick: () => renderUsage(id, box, fromIn.value, toIn.value).catch(showError) }, 'Show'))),
    h('p', { id: 'usage-total' }, `Total: ${t.requests} requests, ${t.input_tokens} input tokens, ${t.output_tokens} output tokens, `,
      `${Object.values(t.mcp_calls).reduce((a, b) => a + b, 0)} MCP calls.`),
    chart('Requests per day', 'requests', dates, [{ name: 'requests', values: dates.map((d) => byDate.get(d)?.requests ?? 0) }]),
    chart('Tokens per day', 'tokens', dates, [
      { name: 'input tokens', values: dates.map((d) => byDate.get(d)?.input_tokens ?? 0) },
      { name: 'output tokens', values: dates.map((d) => byDate.get(d)?.output_tokens ?? 0) }]),
    chart('MCP calls per day, per server', 'mcp', dates, servers.map((s) => ({ name: s, values: dates.map((d) => byDate.get(d)?.mcp_calls[s] ?? 0) }))));
}

/** A stacked bar chart as SVG; every bar carries its value as text (a <title>) and data attributes. */
function chart(title, id, dates, series) {
  const W = 720, H = 180, L = 44, B = 24, T = 8;
  const totals = dates.map((_, i) => series.reduce((a, s) => a + s.values[i], 0));
  const max = Math.max(1, ...totals);
  const bw = (W - L - 8) / Math.max(1, dates.length);
  const g = svg('svg', { class: 'chart', id: `chart-${id}`, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  g.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B }));
  g.append(svg('text', { x: L - 6, y: T + 10, 'text-anchor': 'end' }, String(max)));
  g.append(svg('text', { x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'));
  dates.forEach((d, i) => {
    let y = H - B;
    series.forEach((s, si) => {
      const v = s.values[i];
      if (!v) return;
      const bh = ((H - B - T) * v) / max;
      y -= bh;
      g.append(svg('rect', { x: L + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, fill: PALETTE[si % PALETTE.length],
        'data-series': s.name, 'data-date': d, 'data-value': v }, svg('title', {}, `${d} ${s.name}: ${v}`)));
    });
    if (dates.length <= 16 || i % Math.ceil(dates.length / 8) === 0) {
      g.append(svg('text', { x: L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle' }, d.slice(5)));
    }
  });
  const legend = h('div', { class: 'legend' }, series.map((s, si) => h('span', {}, h('span', { class: `swatch c${si % 8}` }), s.name)));
  return h('figure', {}, h('figcaption', {}, h('h3', {}, title)), series.length ? g : h('p', { class: 'muted' }, 'None.'), series.length ? legend : '');
}

// ---------------------------------------------------------------------------
// Create / edit

/** A secret input: empty means "keep" when a value is stored, else "none". */
function secretField(label, name, stored) {
  return h('label', {}, h('span', {}, label),
    h('input', { type: 'password', name, autocomplete: 'off', placeholder: stored ? `${REDACTED} — unchanged unless typed` : '' }));
}

const secretValue = (input, stored) => (input.value !== '' ? input.value : stored ? REDACTED : undefined);

function serverFieldset(name = '', s = null) {
  const auth = s?.auth ?? { type: 'bearer' };
  const fs = h('fieldset', { class: 'server' });
  const q = (n) => fs.querySelector(`[name="${n}"]`);
  const authType = h('select', { name: 'auth_type' }, ['none', 'bearer', 'headers', 'oauth2'].map((t) => h('option', { value: t, selected: t === auth.type }, t)));
  const authBox = h('div', {});
  const headerRows = h('div', { class: 'headers' });
  const addHeader = (n = '', stored = false) => {
    const row = h('div', { class: 'row header-row' },
      h('label', {}, h('span', {}, 'Header name'), h('input', { name: 'header_name', value: n })),
      secretField('Header value', 'header_value', stored),
      h('div', {}, h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, 'Remove header')));
    row.dataset.stored = stored ? '1' : '';
    headerRows.append(row);
  };
  const drawAuth = () => {
    const t = authType.value;
    const same = t === auth.type;
    if (t === 'none') authBox.replaceChildren();
    if (t === 'bearer') authBox.replaceChildren(secretField('Bearer token', 'token', same && !!auth.token));
    if (t === 'headers') {
      headerRows.replaceChildren();
      if (same) Object.keys(auth.headers ?? {}).forEach((n) => addHeader(n, true));
      else addHeader();
      authBox.replaceChildren(headerRows, h('button', { type: 'button', class: 'secondary', onclick: () => addHeader() }, 'Add header'));
    }
    if (t === 'oauth2') {
      const o = same ? auth : {};
      authBox.replaceChildren(
        h('div', { class: 'row' },
          h('label', {}, h('span', {}, 'Grant'), h('select', { name: 'grant' }, ['authorization_code', 'refresh_token', 'client_credentials'].map((g) => h('option', { value: g, selected: g === (o.grant ?? 'authorization_code') }, g)))),
          h('label', {}, h('span', {}, 'Client auth'), h('select', { name: 'client_auth' }, ['', 'client_secret_basic', 'client_secret_post'].map((g) => h('option', { value: g, selected: g === (o.client_auth ?? '') }, g || '(default)'))))),
        h('div', { class: 'row' },
          h('label', {}, h('span', {}, 'Token URL (optional: discovered)'), h('input', { name: 'token_url', value: o.token_url ?? '' })),
          h('label', {}, h('span', {}, 'Client id (optional: registered)'), h('input', { name: 'client_id', value: o.client_id ?? '' }))),
        h('div', { class: 'row' },
          secretField('Client secret', 'client_secret', !!o.client_secret),
          secretField('Refresh token (grant refresh_token)', 'refresh_token', !!o.refresh_token)),
        h('div', { class: 'row' },
          h('label', {}, h('span', {}, 'Scope'), h('input', { name: 'scope', value: o.scope ?? '' })),
          h('label', {}, h('span', {}, 'Resource'), h('input', { name: 'resource', value: o.resource ?? '' }))));
    }
  };
  authType.addEventListener('change', drawAuth);
  fs.append(
    h('legend', {}, name ? `Server ${name}` : 'New server'),
    h('div', { class: 'row' },
      h('label', {}, h('span', {}, 'Name'), h('input', { name: 'name', value: name, required: true, pattern: '[A-Za-z0-9_\\-]{1,64}' })),
      h('label', {}, h('span', {}, 'URL'), h('input', { name: 'url', value: s?.url ?? '', required: true }))),
    h('div', { class: 'row' },
      h('label', {}, h('span', {}, 'Auth'), authType),
      h('label', {}, h('span', {}, 'Mode'), h('select', { name: 'mode' }, ['direct', 'relay'].map((m) => h('option', { value: m, selected: m === (s?.mode ?? 'direct') }, m)))),
      h('label', {}, h('span', {}, 'Approval'), h('select', { name: 'require_approval' }, ['never', 'always'].map((m) => h('option', { value: m, selected: m === (s?.require_approval ?? 'never') }, m)))),
      h('label', {}, h('span', {}, 'Service binding (relay)'), h('input', { name: 'service', value: s?.service ?? '' }))),
    h('label', {}, h('span', {}, 'Allowed tools (comma-separated; empty: all)'), h('input', { name: 'allowed_tools', value: s?.allowed_tools?.join(', ') ?? '' })),
    authBox,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', onclick: () => fs.remove() }, 'Remove server')));
  drawAuth();
  fs.readServer = () => {
    const out = { url: q('url').value.trim(), require_approval: q('require_approval').value, mode: q('mode').value };
    const tools = q('allowed_tools').value.split(',').map((x) => x.trim()).filter(Boolean);
    if (tools.length) out.allowed_tools = tools;
    if (q('service').value.trim()) out.service = q('service').value.trim();
    const t = authType.value;
    const same = t === auth.type;
    if (t === 'none') out.auth = { type: 'none' };
    if (t === 'bearer') out.auth = { type: 'bearer', token: secretValue(q('token'), same && auth.token) ?? '' };
    if (t === 'headers') {
      const headers = {};
      for (const row of fs.querySelectorAll('.header-row')) {
        const n = row.querySelector('[name=header_name]').value.trim();
        if (n) headers[n] = secretValue(row.querySelector('[name=header_value]'), row.dataset.stored === '1') ?? '';
      }
      out.auth = { type: 'headers', headers };
    }
    if (t === 'oauth2') {
      const o = same ? auth : {};
      const a = { type: 'oauth2', grant: q('grant').value };
      for (const f of ['token_url', 'client_id', 'scope', 'resource', 'client_auth']) if (q(f).value.trim()) a[f] = q(f).value.trim();
      const cs = secretValue(q('client_secret'), !!o.client_secret);
      if (cs !== undefined) a.client_secret = cs;
      const rt = secretValue(q('refresh_token'), !!o.refresh_token);
      if (rt !== undefined && a.grant === 'refresh_token') a.refresh_token = rt;
      out.auth = a;
    }
    return [q('name').value.trim(), out];
  };
  return fs;
}

async function renderForm(id) {
  const tenant = id ? await api('GET', tenantPath(id)) : null;
  const servers = h('div', { id: 'server-list' });
  for (const [n, s] of Object.entries(tenant?.mcp_servers ?? {})) servers.append(serverFieldset(n, s));
  const idIn = h('input', { name: 'tenant_id', value: id ?? '', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', readonly: !!id });
  const provider = (p) => {
    const stored = !!tenant?.providers[p];
    return h('div', { class: 'row' }, secretField(`${p} API key`, `${p}_key`, stored),
      stored ? h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: `${p}_remove` }), `Remove the ${p} key`) : '');
  };
  const rpm = h('input', { type: 'number', min: '1', name: 'rpm', value: tenant?.rate_limit?.requests_per_minute ?? '' });
  const unmanaged = h('input', { type: 'checkbox', name: 'unmanaged', checked: tenant?.allow_unmanaged_mcp_servers });
  const form = h('form', { id: 'tenant-form' },
    h('section', {},
      h('h2', {}, id ? `Edit tenant ${id}` : 'New tenant'),
      h('label', {}, h('span', {}, 'Tenant id (1–64 of A–Z a–z 0–9 _ -)'), idIn),
      h('h3', {}, 'Provider keys'), provider('openai'), provider('anthropic'),
      h('p', { class: 'muted' }, 'Secrets are write-only: stored ones show as [redacted] and stay unchanged unless you type a new value.'),
      h('h3', {}, 'MCP servers'), servers,
      h('button', { type: 'button', class: 'secondary', id: 'add-server', onclick: () => servers.append(serverFieldset()) }, 'Add MCP server'),
      h('h3', {}, 'Policy'),
      h('label', { class: 'inline' }, unmanaged, 'Allow unmanaged MCP servers'),
      h('label', {}, h('span', {}, 'Rate limit, requests per minute (empty: none)'), rpm),
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'save' }, 'Save'),
        h('a', { href: id ? `#/t/${enc(id)}` : '#/tenants' }, h('button', { type: 'button', class: 'secondary' }, 'Cancel')))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tid = idIn.value.trim();
    const body = { providers: {}, mcp_servers: {}, allow_unmanaged_mcp_servers: unmanaged.checked };
    for (const p of ['openai', 'anthropic']) {
      if (form.querySelector(`[name=${p}_remove]`)?.checked) continue;
      const v = secretValue(form.querySelector(`[name=${p}_key]`), !!tenant?.providers[p]);
      if (v !== undefined) body.providers[p] = { api_key: v };
    }
    for (const fs of servers.querySelectorAll('fieldset.server')) {
      const [n, s] = fs.readServer();
      body.mcp_servers[n] = s;
    }
    if (rpm.value) body.rate_limit = { requests_per_minute: Number(rpm.value) };
    try {
      await api('PUT', tenantPath(tid), body);
      showError(null);
      notice(`Tenant ${tid} saved.`);
      location.hash = `#/t/${enc(tid)}`;
    } catch (e) {
      showError(e);
    }
  });
  setMain(form);
}

// ---------------------------------------------------------------------------
// Router

async function route() {
  if (!token()) return renderSignIn();
  $('nav').hidden = false;
  const hash = location.hash.replace(/^#/, '');
  const m = hash.match(/^\/t\/([^/]+)(\/edit)?$/);
  try {
    if (m) await (m[2] ? renderForm(decodeURIComponent(m[1])) : renderTenant(decodeURIComponent(m[1])));
    else if (hash === '/new') await renderForm(null);
    else await renderTenants();
  } catch (e) {
    showError(e);
  }
}

window.addEventListener('hashchange', () => {
  showError(null);
  route();
});
$('signout').addEventListener('click', signOut);
route();
