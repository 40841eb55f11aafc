// Load through the real gateway: many concurrent SSE streams held
// open at once through wrangler dev and workerd, every byte checked, and a mix
// of good and bad requests from many tenants fired while the streams are held,
// with nothing crossing between tenants.
//
// Sizes come from the environment so `make load` can run the long version
// (tests/load/load.test.mjs sets them):
//   MCPGATE_LOAD_STREAMS   concurrent streams held open   (default 1000)
//   MCPGATE_LOAD_MIX       good+bad requests at saturation (default 300)
//   MCPGATE_LOAD_ROUNDS    how many times to do both        (default 1)
//   MCPGATE_LOAD_DELTAS    text deltas per stream           (default 30)
//   MCPGATE_LOAD_VERBOSE   print progress while the streams open
// Each round after the first runs on a fresh gateway (see the round test).
//
// The provider emulator's `hold` fault mode sends the response headers and the
// first events at once and the rest only when the test releases it, so the
// test can see every stream open at the same time on both ends.

import { before, after, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { test, startStack, assertNoLeaks, newSecret } from './harness.mjs';

const STREAMS = Number(process.env.MCPGATE_LOAD_STREAMS ?? 1000);
const MIX = Number(process.env.MCPGATE_LOAD_MIX ?? 300);
const ROUNDS = Number(process.env.MCPGATE_LOAD_ROUNDS ?? 1);
const DELTAS = Number(process.env.MCPGATE_LOAD_DELTAS ?? 30);
const TENANTS = 12;
const MODEL = 'claude-sonnet-4-6';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (b) => createHash('sha256').update(b).digest('hex');

/** The rounds get a timeout that grows with their size. */
const bigTest = (name, fn) => nodeTest(name, { timeout: 60_000 + (STREAMS + MIX) * 300 }, fn);

let stack;
let gw;
const tenants = []; // {id, key, openaiKey, anthropicKey}
let agent;
const totals = { streams: 0, peak: 0, bytes: 0, mix: 0, mixByStatus: new Map() };

/** A gateway with its emulators, MCP server and TENANTS tenants. */
async function newStack() {
  stack = await startStack({ mcp: { crm: { type: 'bearer', tokens: [] } } });
  gw = stack.gw;
  tenants.length = 0;
  for (let i = 0; i < TENANTS; i++) {
    const id = `load-${String(i).padStart(2, '0')}`;
    const t = { id, openaiKey: stack.openaiKey(id), anthropicKey: i % 6 === 5 ? null : stack.anthropicKey(id) };
    const tok = newSecret(`crm token ${id}`, 'mcp_tok_');
    stack.servers.crm.auth.tokens.push(tok);
    t.crmToken = tok;
    await gw.putTenant(id, {
      providers: { openai: { api_key: t.openaiKey }, ...(t.anthropicKey ? { anthropic: { api_key: t.anthropicKey } } : {}) },
      mcp_servers: { crm: { url: stack.servers.crm.url, auth: { type: 'bearer', token: tok }, require_approval: 'never' } },
    });
    t.key = (await gw.createKey(id)).key;
    tenants.push(t);
  }
  agent?.destroy();
  agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
}

before(newStack);

after(async () => {
  agent?.destroy();
  await stack?.close();
});

/** The routes a held stream may take, with its request. */
const ROUTES = [
  { name: 'responses', emu: () => stack.openaiEmu, path: '/openai/v1/responses', headers: (t) => ({ authorization: `Bearer ${t.key}` }), body: () => ({ model: 'gpt-4.1', input: 'x', stream: true }), upKey: (t, rec) => rec.headers.authorization === `Bearer ${t.openaiKey}` },
  { name: 'messages', emu: () => stack.anthropicEmu, path: '/anthropic/v1/messages', headers: (t) => ({ 'x-api-key': t.key, 'anthropic-version': '2023-06-01' }), body: () => ({ model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] }), upKey: (t, rec) => rec.headers['x-api-key'] === t.anthropicKey, needs: 'anthropic' },
  { name: 'chat', emu: () => stack.openaiEmu, path: '/openai/v1/chat/completions', headers: (t) => ({ authorization: `Bearer ${t.key}` }), body: () => ({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'x' }] }), upKey: (t, rec) => rec.headers.authorization === `Bearer ${t.openaiKey}` },
];

/** Raw POST through the keep-alive agent; the body is collected with arrival times. */
function open(path, headers, body, { onFirstEvent, signal } = {}) {
  return new Promise((resolve) => {
    const buf = Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: gw.port, method: 'POST', path, agent, signal,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': buf.length },
    }, (res) => {
      const chunks = [];
      let seenEvent = false;
      res.on('data', (c) => {
        chunks.push(c);
        if (!seenEvent && c.includes('\n\n')) {
          seenEvent = true;
          onFirstEvent?.();
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), error: null }));
      res.on('error', (e) => resolve({ status: res.statusCode, body: Buffer.concat(chunks), error: e }));
      res.on('aborted', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), error: new Error('aborted') }));
    });
    req.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), error: e }));
    req.end(buf);
  });
}

