// Fault modes of the provider emulators (reliability tests).
//
// A request selects a fault with the header `x-emu-fault: <mode>` or with a
// model named `fault-<mode>`; `x-emu-tag: <tag>` names the answer so a test
// can find it again in `emu.faults.streams`. The fault runs after the
// emulator has checked the provider key and the method, so everything the
// gateway does on the way up is still exercised. Modes:
//
//   429, 500, status-NNN   the provider's own error body with that status
//                          (retry-after / x-should-retry headers where the
//                          real API sends them), marked `x-emu-fault`
//   no-headers             accepts the request and never answers
//   reset-before-headers   TCP reset before any byte of the answer
//   reset-midstream        200 SSE, 3 whole events and half of a 4th, then a TCP reset
//   close-midstream        same, then a plain close without the chunked terminator
//   stall                  200 SSE, 3 whole events and half of a 4th, then silence
//   odd-chunks             a whole SSE answer written in odd-sized pieces (1, 2, 3, 5, 7, 11, … bytes)
//   multibyte-split        a whole SSE answer whose every multi-byte character is cut across two writes
//   slow                   one event every 100 ms for up to 30 s (for client-disconnect tests)
//   hold                   200 SSE with the first events at once; the rest only after
//                          `emu.faults.release()` (load tests hold many streams open this way)
//
// Every fault answer is tracked in `emu.faults.streams`: {tag, mode, provider,
// path, startedAt, headersAt, lastWriteAt, endedAt, abortedAt, bytes, sha256, sent (Buffer),
// complete (the bytes of the whole events sent before a break)}. `abortedAt`
// is when the connection closed before the emulator finished its answer
// (the gateway cancelled the upstream request).

import { createHash, randomBytes } from 'node:crypto';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));

export const FAULT_HEADER = 'x-emu-fault';
export const TAG_HEADER = 'x-emu-tag';

/** Text with 2-, 3- and 4-byte UTF-8 characters (and a ZWJ emoji sequence). */
export const MULTIBYTE_TEXT = 'Grüße aus Köln, 東京と서울 — naïve café ✓ 👋🏽 👩‍💻 𝄞 ok. ';

