// Streaming tool filter for the MCP relay's SSE answers.
//
// Used only when the relay restricts tools: every complete SSE event goes to
// the client as soon as its blank line arrives; an event that might carry a
// `tools/list` result (its bytes contain `tools`, or a `\u` escape that could
// spell it) first passes through the wasm filter, which drops the tools the
// capability does not allow. Other events are never copied into wasm. A
// partial event is held until its end arrives; at the end of the stream the
// remainder is flushed through the same check.

import { concat } from './guard.js';

// Index just past the first blank line ("\n\n" or "\r\n\r\n") at or after `from`, or -1.
function eventEnd(buf, from) {
  for (let i = Math.max(from, 1); i < buf.length; i++) {
    if (buf[i] !== 10) continue;
    if (buf[i - 1] === 10) return i + 1;
    if (buf[i - 1] === 13 && i >= 3 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

const TOOLS = [0x74, 0x6f, 0x6f, 0x6c, 0x73]; // "tools"

function mayListTools(ev) {
  for (let i = 0; i < ev.length; i++) {
    if (ev[i] === 0x5c && ev[i + 1] === 0x75) return true; // "\u"
    if (ev[i] === TOOLS[0] && ev[i + 1] === TOOLS[1] && ev[i + 2] === TOOLS[2] && ev[i + 3] === TOOLS[3] && ev[i + 4] === TOOLS[4]) {
      return true;
    }
  }
  return false;
}

/**
 * @param {ReadableStream<Uint8Array>} body the MCP server's SSE body
 * @param {{event(ev: Uint8Array): Uint8Array | undefined, free(): void}} filter wasm SseToolFilter
 * @returns {ReadableStream<Uint8Array>}
 */
export function filterSse(body, filter) {
  const reader = body.getReader();
  let pending = null;
  let freed = false;
  const free = () => {
    if (freed) return;
    freed = true;
    try { filter.free(); } catch {}
  };
  const pass = (ev) => (mayListTools(ev) ? filter.event(ev) ?? ev : ev);

  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          free();
          controller.error(e);
          return;
        }
        if (r.done) {
          if (pending && pending.length) controller.enqueue(pass(pending));
          pending = null;
          free();
          controller.close();
          return;
        }
        const buf = concat(pending, r.value);
        const out = [];
        let start = 0;
        for (let end = eventEnd(buf, 0); end > 0; end = eventEnd(buf, end)) {
          out.push(pass(buf.subarray(start, end)));
          start = end;
        }
        // Copy the held-back tail: the runtime may detach an enqueued buffer.
        pending = start < buf.length ? buf.slice(start) : null;
        if (out.length) {
          let total = 0;
          for (const o of out) total += o.length;
          const joined = new Uint8Array(total);
          let at = 0;
          for (const o of out) {
            joined.set(o, at);
            at += o.length;
          }
          controller.enqueue(joined);
          return;
        }
      }
    },
    cancel(reason) {
      free();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