/** Opens `n` held streams; resolves once every one is open on both ends (or throws). */
async function holdStreams(n, round) {
  const streams = [];
  let firstEvents = 0;
  for (let i = 0; i < n; i++) {
    const t = tenants[i % tenants.length];
    const candidates = ROUTES.filter((r) => r.needs !== 'anthropic' || t.anthropicKey);
    const route = candidates[Math.floor(i / tenants.length) % candidates.length];
    const tag = `r${round}-s${i}-${randomBytes(4).toString('hex')}`;
    const p = open(route.path, { ...route.headers(t), 'x-emu-fault': 'hold', 'x-emu-tag': tag, 'x-emu-deltas': String(DELTAS) }, route.body(), {
      onFirstEvent: () => {
        firstEvents++;
      },
    });
    const st = { t, route, tag, p, result: null };
    p.then((r) => {
      st.result = r;
    });
    streams.push(st);
    // Open them in bursts: a SYN flood on loopback is not what is being measured.
    if (i % 50 === 49) await sleep(20);
  }
  const held = () => stack.openaiEmu.faults.holding() + stack.anthropicEmu.faults.holding();
  const deadline = Date.now() + 30_000 + n * 60;
  let lastReport = Date.now();
  while ((held() < n || firstEvents < n) && Date.now() < deadline) {
    await sleep(100);
    if (process.env.MCPGATE_LOAD_VERBOSE && Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      const ended = streams.filter((s) => s.result).length;
      const upstream = streams.filter((s) => s.route.emu().history.some((h) => h.headers['x-emu-tag'] === s.tag)).length;
      console.log(`# round ${round}: ${held()} held at the emulator, ${firstEvents} first events at the client, ${upstream} reached the emulator, ${ended} ended`);
    }
  }
  const ended = streams.filter((s) => s.result);
  const byStatus = {};
  for (const s of ended) {
    const k = s.result.error ? `error ${s.result.error.code ?? s.result.error.message}` : s.result.status;
    byStatus[k] = (byStatus[k] ?? 0) + 1;
  }
  const upstream = streams.filter((s) => s.route.emu().history.some((h) => h.headers['x-emu-tag'] === s.tag)).length;
  const diag = `${upstream} reached the emulator; ${ended.length} already ended: ${JSON.stringify(byStatus)}${ended[0] ? `, e.g. ${ended[0].result.body.toString().slice(0, 160)}` : ''}`;
  return { streams, held: held(), firstEvents: () => firstEvents, heldNow: held, diag };
}

/** Releases the held streams and checks every byte of every one. */
async function finishStreams(streams) {
  stack.openaiEmu.faults.release();
  stack.anthropicEmu.faults.release();
  const results = await Promise.all(streams.map((s) => s.p));
  const problems = [];
  let bytes = 0;
  for (let i = 0; i < streams.length; i++) {
    const s = streams[i];
    const r = results[i];
    const sent = s.route.emu().faults.byTag(s.tag);
    const what = `${s.route.name} ${s.tag} (${s.t.id})`;
    if (r.error) problems.push(`${what}: ${r.error.message}`);
    else if (r.status !== 200) problems.push(`${what}: status ${r.status} ${r.body.toString().slice(0, 200)}`);
    else if (!sent) problems.push(`${what}: the emulator never answered it`);
    else if (sent.endedAt === null) problems.push(`${what}: the emulator did not finish it (aborted: ${sent.abortedAt !== null})`);
    else if (r.body.length !== sent.bytes || sha(r.body) !== sent.sha256) problems.push(`${what}: ${r.body.length} of ${sent.bytes} bytes, checksum ${sha(r.body) === sent.sha256 ? 'ok' : 'differs'}`);
    else bytes += r.body.length;
    // The provider saw this tenant's own provider key.
    const rec = s.route.emu().history.findLast((h) => h.headers['x-emu-tag'] === s.tag);
    if (!rec) problems.push(`${what}: not recorded upstream`);
    else if (!s.route.upKey(s.t, rec)) problems.push(`${what}: went upstream with another provider key`);
  }
  return { problems, bytes };
}

