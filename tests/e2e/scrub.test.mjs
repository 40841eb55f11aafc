// Scrubbing: an MCP tool that echoes the credentials it received
// (`echo_auth`, a misbehaving tool) is called through the gateway with both
// providers, JSON and SSE, bearer and header credentials, with the provider's
// answer written whole or in small pieces (so the secret crosses network
// chunks). The provider emulator really emits the secret, raw and JSON-escaped
// once and twice; the client must get exactly that answer with every injected
// secret replaced by `[redacted]`. Bodies of requests the gateway did not
// inject into come back byte for byte.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { test, startStack, newSecret, assertNoLeaks, recordingFetch, readSse, SEEN } from './harness.mjs';
import { startMcpServer } from '../emulators/mcp-server.mjs';
import { MCP_BETA_OLD, MCP_BETA_NEW } from '../emulators/provider.mjs';
import { assertEveryResponseLogged } from './worker-log.mjs';

const REDACTED = '[redacted]';
/** One level of JSON string escaping (the secrets are printable ASCII). */
const esc = (s) => JSON.stringify(s).slice(1, -1);
/** Every form the gateway promises to catch: raw, escaped once (also with `\/`), escaped twice. */
const forms = (s) => [...new Set([s, esc(s), esc(s).replaceAll('/', '\\/'), esc(esc(s))])];

