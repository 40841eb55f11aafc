// Streaming tool filter for the MCP relay's SSE answers.
//
// Used only when the relay restricts tools: every complete SSE event goes to
// the client as soon as its blank line arrives; an event that might carry a
// `tools/list` result (its bytes contain `tools`, or a `\u` escape that could
// spell it — a JSON text cannot name the key otherwise) first passes through
// the wasm filter, which drops the tools the capability does not allow. Other
// events are never copied into wasm. A partial event is held (each byte
// scanned once) until its end arrives; at the end of the stream the remainder
// goes through the same check.
//
// Fails closed: when the filter cannot read a candidate event, or an event
// grows past `maxEvent` bytes, the stream ends with the filter's JSON-RPC
// error event instead, and the MCP server's stream is cancelled.

import { SseFramer, Held, join } from './sse.js';

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
 * @param {{event(ev: Uint8Array): Uint8Array | undefined, refused: boolean, refuse(): Uint8Array, free(): void}} filter
 *   wasm SseToolFilter: `event` filters one event (undefined: unchanged) and
 *   sets `refused` when it could not read it (its answer is then the error event)
 * @param {number} maxEvent the longest event held, in bytes
 * @returns {ReadableStream<Uint8Array>}
 */
export function filterSse(body, filter, maxEvent) {
  const reader = body.getReader();
  const framer = new SseFramer(maxEvent);
  const held = new Held();
  let freed = false;
  const free = () => {
    if (freed) return;
    freed = true;
    try { filter.free(); } catch {}
  };
  // The filtered event, and whether the stream must end with it.
  const pass = (ev) => {
    if (!mayListTools(ev)) return [ev, false];
    const out = filter.event(ev);
    return [out ?? ev, filter.refused];
  };
  const refuse = (controller, out, last) => {
    out.push(last);
    controller.enqueue(join(out));
    free();
    controller.close();
    reader.cancel('refused by the tool filter').catch(() => {});
  };

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
          framer.finish();
          const rest = held.take();
          if (rest.length) {
            const [ev, refused] = pass(rest);
            if (refused) return refuse(controller, [], ev);
            controller.enqueue(ev);
          }
          free();
          controller.close();
          return;
        }
        const chunk = r.value;
        const ends = framer.scan(chunk);
        const out = [];
        let start = 0;
        for (const end of ends) {
          const ev = start === 0 ? held.take(chunk.subarray(0, end)) : chunk.subarray(start, end);
          start = end;
          if (ev.length === 0) continue;
          const [filtered, refused] = pass(ev);
          if (refused) return refuse(controller, out, filtered);
          out.push(filtered);
        }
        if (framer.oversize) return refuse(controller, out, filter.refuse());
        // Copies the tail if part of the chunk is about to be enqueued (the runtime may detach it).
        if (start === 0) held.keep(chunk);
        else held.add(chunk.subarray(start));
        if (out.length) {
          controller.enqueue(join(out));
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