/** One good or bad request of the mix; returns a list of problems. */
function mixCase(i, round) {
  const t = tenants[(i * 7) % tenants.length];
  const other = tenants[(i * 7 + 1) % tenants.length];
  const nonce = `n${round}x${i}x${randomBytes(5).toString('hex')}`;
  const kind = ['good-oai', 'good-ant', 'malformed', 'unknown-label', 'wrong-key', 'client-credential', 'no-provider', 'good-mcp'][i % 8];
  const oai = { authorization: `Bearer ${t.key}` };
  const ant = { 'x-api-key': t.key, 'anthropic-version': '2023-06-01' };
  switch (kind) {
    case 'good-oai':
      return { kind, t, nonce, path: '/openai/v1/responses', headers: oai, body: { model: 'gpt-4.1', input: `say ${nonce}` }, status: 200, mentions: nonce };
    case 'no-provider': {
      const np = tenants.find((x) => !x.anthropicKey);
      return { kind, t: np, nonce, path: '/anthropic/v1/messages', headers: { 'x-api-key': np.key, 'anthropic-version': '2023-06-01' }, body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: nonce }] }, status: 403 };
    }
    case 'good-ant':
      if (!t.anthropicKey) return { kind: 'no-provider', t, nonce, path: '/anthropic/v1/messages', headers: ant, body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: nonce }] }, status: 403 };
      return { kind, t, nonce, path: '/anthropic/v1/messages', headers: ant, body: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: `say ${nonce}` }] }, status: 200, mentions: nonce };
    case 'good-mcp':
      return { kind, t, nonce, path: '/openai/v1/responses', headers: oai, body: { model: 'gpt-4.1', input: `call search query=${nonce}`, tools: [{ type: 'mcp', server_label: 'crm' }] }, status: 200, mentions: nonce, mcp: true };
    case 'malformed':
      return { kind, t, nonce, path: '/openai/v1/responses', headers: oai, raw: `{"model":"gpt-4.1","input":"${nonce}",`, status: 400 };
    case 'unknown-label':
      return { kind, t, nonce, path: '/openai/v1/responses', headers: oai, body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: `lbl${nonce}` }] }, status: 400, mentions: `lbl${nonce}` };
    case 'wrong-key':
      return { kind, t, nonce, path: '/anthropic/v1/messages', headers: { 'x-api-key': `mgk_${nonce}`, 'anthropic-version': '2023-06-01' }, body: { model: MODEL, max_tokens: 5, messages: [] }, status: 401 };
    case 'client-credential':
      return { kind, t, nonce, path: '/openai/v1/responses', headers: oai, body: { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm', authorization: other.crmToken }] }, status: 400 };
    default:
      throw new Error(kind);
  }
}

async function runMix(n, round) {
  const cases = Array.from({ length: n }, (_, i) => mixCase(i, round));
  const nonces = cases.map((c) => c.nonce);
  const answers = await Promise.all(cases.map((c) => open(c.path, c.headers, c.raw ?? c.body).catch((e) => ({ status: 0, body: Buffer.alloc(0), error: e }))));
  const problems = [];
  for (let i = 0; i < n; i++) {
    const c = cases[i];
    const r = answers[i];
    const text = r.body.toString('utf8');
    totals.mixByStatus.set(r.status, (totals.mixByStatus.get(r.status) ?? 0) + 1);
    const what = `${c.kind} ${c.t.id} ${c.nonce}`;
    if (r.error) {
      problems.push(`${what}: ${r.error.message}`);
      continue;
    }
    if (r.status !== c.status) problems.push(`${what}: status ${r.status}, expected ${c.status}: ${text.slice(0, 200)}`);
    if (c.mentions && !text.includes(c.mentions)) problems.push(`${what}: the answer does not carry its own ${c.mentions}`);
    // Nothing of another request in this answer: no other nonce, no other tenant's MCP token.
    const foreign = nonces.filter((x) => x !== c.nonce && text.includes(x));
    if (foreign.length) problems.push(`${what}: the answer carries other requests' nonces ${foreign.slice(0, 3)}`);
    for (const o of tenants) if (text.includes(o.crmToken) || text.includes(o.key)) problems.push(`${what}: the answer carries a secret of ${o.id}`);
    if (c.status >= 400) {
      const j = JSON.parse(text);
      if (c.path.startsWith('/anthropic')) assert.equal(j.type, 'error', what);
      else assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type'], what);
    }
  }
  // Upstream: each good request went up once, with its own tenant's provider key;
  // each bad one never did; each MCP call used its own tenant's token.
  const all = [...stack.openaiEmu.history, ...stack.anthropicEmu.history];
  for (const c of cases) {
    const ups = all.filter((h) => h.text.includes(c.nonce));
    const what = `${c.kind} ${c.t.id} ${c.nonce}`;
    if (c.status !== 200) {
      if (ups.length) problems.push(`${what}: a rejected request reached the provider`);
      continue;
    }
    if (ups.length !== 1) {
      problems.push(`${what}: reached the provider ${ups.length} times`);
      continue;
    }
    const key = ups[0].provider === 'openai' ? ups[0].headers.authorization : ups[0].headers['x-api-key'];
    const want = ups[0].provider === 'openai' ? `Bearer ${c.t.openaiKey}` : c.t.anthropicKey;
    if (key !== want) problems.push(`${what}: went upstream with another tenant's provider key`);
    if (c.mcp) {
      const calls = stack.servers.crm.toolCalls('search').filter((x) => x.arguments?.query === c.nonce);
      if (calls.length !== 1) problems.push(`${what}: ${calls.length} MCP calls`);
      else if (calls[0].credential !== c.t.crmToken) problems.push(`${what}: the MCP call carried another tenant's token`);
    }
  }
  return problems;
}