/** What the client must receive: `body` with every form of every secret replaced, longest form first, left to right. */
function scrubLike(body, secrets) {
  const needles = [...new Set(secrets.flatMap(forms))].sort((a, b) => b.length - a.length);
  const text = Buffer.from(body).toString('latin1');
  let out = '';
  let i = 0;
  while (i < text.length) {
    const n = needles.find((x) => text.startsWith(x, i));
    if (n) {
      out += REDACTED;
      i += n.length;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return Buffer.from(out, 'latin1');
}

/** The forms of `secret` that occur in `body`. */
const formsIn = (body, secret) => forms(secret).filter((f) => Buffer.from(body).includes(Buffer.from(f)));

function parseSseText(text) {
  return text.split(/\n\n/).filter((f) => f.trim()).map((frame) => {
    let event = null;
    const data = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    let json;
    try {
      json = JSON.parse(data.join('\n'));
    } catch {
      json = undefined;
    }
    return { event, json };
  });
}

let stack;
let gw;
let key;
let servers;
let PLAIN;
let QUOTED;
let HDR;
let secretOf;

before(async () => {
  PLAIN = newSecret('leaky bearer', 'mcp_tok_');
  // JSON-special characters, so escaped forms differ from the raw one.
  QUOTED = newSecret('leaky quoted', 'mcp"tok\\/');
  HDR = newSecret('leaky header', 'hdr/"x\\');
  servers = {
    echo: await startMcpServer({ name: 'echo', auth: { type: 'bearer', token: PLAIN }, echoAuth: true }),
    echoq: await startMcpServer({ name: 'echoq', auth: { type: 'bearer', token: QUOTED }, echoAuth: true }),
    echoh: await startMcpServer({ name: 'echoh', auth: { type: 'headers', headers: { 'X-Api-Key': HDR } }, echoAuth: true }),
  };
  secretOf = { echo: PLAIN, echoq: QUOTED, echoh: HDR };
  stack = await startStack({ delayMs: 25 });
  gw = stack.gw;
  await gw.putTenant('leaky', {
    providers: { openai: { api_key: stack.openaiKey('leaky') }, anthropic: { api_key: stack.anthropicKey('leaky') } },
    mcp_servers: {
      echo: { url: servers.echo.url, auth: { type: 'bearer', token: PLAIN }, require_approval: 'never' },
      echoq: { url: servers.echoq.url, auth: { type: 'bearer', token: QUOTED }, require_approval: 'never' },
      echoh: { url: servers.echoh.url, auth: { type: 'headers', headers: { 'X-Api-Key': HDR } }, require_approval: 'never' },
    },
  });
  key = (await gw.createKey('leaky')).key;
});

after(async () => {
  await stack?.close();
  await Promise.all(Object.values(servers ?? {}).map((s) => s.close()));
});

const lastUpstream = (emu, path) => emu.requestsTo(path).at(-1);

/** The tool text `echo_auth` produced, as the emulator put it into its answer. */
function toolTextOpenAI(emitted, stream) {
  if (!stream) return JSON.parse(emitted).output.find((o) => o.type === 'mcp_call').output;
  const done = parseSseText(emitted.toString('utf8')).find((e) => e.event === 'response.completed');
  return done.json.response.output.find((o) => o.type === 'mcp_call').output;
}

function toolTextAnthropic(body, stream) {
  if (!stream) return JSON.parse(body).content.find((b) => b.type === 'mcp_tool_result').content[0].text;
  const start = parseSseText(body.toString('utf8')).find((e) => e.event === 'content_block_start' && e.json.content_block.type === 'mcp_tool_result');
  return start.json.content_block.content[0].text;
}

/** The tool text with the secret (raw, and JSON-escaped inside its JSON part) replaced. */
const redactedText = (text, secret) => text.replaceAll(esc(secret), REDACTED).replaceAll(secret, REDACTED);

/** Shared checks: the provider emitted the secret, the client got exactly the scrubbed answer. */
function checkScrubbed({ what, emitted, received, secret }) {
  const expectForms = secret === PLAIN ? [PLAIN] : [esc(secret), esc(esc(secret))];
  for (const f of expectForms) {
    assert.ok(emitted.includes(Buffer.from(f)), `${what}: the provider's answer holds the secret as ${JSON.stringify(f)}`);
  }
  assert.deepEqual(formsIn(received, secret), [], `${what}: the client saw the secret`);
  assert.ok(received.includes(Buffer.from(REDACTED)), `${what}: [redacted] in place of the secret`);
  const expected = scrubLike(emitted, [secret]);
  assert.equal(received.toString('latin1'), expected.toString('latin1'), `${what}: the answer, exactly, with the secret replaced`);
}

test('passthrough reads of stored output are scrubbed too: GET /responses/{id}, its stream resumption', async () => {
  for (const label of ['echo', 'echoq', 'echoh']) {
    const secret = secretOf[label];
    const created = await gw.request('POST', '/openai/v1/responses', {
      headers: { authorization: `Bearer ${key}` },
      body: { model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: label }] },
    });
    assert.equal(created.status, 200, created.text.slice(0, 300));
    const { id } = created.json;
    // The provider stored the unscrubbed output.
    const stored = JSON.stringify(stack.openaiEmu.stored.get(id).response);
    assert.ok(stored.includes(esc(secret)), `${label}: the provider keeps the echoed secret`);
    for (const q of ['', '?stream=true', '?stream=true&starting_after=2']) {
      const r = await gw.request('GET', `/openai/v1/responses/${id}${q}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(r.status, 200, `${label}${q}: ${r.text.slice(0, 200)}`);
      const received = Buffer.from(r.text, 'utf8');
      assert.deepEqual(formsIn(received, secret), [], `${label}${q}: the stored secret came back`);
      assert.ok(received.includes(Buffer.from(REDACTED)), `${label}${q}: [redacted] in its place`);
    }
  }
});

for (const label of ['echo', 'echoq', 'echoh']) {
  test(`OpenAI Responses, ${label} (${label === 'echoh' ? 'header' : 'bearer'} credential): JSON and SSE, whole and split writes, never the echoed secret`, async () => {
    const secret = secretOf[label];
    for (const stream of [false, true]) {
      for (const split of [0, 61]) {
        const what = `${label} stream=${stream} split=${split}`;
        const before = servers[label].toolCalls('echo_auth').length;
        const headers = { authorization: `Bearer ${key}` };
        if (split) headers['x-emulator-split-writes'] = String(split);
        const r = await gw.request('POST', '/openai/v1/responses', {
          headers,
          body: { model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: label }], stream },
        });
        assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
        // The MCP server got the credential and echoed it; the provider put it into its answer.
        const calls = servers[label].toolCalls('echo_auth');
        assert.equal(calls.length, before + 1, what);
        assert.deepEqual(calls.at(-1).credential, label === 'echoh' ? { 'X-Api-Key': secret } : secret);
        const up = lastUpstream(stack.openaiEmu, '/v1/responses');
        const emitted = up.response.body;
        const tool = toolTextOpenAI(emitted, stream);
        assert.ok(tool.includes(secret), `${what}: the tool echoed the secret`);
        assert.ok(tool.includes(esc(secret)), `${what}: also inside JSON`);
        const received = Buffer.from(r.text, 'utf8');
        checkScrubbed({ what, emitted, received, secret });
        // What a client parses: the tool output and the final text, with [redacted].
        const want = redactedText(tool, secret);
        if (!stream) {
          assert.equal(r.json.output.find((o) => o.type === 'mcp_call').output, want, what);
          assert.ok(r.json.output.at(-1).content[0].text.endsWith(want), what);
        } else {
          const events = parseSseText(r.text);
          assert.equal(events.find((e) => e.event === 'response.completed').json.response.output.find((o) => o.type === 'mcp_call').output, want, what);
          const item = events.find((e) => e.event === 'response.output_item.done' && e.json.item.type === 'mcp_call');
          assert.equal(item.json.item.output, want, what);
          const deltas = events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.json.delta).join('');
          assert.ok(deltas.endsWith(want), `${what}: the streamed text, reassembled`);
        }
      }
    }
  });
}

for (const label of ['echo', 'echoq']) {
  test(`Anthropic Messages, ${label} (bearer credential): JSON and SSE, whole and split writes, never the echoed secret`, async () => {
    const secret = secretOf[label];
    for (const stream of [false, true]) {
      for (const split of [0, 61]) {
        const what = `${label} stream=${stream} split=${split}`;
        const headers = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': MCP_BETA_OLD };
        if (split) headers['x-emulator-split-writes'] = String(split);
        const r = await gw.request('POST', '/anthropic/v1/messages', {
          headers,
          body: {
            model: 'claude-sonnet-4-6', max_tokens: 256, stream,
            messages: [{ role: 'user', content: 'call echo_auth' }],
            mcp_servers: [{ type: 'url', name: label, url: 'https://placeholder.invalid/mcp' }],
          },
        });
        assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
        assert.equal(servers[label].toolCalls('echo_auth').at(-1).credential, secret);
        const emitted = lastUpstream(stack.anthropicEmu, '/v1/messages').response.body;
        const tool = toolTextAnthropic(emitted, stream);
        assert.ok(tool.includes(secret) && tool.includes(esc(secret)), `${what}: the tool echoed the secret`);
        const received = Buffer.from(r.text, 'utf8');
        checkScrubbed({ what, emitted, received, secret });
        const want = redactedText(tool, secret);
        assert.equal(toolTextAnthropic(received, stream), want, what);
        if (stream) {
          const deltas = parseSseText(r.text).filter((e) => e.event === 'content_block_delta' && e.json.delta.type === 'text_delta').map((e) => e.json.delta.text).join('');
          assert.ok(deltas.endsWith(want), `${what}: the streamed text, reassembled`);
        } else {
          assert.ok(r.json.content.at(-1).text.endsWith(want), what);
        }
      }
    }
  });
}

test('compressed answers: a gzip-encoded provider answer is scrubbed too (JSON and SSE, both providers)', async () => {
  const cases = [
    ['openai JSON', 'openai', 'echoq', false, 0],
    ['openai SSE', 'openai', 'echoh', true, 0],
    ['openai SSE, split writes', 'openai', 'echo', true, 53],
    ['anthropic JSON, split writes', 'anthropic', 'echoq', false, 53],
    ['anthropic SSE', 'anthropic', 'echo', true, 0],
  ];
  for (const [what, provider, label, stream, split] of cases) {
    const secret = secretOf[label];
    const headers = { 'x-emulator-gzip': '1' };
    if (split) headers['x-emulator-split-writes'] = String(split);
    let r;
    if (provider === 'openai') {
      r = await gw.request('POST', '/openai/v1/responses', {
        headers: { ...headers, authorization: `Bearer ${key}` },
        body: { model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: label }], stream },
      });
    } else {
      r = await gw.request('POST', '/anthropic/v1/messages', {
        headers: { ...headers, 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': MCP_BETA_OLD },
        body: { model: 'claude-sonnet-4-6', max_tokens: 256, stream, messages: [{ role: 'user', content: 'call echo_auth' }], mcp_servers: [{ type: 'url', name: label, url: 'https://placeholder.invalid/mcp' }] },
      });
    }
    assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
    const up = lastUpstream(provider === 'openai' ? stack.openaiEmu : stack.anthropicEmu, provider === 'openai' ? '/v1/responses' : '/v1/messages');
    assert.equal(up.response.encoding, 'gzip', `${what}: the provider compressed its answer`);
    checkScrubbed({ what, emitted: up.response.body, received: Buffer.from(r.text, 'utf8'), secret });
  }
});

test('the official SDKs read the scrubbed answers (OpenAI and Anthropic, JSON and streaming)', async () => {
  const oai = gw.openai(key);
  const r1 = await oai.responses.create({ model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: 'echoq' }] });
  const call = r1.output.find((o) => o.type === 'mcp_call');
  assert.match(call.output, /^authorization: Bearer \[redacted\]\n/);
  assert.equal(JSON.parse(call.output.split('\n').at(-1)).authorization, `Bearer ${REDACTED}`);
  assert.ok(!r1.output_text.includes(QUOTED));

  const s = await oai.responses.create({ model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: 'echoh' }], stream: true });
  let completed;
  for await (const ev of s) if (ev.type === 'response.completed') completed = ev.response;
  const out = completed.output.find((o) => o.type === 'mcp_call').output;
  assert.equal(JSON.parse(out.split('\n').at(-1)).x_api_key, REDACTED);

  const ant = gw.anthropic(key);
  const m = await ant.beta.messages.create({
    model: 'claude-sonnet-4-6', max_tokens: 256, betas: [MCP_BETA_NEW],
    messages: [{ role: 'user', content: 'call echo_auth' }],
    mcp_servers: [{ type: 'url', name: 'echoq', url: 'https://placeholder.invalid/mcp' }],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'echoq' }],
  });
  const res = m.content.find((b) => b.type === 'mcp_tool_result');
  assert.equal(JSON.parse(res.content[0].text.split('\n').at(-1)).authorization, `Bearer ${REDACTED}`);

  const st = ant.beta.messages.stream({
    model: 'claude-sonnet-4-6', max_tokens: 256, betas: [MCP_BETA_NEW],
    messages: [{ role: 'user', content: 'call echo_auth' }],
    mcp_servers: [{ type: 'url', name: 'echo', url: 'https://placeholder.invalid/mcp' }],
    tools: [{ type: 'mcp_toolset', mcp_server_name: 'echo' }],
  });
  const final = await st.finalMessage();
  const res2 = final.content.find((b) => b.type === 'mcp_tool_result');
  assert.equal(JSON.parse(res2.content[0].text.split('\n').at(-1)).authorization, `Bearer ${REDACTED}`);
  assert.ok(!JSON.stringify(final).includes(PLAIN));
});

/** The text pieces of the emulator's delta events for one content part, as it emitted them. */
function emittedDeltas(body, provider) {
  const events = parseSseText(Buffer.from(body).toString('utf8'));
  if (provider === 'openai') return events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.json.delta);
  return events.filter((e) => e.event === 'content_block_delta' && e.json.delta.type === 'text_delta').map((e) => e.json.delta.text);
}

test('a secret the model splits over two text deltas is scrubbed, and the official SDKs stream every event', async () => {
  for (const [label, chars] of [['echo', 7], ['echoq', 5], ['echoh', 11]]) {
    const secret = secretOf[label];
    const headers = { 'x-emulator-delta-chars': String(chars) };
    // OpenAI Responses through the openai SDK's streaming.
    const oai = gw.openai(key);
    const s = await oai.responses.create({ model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: label }], stream: true }, { headers });
    let streamed = '';
    let done;
    let count = 0;
    for await (const ev of s) {
      count += 1;
      if (ev.type === 'response.output_text.delta') streamed += ev.delta;
      if (ev.type === 'response.output_text.done') done = ev.text;
    }
    const up = lastUpstream(stack.openaiEmu, '/v1/responses');
    const pieces = emittedDeltas(up.response.body, 'openai');
    assert.equal(count, up.response.chunks.length, `${label}: one SDK event per provider event`);
    assert.ok(pieces.join('').includes(secret) && !pieces.some((p) => p.includes(secret)), `${label}: the provider split the secret over deltas`);
    assert.ok(!streamed.includes(secret) && !streamed.includes(esc(secret)), `${label}: the reassembled deltas hold no secret`);
    assert.ok(streamed.includes(REDACTED), `${label}: [redacted] in the streamed text`);
    assert.equal(streamed, done, `${label}: the deltas add up to the done text`);

    // Anthropic Messages through the @anthropic-ai/sdk stream helper (bearer-credential servers only).
    if (label === 'echoh') continue;
    const ant = gw.anthropic(key);
    const st = ant.beta.messages.stream({
      model: 'claude-sonnet-4-6', max_tokens: 256, betas: [MCP_BETA_NEW],
      messages: [{ role: 'user', content: 'call echo_auth' }],
      mcp_servers: [{ type: 'url', name: label, url: 'https://placeholder.invalid/mcp' }],
      tools: [{ type: 'mcp_toolset', mcp_server_name: label }],
    }, { headers });
    let text = '';
    st.on('text', (t) => { text += t; });
    const final = await st.finalMessage();
    const upA = lastUpstream(stack.anthropicEmu, '/v1/messages');
    const piecesA = emittedDeltas(upA.response.body, 'anthropic');
    assert.ok(piecesA.join('').includes(secret) && !piecesA.some((p) => p.includes(secret)), `${label}: Anthropic split the secret over deltas`);
    assert.ok(!text.includes(secret) && text.includes(REDACTED), `${label}: Anthropic streamed text scrubbed`);
    assert.equal(final.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), text);
    assert.ok(!JSON.stringify(final).includes(secret));
  }
});

test('a scrubbed SSE answer still streams: events arrive as the provider emits them', async () => {
  const t0 = Date.now();
  const res = await gw.fetch('/openai/v1/responses', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1', input: 'call echo_auth', tools: [{ type: 'mcp', server_label: 'echoq' }], stream: true }),
  });
  assert.equal(res.status, 200);
  const events = await readSse(res, t0);
  const up = lastUpstream(stack.openaiEmu, '/v1/responses');
  const frames = up.response.chunks.length;
  assert.equal(events.length, frames, 'one client event per provider event');
  // 25 ms between provider events: a buffered answer would arrive all at once.
  const spread = events.at(-1).at - events[0].at;
  assert.ok(spread >= (frames - 1) * 25 * 0.6, `events spread over ${spread} ms for ${frames} frames`);
  assert.ok(events.some((e) => e.data.includes(REDACTED)));
});

test('every credential of the tenant is scrubbed from every answer, injected on this request or not', async () => {
  // The client itself puts the echoq token (not injected here) and the echo token (injected) into
  // `instructions`, which the provider echoes back in the Response object.
  const r = await gw.request('POST', '/openai/v1/responses', {
    headers: { authorization: `Bearer ${key}` },
    body: { model: 'gpt-4.1', input: 'call whoami', instructions: `keep ${QUOTED} and ${PLAIN}`, tools: [{ type: 'mcp', server_label: 'echo' }] },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.instructions, `keep ${REDACTED} and ${REDACTED}`);
  assert.equal(r.text, scrubLike(lastUpstream(stack.openaiEmu, '/v1/responses').response.body, [PLAIN, QUOTED, HDR]).toString('latin1'));
});

test('passthrough answers: scrubbed for a tenant with credentials, byte for byte for one without', async () => {
  const text = `echo these: ${PLAIN} ${QUOTED} ${HDR}`;
  await gw.putTenant('plain', { providers: { openai: { api_key: stack.openaiKey('plain') }, anthropic: { api_key: stack.anthropicKey('plain') } } });
  const plainKey = (await gw.createKey('plain')).key;
  const fetchImpl = recordingFetch({ allowSecrets: [PLAIN, QUOTED, HDR] });
  const cases = [
    ['openai chat JSON', 'openai', '/openai/v1/chat/completions', '/v1/chat/completions', {}, { model: 'gpt-4.1', messages: [{ role: 'user', content: text }] }],
    ['openai chat SSE, split writes', 'openai', '/openai/v1/chat/completions', '/v1/chat/completions', { 'x-emulator-split-writes': '29' }, { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: text }] }],
    ['openai responses without MCP, JSON', 'openai', '/openai/v1/responses', '/v1/responses', {}, { model: 'gpt-4.1', input: text }],
    ['openai responses without MCP, SSE', 'openai', '/openai/v1/responses', '/v1/responses', {}, { model: 'gpt-4.1', input: text, stream: true }],
    ['anthropic messages without MCP, JSON', 'anthropic', '/anthropic/v1/messages', '/v1/messages', {}, { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: text }] }],
    ['anthropic messages without MCP, SSE, split writes', 'anthropic', '/anthropic/v1/messages', '/v1/messages', { 'x-emulator-split-writes': '29' }, { model: 'claude-sonnet-4-6', max_tokens: 64, stream: true, messages: [{ role: 'user', content: text }] }],
  ];
  const auth = (provider, k) => (provider === 'openai' ? { authorization: `Bearer ${k}` } : { 'x-api-key': k, 'anthropic-version': '2023-06-01' });
  for (const [what, provider, path, upPath, extra, body] of cases) {
    const emu = provider === 'openai' ? stack.openaiEmu : stack.anthropicEmu;
    const leaky = await gw.request('POST', path, { headers: { ...auth(provider, key), ...extra }, body });
    assert.equal(leaky.status, 200, `${what}: ${leaky.text.slice(0, 300)}`);
    const emittedLeaky = lastUpstream(emu, upPath).response.body;
    assert.ok(emittedLeaky.includes(Buffer.from(esc(QUOTED))), `${what}: the provider echoed the values`);
    assert.equal(leaky.text, scrubLike(emittedLeaky, [PLAIN, QUOTED, HDR]).toString('latin1'), `${what}: scrubbed of every credential`);
    const plain = await gw.request('POST', path, { headers: { ...auth(provider, plainKey), ...extra }, body, fetchImpl });
    assert.equal(plain.status, 200, what);
    const emitted = lastUpstream(emu, upPath).response.body;
    assert.equal(plain.text, emitted.toString('utf8'), `${what}: a tenant without credentials gets it byte for byte`);
    assert.ok(!plain.text.includes(REDACTED), what);
  }
});

test('nothing leaked: client responses, KV on disk, the runtime log; every response has its one log line', async () => {
  await assertNoLeaks(stack);
  const n = await assertEveryResponseLogged(gw, SEEN);
  assert.ok(n > 20, `${n} responses checked`);
});