/** A small deterministic PRNG (mulberry32) seeded from a string. */
function prng(seedText) {
  let a = 0;
  for (const c of createHash('sha256').update(seedText).digest().subarray(0, 4)) a = (a << 8) | c;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The text deltas a fault stream sends for `tag`: `n` pieces of the
 * multibyte text, each cut at a different place, with the tag mixed in.
 */
export function faultDeltas(tag, n = 12) {
  const rnd = prng(String(tag));
  const chars = [...MULTIBYTE_TEXT];
  const out = [];
  for (let i = 0; i < n; i++) {
    const start = Math.floor(rnd() * chars.length);
    const len = 1 + Math.floor(rnd() * 24);
    out.push(`${chars.slice(start, start + len).join('')}[${tag}:${i}] `);
  }
  return out;
}

/** Parses the fault a request asks for, or null. */
export function faultOf(req, json) {
  const h = req.headers[FAULT_HEADER];
  if (typeof h === 'string' && h.trim()) return h.trim();
  const model = json !== null && typeof json === 'object' && !Array.isArray(json) ? json.model : undefined;
  if (typeof model === 'string' && model.startsWith('fault-')) return model.slice('fault-'.length);
  return null;
}

const rid = (prefix, bytes = 12) => `${prefix}${randomBytes(bytes).toString('hex')}`;

/** SSE frames of a plain text answer in the provider's shape for `path`. */
export function textFrames(provider, path, model, deltas) {
  const frames = [];
  const text = deltas.join('');
  if (provider === 'anthropic') {
    const ev = (type, data) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    const id = rid('msg_01');
    const usage = { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: 'standard' };
    ev('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage } });
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    ev('ping', {});
    for (const d of deltas) ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: d } });
    ev('content_block_stop', { index: 0 });
    ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: deltas.length } });
    ev('message_stop', {});
    return frames;
  }
  if (path.startsWith('/v1/chat/')) {
    const id = rid('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta, finish) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_emu', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    frames.push(chunk({ role: 'assistant', content: '', refusal: null }, null));
    for (const d of deltas) frames.push(chunk({ content: d }, null));
    frames.push(chunk({}, 'stop'));
    frames.push('data: [DONE]\n\n');
    return frames;
  }
  // OpenAI Responses
  let seq = 0;
  const ev = (type, data) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: seq++ })}\n\n`);
  const msgId = rid('msg_');
  const part = { type: 'output_text', annotations: [], logprobs: [], text };
  const item = { id: msgId, type: 'message', status: 'completed', role: 'assistant', content: [part] };
  const resp = {
    id: rid('resp_'), object: 'response', created_at: Math.floor(Date.now() / 1000), status: 'completed', background: false,
    error: null, incomplete_details: null, instructions: null, max_output_tokens: null, model, output: [item],
    parallel_tool_calls: true, previous_response_id: null, reasoning: { effort: null, summary: null }, store: true,
    temperature: 1, text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: 1, truncation: 'disabled',
    usage: { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: deltas.length, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 5 + deltas.length },
    user: null, metadata: {},
  };
  const start = { ...resp, status: 'in_progress', output: [], usage: null };
  ev('response.created', { response: start });
  ev('response.in_progress', { response: start });
  ev('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
  ev('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: { ...part, text: '' } });
  for (const d of deltas) ev('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: d, logprobs: [] });
  ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] });
  ev('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part });
  ev('response.output_item.done', { output_index: 0, item });
  ev('response.completed', { response: resp });
  return frames;
}

/** The provider's own error body and headers for `status`. */
function errorAnswer(provider, status, requestId) {
  const headers = { 'content-type': 'application/json', [FAULT_HEADER]: String(status) };
  if (status === 429 || status === 503 || status === 529) headers['retry-after'] = '7';
  if (status >= 500 || status === 429) headers['x-should-retry'] = 'true';
  let body;
  if (provider === 'anthropic') {
    const type = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error', 404: 'not_found_error', 409: 'conflict_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 504: 'timeout_error', 529: 'overloaded_error' }[status]
      ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
    if (status === 429) headers['anthropic-ratelimit-requests-remaining'] = '0';
    body = { type: 'error', error: { type, message: `Emulated provider error ${status} (${type}).` }, request_id: requestId };
  } else {
    if (status === 429) {
      headers['retry-after-ms'] = '7000';
      headers['x-ratelimit-remaining-requests'] = '0';
      headers['x-ratelimit-reset-requests'] = '7s';
    }
    const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
    const code = status === 429 ? 'rate_limit_exceeded' : null;
    body = { error: { message: `Emulated provider error ${status}.`, type, param: null, code } };
  }
  return { headers, text: `${JSON.stringify(body, null, 2)}\n` };
}

/** Piece sizes for `odd-chunks`: primes and 1, cycling. */
const ODD_SIZES = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 211, 509, 1021];

/** Cuts `buf` right after the lead byte of every multi-byte UTF-8 character. */
function splitInsideCharacters(buf) {
  const pieces = [];
  let from = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] >= 0xc0) {
      pieces.push(buf.subarray(from, i + 1));
      from = i + 1;
    }
  }
  if (from < buf.length) pieces.push(buf.subarray(from));
  return pieces;
}

function newGate() {
  let release;
  const promise = new Promise((r) => {
    release = r;
  });
  return { promise, release };
}

/**
 * The fault machinery of one emulator.
 * @param {'openai'|'anthropic'} provider
 */
export function createFaults(provider) {
  const streams = [];
  let gate = newGate();

  function track(req, res, mode, path) {
    const tagHeader = req.headers[TAG_HEADER];
    const s = {
      tag: typeof tagHeader === 'string' ? tagHeader : rid('tag_', 6),
      mode,
      provider,
      path,
      startedAt: Date.now(),
      headersAt: null,
      lastWriteAt: null,
      endedAt: null,
      abortedAt: null,
      chunks: [],
      complete: Buffer.alloc(0),
      bytes: 0,
      sha256: null,
      get sent() {
        return Buffer.concat(this.chunks);
      },
    };
    let resolveClosed;
    s.closed = new Promise((r) => {
      resolveClosed = r;
    });
    res.on('close', () => {
      if (s.endedAt === null) s.abortedAt = Date.now();
      resolveClosed();
    });
    streams.push(s);
    return s;
  }

  const isOpen = (res) => !res.destroyed && !res.writableEnded;

  function sseHead(res, s, baseHeaders) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...baseHeaders, [FAULT_HEADER]: s.mode });
    res.flushHeaders();
    s.headersAt = Date.now();
  }

  function write(res, s, buf) {
    if (!isOpen(res)) return false;
    s.chunks.push(Buffer.from(buf));
    s.bytes += buf.length;
    s.lastWriteAt = Date.now();
    res.write(buf);
    return true;
  }

  function end(res, s) {
    if (!isOpen(res)) return;
    s.endedAt = Date.now();
    s.sha256 = createHash('sha256').update(s.sent).digest('hex');
    res.end();
  }

  /**
   * Runs the fault a request asks for. Returns false when it asks for none.
   * @param {{req, res, rec, path:string, baseHeaders:object, requestId?:string}} ctx
   */
  async function handle({ req, res, rec, path, baseHeaders, requestId }) {
    const mode = faultOf(req, rec.json);
    if (!mode) return false;
    const model = typeof rec.json?.model === 'string' ? rec.json.model : 'fault-model';
    const tag = typeof req.headers[TAG_HEADER] === 'string' ? req.headers[TAG_HEADER] : mode;
    const nDeltas = Math.min(Math.max(Number.parseInt(String(req.headers['x-emu-deltas'] ?? ''), 10) || 12, 1), 5000);
    const frames = () => textFrames(provider, path, model, faultDeltas(tag, nDeltas)).map((f) => Buffer.from(f, 'utf8'));

    const status = /^(?:status-)?([45]\d\d)$/.exec(mode);
    if (status) {
      const s = track(req, res, mode, path);
      const { headers, text } = errorAnswer(provider, Number(status[1]), requestId ?? rid('req_'));
      res.writeHead(Number(status[1]), { ...baseHeaders, ...headers, 'content-length': Buffer.byteLength(text) });
      s.headersAt = Date.now();
      s.chunks.push(Buffer.from(text));
      s.bytes = Buffer.byteLength(text);
      s.endedAt = Date.now();
      s.sha256 = createHash('sha256').update(text).digest('hex');
      res.end(text);
      return true;
    }
    const s = track(req, res, mode, path);
    switch (mode) {
      case 'no-headers':
        await s.closed;
        return true;
      case 'reset-before-headers':
        res.socket?.resetAndDestroy?.() ?? res.socket?.destroy();
        return true;
      case 'reset-midstream':
      case 'close-midstream':
      case 'stall': {
        const f = frames();
        sseHead(res, s, baseHeaders);
        for (let i = 0; i < 3; i++) {
          await sleep(20);
          write(res, s, f[i]);
        }
        s.complete = Buffer.concat(f.slice(0, 3));
        await sleep(20);
        write(res, s, f[3].subarray(0, Math.floor(f[3].length / 2)));
        await sleep(50);
        if (mode === 'reset-midstream') res.socket?.resetAndDestroy?.() ?? res.socket?.destroy();
        else if (mode === 'close-midstream') res.socket?.end();
        await s.closed;
        return true;
      }
      case 'odd-chunks': {
        const buf = Buffer.concat(frames());
        sseHead(res, s, baseHeaders);
        let at = 0;
        for (let i = 0; at < buf.length; i++) {
          const n = ODD_SIZES[i % ODD_SIZES.length];
          if (!write(res, s, buf.subarray(at, at + n))) return true;
          at += n;
          await (i % 4 === 0 ? sleep(1) : tick());
        }
        end(res, s);
        return true;
      }
      case 'multibyte-split': {
        const buf = Buffer.concat(frames());
        sseHead(res, s, baseHeaders);
        for (const piece of splitInsideCharacters(buf)) {
          if (!write(res, s, piece)) return true;
          await sleep(1);
        }
        end(res, s);
        return true;
      }
      case 'slow': {
        const f = textFrames(provider, path, model, faultDeltas(tag, 300)).map((x) => Buffer.from(x, 'utf8'));
        sseHead(res, s, baseHeaders);
        for (const frame of f) {
          if (!write(res, s, frame)) return true;
          await sleep(100);
        }
        end(res, s);
        return true;
      }
      case 'hold': {
        const f = frames();
        const g = gate;
        sseHead(res, s, baseHeaders);
        write(res, s, Buffer.concat(f.slice(0, 2)));
        await Promise.race([g.promise, s.closed]);
        const rest = Buffer.concat(f.slice(2));
        // The rest in three writes of uneven size.
        const cuts = [0, Math.floor(rest.length / 7), Math.floor(rest.length / 2), rest.length];
        for (let i = 0; i < 3; i++) {
          if (!write(res, s, rest.subarray(cuts[i], cuts[i + 1]))) return true;
          await tick();
        }
        end(res, s);
        return true;
      }
      default: {
        streams.pop();
        const { headers, text } = errorAnswer(provider, 400, requestId ?? rid('req_'));
        res.writeHead(400, { ...baseHeaders, ...headers, 'content-length': Buffer.byteLength(text) });
        res.end(text.replace('Emulated provider error 400', `Unknown emulator fault mode '${mode}'`));
        return true;
      }
    }
  }

  return {
    handle,
    streams,
    /** The tracked answer with this tag (the last one if several). */
    byTag(tag) {
      return streams.findLast((s) => s.tag === tag);
    },
    /** `hold` answers that are open right now (headers sent, neither finished nor aborted). */
    holding() {
      return streams.filter((s) => s.mode === 'hold' && s.headersAt !== null && s.endedAt === null && s.abortedAt === null).length;
    },
    /** Lets every `hold` answer waiting now finish. */
    release() {
      gate.release();
      gate = newGate();
    },
    reset() {
      streams.length = 0;
    },
  };
}