for (let round = 1; round <= ROUNDS; round++) {
  bigTest(`round ${round}: ${STREAMS} concurrent SSE streams held open through the gateway, ${MIX} good and bad requests from ${TENANTS} tenants at saturation, then every byte verified`, async () => {
    if (round > 1) {
      // A fresh gateway per round: after a round of this size wrangler dev's own
      // ProxyWorker is left with stale pooled connections to the worker, and
      // POSTs that land on one get its 503 "Your worker restarted mid-request"
      // (GETs hang in its retry queue). That is the dev proxy, not the gateway.
      await assertNoLeaks(stack);
      await stack.close();
      await newStack();
    }
    const t0 = Date.now();
    const { streams, held, firstEvents, heldNow, diag } = await holdStreams(STREAMS, round);
    const openMs = Date.now() - t0;
    assert.equal(held, STREAMS, `streams open at the emulator at once: ${held} of ${STREAMS} (${diag})`);
    assert.equal(firstEvents(), STREAMS, `streams whose first events reached the client: ${firstEvents()} of ${STREAMS} (${diag})`);
    totals.peak = Math.max(totals.peak, held);

    // At saturation: the mix.
    const t1 = Date.now();
    const mixProblems = await runMix(MIX, round);
    const mixMs = Date.now() - t1;
    totals.mix += MIX;
    // Every held stream is still open after the mix.
    assert.equal(heldNow(), STREAMS, 'a held stream was dropped during the mix');
    assert.deepEqual(mixProblems, [], `mix at saturation: ${mixProblems.length} problems`);

    const t2 = Date.now();
    const { problems, bytes } = await finishStreams(streams);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} streams with problems`);
    totals.streams += STREAMS;
    totals.bytes += bytes;
    console.log(`# round ${round}: ${STREAMS} streams held at once (opened in ${openMs} ms), ${MIX} mixed requests in ${mixMs} ms, ${bytes} stream bytes verified by sha256 in ${Date.now() - t2} ms`);
  });
}

// Under `wrangler dev` every request passes wrangler's ProxyWorker (a Durable
// Object on compatibility date 2023-12-18, without `enable_request_signal`),
// which notices a client hang-up only when it next writes to the client. While
// the provider is silent nothing is written, so the hang-up never reaches the
// gateway's `request.signal` in this setup; on the edge it does. The test runs
// and reports, as a TODO, until the dev proxy passes disconnects on.
nodeTest('a client that hangs up on a silent stream (no upstream bytes) still cancels the upstream request within 1 s', {
  timeout: 60_000,
  todo: 'wrangler dev\'s ProxyWorker does not pass a client hang-up on while the stream is silent',
}, async () => {
  const t = tenants[0];
  for (const route of ROUTES) {
    const tag = `silent-${route.name}-${randomBytes(4).toString('hex')}`;
    const ac = new AbortController();
    let first;
    const firstEvent = new Promise((r) => {
      first = r;
    });
    const p = open(route.path, { ...route.headers(t), 'x-emu-fault': 'hold', 'x-emu-tag': tag }, route.body(), { onFirstEvent: () => first(), signal: ac.signal });
    await firstEvent;
    await sleep(300); // the upstream is silent now
    const abortAt = Date.now();
    ac.abort();
    await p;
    const s = route.emu().faults.byTag(tag);
    await Promise.race([s.closed, sleep(3000)]);
    assert.ok(s.abortedAt !== null, `${route.name}: the silent upstream stream was not aborted within 3 s of the hang-up`);
    assert.ok(s.abortedAt - abortAt < 1000, `${route.name}: aborted ${s.abortedAt - abortAt} ms after the hang-up`);
  }
});

test('totals; no secret leaked to clients, KV or the log; no panic', async () => {
  const statuses = [...totals.mixByStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
  console.log(`# load totals: ${totals.streams} streams (peak ${totals.peak} held at once), ${totals.bytes} bytes verified, ${totals.mix} mixed requests (${statuses})`);
  assert.ok(totals.streams >= STREAMS * ROUNDS);
  await assertNoLeaks(stack);
  assert.doesNotMatch(stack.gw.log(), /panic|Uncaught|hung/i);
});
