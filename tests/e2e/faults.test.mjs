// Upstream faults and client disconnects through the real gateway,
// against the provider emulators' fault modes (tests/emulators/faults.mjs):
//
//  - provider 4xx/5xx/429 answers pass through unchanged (status, body bytes,
//    retry-after and x-should-retry), on rewritten and pass-through routes;
//  - no response headers within UPSTREAM_TIMEOUT_MS → 504, and the upstream
//    request is aborted; a reset before the headers or a closed port → 502;
//  - a reset, close or stall in the middle of an SSE stream → the client gets
//    every whole event that was sent, then one final error event in the
//    provider's own SSE shape, and the official SDKs raise;
//  - answers written in odd-sized chunks or with multi-byte characters cut
//    across writes arrive byte for byte; so do chunked request bodies;
//  - a client that hangs up mid-stream cancels the upstream request within 1 s.
//
// This gateway runs with UPSTREAM_TIMEOUT_MS=3000 and STREAM_IDLE_TIMEOUT_MS=1500.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { faultDeltas, MULTIBYTE_TEXT } from '../emulators/faults.mjs';
import { test, rejects, assertNoLeaks } from './harness.mjs';
import { standardStack, assertNothingGatewaySideUpstream } from './setup.mjs';

const UPSTREAM_TIMEOUT_MS = 3000;
const IDLE_MS = 1500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (b) => createHash('sha256').update(b).digest('hex');

let S;
let stack;
let gw;
/** Gateway request ids (mcpgate-request-id) by the outcome their log line must show. */
const EXPECTED_OUTCOME = new Map();

before(async () => {
  S = await standardStack({ vars: { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS), STREAM_IDLE_TIMEOUT_MS: String(IDLE_MS) } });
  ({ stack, gw } = S);
});

after(async () => {
  await stack?.close();
});

const V = '2023-06-01';
const MODEL = 'claude-sonnet-4-6';
const oaiH = () => ({ authorization: `Bearer ${S.keys.acme}`, 'content-type': 'application/json' });
const antH = () => ({ 'x-api-key': S.keys.acme, 'anthropic-version': V, 'content-type': 'application/json' });
const newTag = (what) => `${what}-${randomBytes(4).toString('hex')}`;

/**
 * The SSE routes a fault can hit, each with its request and the error event the
 * gateway must end a broken stream with (README "Streaming, failures and scrubbing").
 */
const SSE_ROUTES = {
  responses: {
    emu: () => stack.openaiEmu,
    path: '/openai/v1/responses',
    headers: oaiH,
    body: (mode, extra = {}) => ({ model: `fault-${mode}`, input: 'x', stream: true, ...extra }),
    checkError(ev) {
      assert.equal(ev.event, 'error');
      const d = JSON.parse(ev.data);
      assert.equal(d.type, 'error');
      assert.equal(d.code, 'stream_interrupted');
      assert.equal(typeof d.message, 'string');
      assert.ok('param' in d);
    },
  },
  responsesMcp: {
    // Credentials injected → the answer also goes through the scrubber.
    emu: () => stack.openaiEmu,
    path: '/openai/v1/responses',
    headers: oaiH,
    body: (mode) => ({ model: `fault-${mode}`, input: 'x', stream: true, tools: [{ type: 'mcp', server_label: 'crm' }] }),
    checkError: (ev) => SSE_ROUTES.responses.checkError(ev),
  },
  chat: {
    emu: () => stack.openaiEmu,
    path: '/openai/v1/chat/completions',
    headers: oaiH,
    body: (mode) => ({ model: `fault-${mode}`, stream: true, messages: [{ role: 'user', content: 'x' }] }),
    checkError(ev) {
      assert.equal(ev.event, null);
      const d = JSON.parse(ev.data);
      assert.deepEqual(Object.keys(d), ['error']);
      assert.equal(d.error.type, 'api_error');
      assert.equal(d.error.code, 'stream_interrupted');
    },
  },
  messages: {
    emu: () => stack.anthropicEmu,
    path: '/anthropic/v1/messages',
    headers: antH,
    body: (mode) => ({ model: `fault-${mode}`, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] }),
    checkError(ev) {
      assert.equal(ev.event, 'error');
      const d = JSON.parse(ev.data);
      assert.equal(d.type, 'error');
      assert.equal(d.error.type, 'api_error');
      assert.equal(typeof d.error.message, 'string');
    },
  },
  messagesMcp: {
    emu: () => stack.anthropicEmu,
    path: '/anthropic/v1/messages',
    headers: antH,
    body: (mode) => ({
      model: `fault-${mode}`, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }],
      mcp_servers: [{ type: 'url', name: 'crm', url: 'https://placeholder.invalid/mcp' }],
    }),
    checkError: (ev) => SSE_ROUTES.messages.checkError(ev),
  },
};

