// Reading the gateway's structured request log out of the captured `wrangler dev`
// output (README "Logs, usage and rate limits"): one JSON line per request,
// interleaved with wrangler's own lines. Used by logs.test.mjs and, as a closing
// check, by the other files (usage, scrub).

import assert from 'node:assert/strict';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every field a request log line may have; anything else would be a leak risk. */
export const LOG_FIELDS = new Set([
  'request_id', 'tenant', 'method', 'route', 'provider', 'status', 'upstream_status', 'mcp_servers',
  'bytes_in', 'bytes_out', 'duration_ms', 'error_class', 'input_tokens', 'output_tokens', 'mcp_tool_calls', 'outcome',
]);

/** The worker's request log lines: lines of the output that parse as JSON objects with a `request_id`. */
export function requestLogLines(text) {
  const out = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line.startsWith('{')) continue;
    let v;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.request_id === 'string') out.push(v);
  }
  return out;
}

/** Log lines by request id (each id mapped to every line that carries it). */
export function linesById(text) {
  const m = new Map();
  for (const l of requestLogLines(text)) {
    if (!m.has(l.request_id)) m.set(l.request_id, []);
    m.get(l.request_id).push(l);
  }
  return m;
}

/** Waits until every id has a log line (guarded streams log when they end). */
export async function waitForLines(gw, ids, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = linesById(gw.log());
    const missing = ids.filter((id) => !m.has(id));
    if (!missing.length || Date.now() > deadline) return m;
    await sleep(50);
  }
}

/** The `route` the README's log line names for a request. */
// Which provider routes pass (the gateway's route table, written out again as the test's oracle).
const PASS = {
  openai: [/^chat\/completions(\/[^/]+)?$/, /^(completions|embeddings|moderations|batches|conversations|containers|evals|videos|assistants|threads|vector_stores)$/,
    /^(images|audio|fine_tuning|organization|conversations|containers|evals|videos|assistants|threads|vector_stores)\/.+$/, /^uploads\/[^/]+\/.+$/,
    /^batches\/[^/]+\/cancel$/, /^responses\/[^/]+\/cancel$/],
  anthropic: [/^messages\/batches\/[^/]+\/cancel$/, /^(complete|files|skills)$/, /^(skills|organizations)\/.+$/],
};

/** The log's route suffix for a provider path (`/v1/...`), as the gateway's route table decides it. */
function providerTreatment(p, method, upstream) {
  const path = decodeURIComponent(upstream.replace(/%(?![0-9a-f]{2})/gi, '%25')).toLowerCase().replace(/^\/v1\//, '');
  if (p === 'openai' && /^realtime(\/|$)/.test(path)) return 'realtime';
  if (!['POST', 'PUT', 'PATCH'].includes(method)) return 'passthrough';
  if (method === 'POST') {
    if (p === 'openai' && ['responses', 'responses/input_tokens', 'responses/compact'].includes(path)) return 'responses';
    if (p === 'openai' && path === 'files') return 'files';
    if (p === 'openai' && path === 'uploads') return 'uploads';
    if (p === 'anthropic' && ['messages', 'messages/count_tokens'].includes(path)) return 'messages';
    if (p === 'anthropic' && path === 'messages/batches') return 'message_batches';
    if (PASS[p].some((re) => re.test(path))) return 'passthrough';
  }
  return 'unknown';
}

export function expectedRoute(method, pathname) {
  if (pathname === '/healthz') return method === 'GET' ? 'healthz' : 'unknown';
  const admin = /^\/admin\/tenants\/([^/]*)(\/keys(\/[^/]+)?|\/usage)?$/.exec(pathname);
  if (admin) {
    // A wrong method or an invalid tenant id fails routing: then the route is still unknown.
    const allowed = admin[3] ? ['DELETE'] : admin[2] === '/keys' ? ['GET', 'POST'] : admin[2] === '/usage' ? ['GET'] : ['GET', 'PUT', 'DELETE'];
    return allowed.includes(method) && /^[A-Za-z0-9_-]{1,64}$/.test(admin[1]) ? 'admin' : 'unknown';
  }
  for (const p of ['openai', 'anthropic']) {
    if (pathname.startsWith(`/${p}/v1/`) && pathname.length > `/${p}/v1/`.length && !/(^|\/)(\.|%2e){1,2}(\/|$)|%2f|%5c|\/\/|\/$/i.test(pathname)) {
      return `${p}.${providerTreatment(p, method, pathname.slice(`/${p}`.length))}`;
    }
  }
  return 'unknown';
}

/**
 * Every response a client of this file saw (the harness's SEEN) that carries an
 * `mcpgate-request-id` has exactly one log line, with the same status, method
 * and route, and no field outside LOG_FIELDS. Returns the number checked.
 */
export async function assertEveryResponseLogged(gw, seen) {
  await Promise.all(seen.map((e) => e.done));
  const withId = seen.map((e) => ({ e, id: new Map(e.headers).get('mcpgate-request-id') }));
  const missingHeader = withId.filter((x) => !x.id).map((x) => `${x.e.method} ${x.e.url} -> ${x.e.status}`);
  assert.deepEqual(missingHeader, [], 'responses without an mcpgate-request-id header');
  const m = await waitForLines(gw, withId.map((x) => x.id));
  const problems = [];
  for (const { e, id } of withId) {
    const lines = m.get(id) ?? [];
    const what = `${e.method} ${new URL(e.url).pathname} -> ${e.status} (${id})`;
    if (lines.length !== 1) {
      problems.push(`${what}: ${lines.length} log lines`);
      continue;
    }
    const l = lines[0];
    if (l.status !== e.status) problems.push(`${what}: logged status ${l.status}`);
    if (l.method !== e.method) problems.push(`${what}: logged method ${l.method}`);
    const route = expectedRoute(e.method, new URL(e.url).pathname);
    if (l.route !== route) problems.push(`${what}: logged route ${l.route}, expected ${route}`);
    const extra = Object.keys(l).filter((k) => !LOG_FIELDS.has(k));
    if (extra.length) problems.push(`${what}: unexpected log fields ${extra.join(', ')}`);
  }
  assert.deepEqual(problems, [], 'request log lines');
  return withId.length;
}