/** The text an SSE answer carries, in any of the three dialects. */
function textOf(events) {
  let text = '';
  for (const ev of events) {
    if (!ev.data.startsWith('{')) continue;
    const d = JSON.parse(ev.data);
    if (d.type === 'response.output_text.delta') text += d.delta;
    else if (d.type === 'content_block_delta') text += d.delta.text ?? '';
    else if (d.object === 'chat.completion.chunk') text += d.choices[0]?.delta?.content ?? '';
  }
  return text;
}

/** Reads a whole response body as bytes, with the time of its last byte. */
async function readAll(res) {
  const chunks = [];
  let lastAt = null;
  for await (const c of res.body) {
    chunks.push(Buffer.from(c));
    lastAt = Date.now();
  }
  return { body: Buffer.concat(chunks), lastAt };
}

/** Splits SSE bytes into events ({event, data, raw}); asserts the text ends on an event boundary. */
function sseEvents(buf) {
  const text = buf.toString('utf8');
  assert.ok(text === '' || text.endsWith('\n\n'), `the stream ends with a whole event: ${JSON.stringify(text.slice(-80))}`);
  return text.split('\n\n').slice(0, -1).map((raw) => {
    let event = null;
    const data = [];
    for (const line of raw.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    return { event, data: data.join('\n'), raw: `${raw}\n\n` };
  });
}

async function post(route, mode, { tag = newTag(mode), headers = {}, signal } = {}) {
  const r = SSE_ROUTES[route];
  const res = await gw.fetch(r.path, {
    method: 'POST', headers: { ...r.headers(), 'x-emu-tag': tag, ...headers }, body: JSON.stringify(r.body(mode)), signal,
  });
  return { res, tag, emu: r.emu() };
}

// ---------------------------------------------------------------------------
// Provider errors pass through

test('provider 4xx/5xx/429 answers pass through unchanged: status, body bytes, retry-after, x-should-retry', async () => {
  const cases = [
    ['POST', '/openai/v1/responses', oaiH, { model: 'gpt-4.1', input: 'x' }, [400, 404, 409, 422, 429, 500, 503]],
    ['POST', '/openai/v1/responses', oaiH, { model: 'gpt-4.1', input: 'x', tools: [{ type: 'mcp', server_label: 'crm' }] }, [429, 500]],
    ['POST', '/openai/v1/chat/completions', oaiH, { model: 'gpt-4.1', messages: [] }, [400, 429, 500, 502, 503]],
    ['GET', '/openai/v1/models', oaiH, undefined, [401, 403, 429, 500]],
    ['POST', '/anthropic/v1/messages', antH, { model: MODEL, max_tokens: 5, messages: [] }, [400, 402, 404, 413, 429, 500, 504, 529]],
    ['POST', '/anthropic/v1/messages', antH, { model: MODEL, max_tokens: 5, messages: [], mcp_servers: [{ type: 'url', name: 'crm', url: 'https://placeholder.invalid/mcp' }] }, [429, 529]],
    ['POST', '/anthropic/v1/messages/count_tokens', antH, { model: MODEL, messages: [] }, [429, 500]],
    ['GET', '/anthropic/v1/models', antH, undefined, [429, 503]],
  ];
  let n = 0;
  for (const [method, path, headers, body, statuses] of cases) {
    for (const status of statuses) {
      const tag = newTag(`s${status}`);
      const r = await gw.request(method, path, {
        headers: { ...headers(), 'x-emu-fault': `status-${status}`, 'x-emu-tag': tag }, body,
      });
      const emu = path.startsWith('/openai') ? stack.openaiEmu : stack.anthropicEmu;
      const sent = emu.faults.byTag(tag);
      const what = `${method} ${path} status-${status}`;
      assert.ok(sent, `${what}: the emulator answered`);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(sha(Buffer.from(r.text)), sent.sha256, `${what}: body bytes unchanged`);
      assert.equal(r.headers.get('x-emu-fault'), String(status), `${what}: provider headers kept`);
      assert.equal(r.headers.get('retry-after'), [429, 503, 529].includes(status) ? '7' : null, `${what}: retry-after`);
      assert.equal(r.headers.get('x-should-retry'), status >= 500 || status === 429 ? 'true' : null, `${what}: the provider's x-should-retry is kept`);
      if (path.startsWith('/openai')) {
        assert.ok(r.headers.get('x-request-id'), what);
        if (status === 429) assert.equal(r.headers.get('retry-after-ms'), '7000', what);
      } else {
        assert.ok(r.headers.get('request-id'), what);
        assert.equal(r.json.type, 'error', what);
      }
      n++;
    }
  }
  // The SDKs see the provider's error class, type and retry-after.
  const oe = await rejects(gw.openai(S.keys.acme).responses.create({ model: 'fault-429', input: 'x' }));
  assert.ok(oe instanceof OpenAI.RateLimitError, oe?.constructor?.name);
  assert.equal(oe.code, 'rate_limit_exceeded');
  assert.equal(oe.headers.get('retry-after'), '7');
  const oe5 = await rejects(gw.openai(S.keys.acme).chat.completions.create({ model: 'fault-500', messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(oe5 instanceof OpenAI.InternalServerError);
  assert.equal(oe5.status, 500);
  assert.equal(oe5.type, 'server_error');
  const ae = await rejects(gw.anthropic(S.keys.acme).messages.create({ model: 'fault-429', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(ae instanceof Anthropic.RateLimitError, ae?.constructor?.name);
  assert.equal(ae.type, 'rate_limit_error');
  assert.equal(ae.headers.get('retry-after'), '7');
  const ae529 = await rejects(gw.anthropic(S.keys.acme).messages.create({ model: 'fault-529', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(ae529.status, 529);
  assert.equal(ae529.type, 'overloaded_error');
  console.log(`# provider error answers checked: ${n} raw + 4 through the SDKs`);
});

// ---------------------------------------------------------------------------
// No headers, reset before headers

test(`no response headers within UPSTREAM_TIMEOUT_MS (${UPSTREAM_TIMEOUT_MS} ms) → 504 api_error in both shapes; the upstream request is aborted`, async () => {
  const cases = [
    ['/openai/v1/responses', oaiH, { model: 'fault-no-headers', input: 'x' }, 'openai'],
    ['/openai/v1/chat/completions', oaiH, { model: 'fault-no-headers', messages: [] }, 'openai'],
    ['/anthropic/v1/messages', antH, { model: 'fault-no-headers', max_tokens: 5, messages: [] }, 'anthropic'],
  ];
  await Promise.all(cases.map(async ([path, headers, body, shape]) => {
    const tag = newTag('nohdr');
    const t0 = Date.now();
    const r = await gw.request('POST', path, { headers: { ...headers(), 'x-emu-tag': tag }, body });
    const took = Date.now() - t0;
    assert.equal(r.status, 504, `${path}: ${r.text}`);
    if (shape === 'openai') {
      assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(r.json.error.type, 'api_error');
    } else {
      assert.equal(r.json.type, 'error');
      assert.equal(r.json.error.type, 'api_error');
    }
    assert.notEqual(r.headers.get('x-should-retry'), 'false', 'a timeout may be retried');
    assert.ok(took >= UPSTREAM_TIMEOUT_MS - 50 && took < UPSTREAM_TIMEOUT_MS + 4000, `${path}: answered after ${took} ms`);
    const emu = path.startsWith('/openai') ? stack.openaiEmu : stack.anthropicEmu;
    const s = emu.faults.byTag(tag);
    for (let i = 0; i < 20 && s.abortedAt === null; i++) await sleep(100);
    assert.ok(s.abortedAt !== null, `${path}: the gateway aborted the upstream request`);
    assert.ok(s.abortedAt - s.startedAt < UPSTREAM_TIMEOUT_MS + 1500, `${path}: aborted ${s.abortedAt - s.startedAt} ms after it started`);
  }));
  const e = await rejects(gw.anthropic(S.keys.acme).messages.create({ model: 'fault-no-headers', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }));
  assert.ok(e instanceof Anthropic.APIError);
  assert.equal(e.status, 504);
  assert.equal(e.type, 'api_error');
});

test('a reset before the response headers → 502 api_error in both shapes', async () => {
  const o = await gw.request('POST', '/openai/v1/responses', { headers: oaiH(), body: { model: 'fault-reset-before-headers', input: 'x' } });
  assert.equal(o.status, 502, o.text);
  assert.equal(o.json.error.type, 'api_error');
  const c = await gw.request('GET', '/openai/v1/models', { headers: { ...oaiH(), 'x-emu-fault': 'reset-before-headers' } });
  assert.equal(c.status, 502, c.text);
  assert.equal(c.json.error.type, 'api_error');
  const a = await gw.request('POST', '/anthropic/v1/messages', { headers: antH(), body: { model: 'fault-reset-before-headers', max_tokens: 5, messages: [] } });
  assert.equal(a.status, 502, a.text);
  assert.equal(a.json.type, 'error');
  assert.equal(a.json.error.type, 'api_error');
});

// ---------------------------------------------------------------------------
// Broken streams

for (const mode of ['reset-midstream', 'close-midstream', 'stall']) {
  test(`${mode}: every whole event, then one error event in the provider's own SSE shape (all SSE routes)`, async () => {
    await Promise.all(Object.keys(SSE_ROUTES).map(async (route) => {
      const { res, tag, emu } = await post(route, mode);
      assert.equal(res.status, 200, route);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/, route);
      EXPECTED_OUTCOME.set(res.headers.get('mcpgate-request-id'), mode === 'stall' ? 'upstream_stalled' : 'upstream_reset');
      const { body, lastAt } = await readAll(res);
      const s = emu.faults.byTag(tag);
      const what = `${route} ${mode}`;
      assert.ok(s.complete.length > 0, what);
      assert.ok(body.subarray(0, s.complete.length).equals(s.complete), `${what}: the whole events arrive unchanged`);
      const tail = sseEvents(body.subarray(s.complete.length));
      assert.equal(tail.length, 1, `${what}: exactly one event after the whole ones: ${body.subarray(s.complete.length)}`);
      SSE_ROUTES[route].checkError(tail[0]);
      if (mode === 'stall') {
        const silentFor = lastAt - s.lastWriteAt;
        assert.ok(silentFor >= IDLE_MS - 100, `${what}: error event after ${silentFor} ms of silence (idle timeout ${IDLE_MS})`);
        assert.ok(silentFor < IDLE_MS + 3000, `${what}: error event only after ${silentFor} ms of silence (idle timeout ${IDLE_MS})`);
        // The stalled upstream request is cancelled.
        for (let i = 0; i < 20 && s.abortedAt === null; i++) await sleep(100);
        assert.ok(s.abortedAt !== null, `${what}: the stalled upstream request was aborted`);
      }
    }));
  });
}

test('broken streams make the official SDKs raise (Anthropic event: error, Chat Completions data error) or yield the Responses error event', async () => {
  for (const mode of ['reset-midstream', 'stall']) {
    // Anthropic: iterating the raw stream throws an APIError with the event's type.
    const stream = await gw.anthropic(S.keys.acme).messages.create({ model: `fault-${mode}`, max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'x' }] });
    const seen = [];
    const e = await rejects((async () => {
      for await (const ev of stream) seen.push(ev.type);
    })());
    assert.ok(e instanceof Anthropic.APIError, `${mode}: ${e}`);
    assert.equal(e.error?.error?.type, 'api_error', mode);
    assert.ok(seen.includes('message_start'), mode);
    // The helper's finalMessage() rejects too.
    const e2 = await rejects(gw.anthropic(S.keys.acme).messages.stream({ model: `fault-${mode}`, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).finalMessage());
    assert.ok(e2 instanceof Anthropic.APIError, `${mode}: ${e2}`);

    // Chat Completions: a data line with an `error` object makes the SDK throw.
    const chat = await gw.openai(S.keys.acme).chat.completions.create({ model: `fault-${mode}`, stream: true, messages: [{ role: 'user', content: 'x' }] });
    const ce = await rejects((async () => {
      for await (const _ of chat);
    })());
    assert.ok(ce instanceof OpenAI.APIError, `${mode}: ${ce}`);
    assert.equal(ce.code, 'stream_interrupted');

    // Responses: the SDK yields the API's `error` event (type error, code stream_interrupted)
    // as the last event, never a response.completed.
    const rs = await gw.openai(S.keys.acme).responses.create({ model: `fault-${mode}`, input: 'x', stream: true });
    const types = [];
    let last;
    for await (const ev of rs) {
      types.push(ev.type);
      last = ev;
    }
    assert.equal(last.type, 'error', types.join(','));
    assert.equal(last.code, 'stream_interrupted');
    assert.ok(!types.includes('response.completed'));
    // The stream helper raises it: finalResponse() rejects with the error event.
    const helper = gw.openai(S.keys.acme).responses.stream({ model: `fault-${mode}`, input: 'x' });
    const he = await rejects(helper.finalResponse());
    assert.equal(he?.type, 'error', `${mode}: ${JSON.stringify(he)}`);
    assert.equal(he.code, 'stream_interrupted');
  }
});

// ---------------------------------------------------------------------------
// Odd chunking, multi-byte characters

test('answers in odd-sized chunks and with multi-byte characters cut across writes arrive byte for byte (all SSE routes)', async () => {
  let bytes = 0;
  for (const mode of ['odd-chunks', 'multibyte-split']) {
    await Promise.all(Object.keys(SSE_ROUTES).map(async (route) => {
      const { res, tag, emu } = await post(route, mode);
      assert.equal(res.status, 200);
      const { body } = await readAll(res);
      const s = emu.faults.byTag(tag);
      assert.ok(s.endedAt, `${route} ${mode}: the emulator finished`);
      assert.equal(body.length, s.bytes, `${route} ${mode}: byte count`);
      assert.equal(sha(body), s.sha256, `${route} ${mode}: checksum`);
      bytes += body.length;
      // And the text is whole: the deltas join to the emulator's text.
      const text = textOf(sseEvents(body));
      assert.equal(text, faultDeltas(tag).join(''), `${route} ${mode}: text`);
      assert.ok(!text.includes('\ufffd'), 'no replacement characters');
    }));
  }
  // Through the SDKs too.
  const tag = newTag('sdk');
  const st = await gw.openai(S.keys.acme).responses.create({ model: 'fault-multibyte-split', input: 'x', stream: true }, { headers: { 'x-emu-tag': tag } });
  let otext = '';
  for await (const ev of st) if (ev.type === 'response.output_text.delta') otext += ev.delta;
  assert.equal(otext, faultDeltas(tag).join(''));
  const tag2 = newTag('sdk');
  const ms = gw.anthropic(S.keys.acme).messages.stream({ model: 'fault-odd-chunks', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-emu-tag': tag2 } });
  const msg = await ms.finalMessage();
  assert.equal(msg.content[0].text, faultDeltas(tag2).join(''));
  assert.ok(MULTIBYTE_TEXT.length > 0);
  console.log(`# odd-chunk / multibyte answers verified: ${bytes} bytes`);
});

/** Sends a request body in the given pieces with chunked transfer encoding (no content-length). */
function chunkedRequest(path, headers, pieces) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path, headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    (async () => {
      for (const p of pieces) {
        req.write(p);
        await sleep(2);
      }
      req.end();
    })();
  });
}

test('chunked request bodies in odd pieces, multi-byte characters cut across chunks, arrive intact upstream', async () => {
  const text = `${MULTIBYTE_TEXT.repeat(40)} call nothing`;
  const cases = [
    ['/openai/v1/chat/completions', oaiH(), { model: 'gpt-4.1', messages: [{ role: 'user', content: text }] }, stack.openaiEmu, '/v1/chat/completions'],
    ['/openai/v1/responses', oaiH(), { model: 'gpt-4.1', input: text, metadata: { k: text.slice(0, 100) } }, stack.openaiEmu, '/v1/responses'],
    ['/anthropic/v1/messages', antH(), { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: text }] }, stack.anthropicEmu, '/v1/messages'],
    ['/anthropic/v1/messages/count_tokens', antH(), { model: MODEL, messages: [{ role: 'user', content: text }] }, stack.anthropicEmu, '/v1/messages/count_tokens'],
  ];
  for (const [path, headers, body, emu, upPath] of cases) {
    const buf = Buffer.from(JSON.stringify(body), 'utf8');
    const pieces = [];
    let at = 0;
    for (let i = 0; at < buf.length; i++) {
      // Cut right after a multi-byte lead byte when there is one nearby, else an odd size.
      let n = [1, 3, 7, 13, 31, 61, 127][i % 7];
      const lead = buf.subarray(at, at + n + 8).findIndex((b) => b >= 0xc0);
      if (lead >= 0) n = lead + 1;
      pieces.push(buf.subarray(at, at + n));
      at += n;
    }
    stack.reset();
    const r = await chunkedRequest(path, headers, pieces);
    assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 300)}`);
    const up = emu.requestsTo(upPath);
    assert.equal(up.length, 1, path);
    assert.ok(up[0].body.equals(buf), `${path}: the provider received the same bytes`);
  }
});

// ---------------------------------------------------------------------------
// Client disconnects

test('a client that hangs up mid-stream cancels the upstream request within 1 s (all SSE routes, raw and SDK)', async () => {
  // Plain fetch here: the recording fetch tees every body and would keep reading after the abort.
  const lags = [];
  for (const route of Object.keys(SSE_ROUTES)) {
    const r = SSE_ROUTES[route];
    const tag = newTag('hangup');
    const ac = new AbortController();
    const res = await fetch(`${gw.url}${r.path}`, {
      method: 'POST', headers: { ...r.headers(), 'x-emu-tag': tag }, body: JSON.stringify(r.body('slow')), signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let got = 0;
    while (got < 600) {
      const x = await reader.read();
      assert.ok(!x.done, `${route}: the slow stream ended early`);
      got += x.value.length;
    }
    const abortAt = Date.now();
    ac.abort();
    EXPECTED_OUTCOME.set(res.headers.get('mcpgate-request-id'), 'client_cancelled');
    const s = r.emu().faults.byTag(tag);
    await Promise.race([s.closed, sleep(3000)]);
    assert.ok(s.abortedAt !== null, `${route}: the emulator's stream was not aborted within 3 s`);
    const lag = s.abortedAt - abortAt;
    lags.push(lag);
    assert.ok(lag < 1000, `${route}: the upstream stream was aborted ${lag} ms after the client hung up`);
    assert.equal(s.endedAt, null, `${route}: the upstream stream did not run to its end`);
  }
  // The SDKs: leaving the loop aborts the request.
  const sdk = [
    [gw.anthropic(S.keys.acme, { fetch }), stack.anthropicEmu, (c, h) => c.messages.create({ model: 'fault-slow', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'x' }] }, h)],
    [gw.openai(S.keys.acme, { fetch }), stack.openaiEmu, (c, h) => c.responses.create({ model: 'fault-slow', input: 'x', stream: true }, h)],
    [gw.openai(S.keys.acme, { fetch }), stack.openaiEmu, (c, h) => c.chat.completions.create({ model: 'fault-slow', stream: true, messages: [{ role: 'user', content: 'x' }] }, h)],
  ];
  for (const [client, emu, call] of sdk) {
    const tag = newTag('sdk-break');
    const st = await call(client, { headers: { 'x-emu-tag': tag } });
    let n = 0;
    for await (const _ of st) if (++n === 5) break;
    const abortAt = Date.now();
    const s = emu.faults.byTag(tag);
    await Promise.race([s.closed, sleep(3000)]);
    assert.ok(s.abortedAt !== null, `SDK break (${tag}): the emulator's stream was not aborted within 3 s`);
    lags.push(s.abortedAt - abortAt);
    assert.ok(s.abortedAt - abortAt < 1000, `SDK break: aborted after ${s.abortedAt - abortAt} ms`);
  }
  console.log(`# client hang-up → upstream abort lag (ms): ${lags.join(', ')}`);
});

test('every interrupted stream has its log line with the right outcome (client_cancelled, upstream_reset, upstream_stalled)', async () => {
  assert.ok(EXPECTED_OUTCOME.size >= 20, `${EXPECTED_OUTCOME.size} interrupted requests`);
  let lines = new Map();
  for (let i = 0; i < 30; i++) {
    lines = new Map();
    for (const line of gw.log().split('\n')) {
      const at = line.indexOf('{"request_id"');
      if (at < 0) continue;
      try {
        const v = JSON.parse(line.slice(at));
        lines.set(v.request_id, v);
      } catch {
        /* not a log line */
      }
    }
    if ([...EXPECTED_OUTCOME.keys()].every((id) => lines.has(id))) break;
    await sleep(100);
  }
  const wrong = [];
  for (const [id, outcome] of EXPECTED_OUTCOME) {
    const l = lines.get(id);
    if (!l) wrong.push(`${id}: no log line (expected outcome ${outcome})`);
    else if (l.outcome !== outcome) wrong.push(`${id}: outcome ${l.outcome}, expected ${outcome}`);
    else if (outcome !== 'client_cancelled') assert.equal(l.error_class, 'upstream_stream_interrupted', id);
  }
  assert.deepEqual(wrong, [], 'request log lines of interrupted streams (README: one JSON line per request)');
});

// ---------------------------------------------------------------------------
// Connection refused (last: shuts the emulators down)

test('connection refused → 502 api_error in both shapes, and the SDKs raise', async () => {
  assertNothingGatewaySideUpstream(stack);
  await stack.providers.close();
  const o = await gw.request('POST', '/openai/v1/responses', { headers: oaiH(), body: { model: 'gpt-4.1', input: 'x', stream: true } });
  assert.equal(o.status, 502, o.text);
  assert.deepEqual(Object.keys(o.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(o.json.error.type, 'api_error');
  const a = await gw.request('POST', '/anthropic/v1/messages', { headers: antH(), body: { model: MODEL, max_tokens: 5, stream: true, messages: [] } });
  assert.equal(a.status, 502, a.text);
  assert.equal(a.json.type, 'error');
  assert.equal(a.json.error.type, 'api_error');
  const e = await rejects(gw.openai(S.keys.acme).responses.create({ model: 'gpt-4.1', input: 'x', stream: true }));
  assert.ok(e instanceof OpenAI.InternalServerError);
  assert.equal(e.status, 502);
});

test('no secret leaked to clients, KV or the log; no panic', async () => {
  await assertNoLeaks(stack);
  assert.doesNotMatch(stack.gw.log(), /Uncaught|hung/);
});
