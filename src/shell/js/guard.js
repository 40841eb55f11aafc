// Response-body guard, used only when the gateway must look at a streamed body:
// SSE answers (to end a failed stream with the provider's own error event
// instead of a silent truncation) and answers that must be scrubbed of the
// secrets the gateway injected. Everything else is returned untouched.
//
// Bytes stay in JS unless a tap is given (then each chunk passes once through
// wasm). For SSE, only complete events are forwarded; a partial event is held
// (up to `maxEvent` bytes) until its blank line arrives, so an interrupted
// stream never hands the client half an event. An event longer than that is
// forwarded as it comes instead of being held.

import { SseFramer, Held, join } from './sse.js';

/** Default bound on a held event when the caller gives none. */
const MAX_EVENT = 8 * 1024 * 1024;

const encoder = new TextEncoder();

/**
 * @param {ReadableStream<Uint8Array>} body the fetched upstream body
 * @param {{sse: boolean, maxEvent?: number, idleMs: number, resetEvent: string, stallEvent: string,
 *          scrub: null | {push(u: Uint8Array): Uint8Array, finish(): Uint8Array, free(): void,
 *                         framed?: boolean, spilling?: boolean},
 *          done: (outcome: string, bytesOut: number) => void}} opts
 */
export function guardBody(body, opts) {
  const source = openReader(body);
  const reader = source.reader;
  const framer = opts.sse ? new SseFramer(opts.maxEvent > 0 ? opts.maxEvent : MAX_EVENT) : null;
  const held = new Held();
  // The tap hands back whole events (it frames them itself): its output is not framed again.
  const framed = !!(opts.sse && opts.scrub && opts.scrub.framed);
  // Part of the current event was forwarded (it passed the bound).
  let spilled = false;
  let bytesOut = 0;
  let finished = false;
  // Resolved when the stream ends however it ends. The gateway hands it to
  // waitUntil, which keeps the request alive after a client disconnect long
  // enough for cancel() to run, log and meter.
  let settle;
  opts.finished = new Promise((resolve) => { settle = resolve; });

  // One watchdog per stream, not a timer per read: it ends a read that has
  // waited `idleMs` for the provider (time the client takes to pull does not count).
  let readingSince = null;
  let stalled = false;
  let watchdog = null;
  const watch = (ms) => {
    watchdog = setTimeout(() => {
      watchdog = null;
      if (finished) return;
      const waited = readingSince === null ? 0 : Date.now() - readingSince;
      if (waited >= opts.idleMs) {
        stalled = true;
        reader.cancel('upstream idle').catch(() => {});
      } else {
        watch(opts.idleMs - waited);
      }
    }, ms);
  };
  if (opts.idleMs > 0) watch(opts.idleMs);

  const finish = (outcome) => {
    if (finished) return;
    finished = true;
    if (watchdog !== null) clearTimeout(watchdog);
    settle();
    // The wasm tap is freed exactly once and never touched again: a read that
    // was pending when the client left may still resolve after this.
    const tap = opts.scrub;
    opts.scrub = null;
    try { opts.done(outcome, bytesOut); } catch {}
    try { if (tap) tap.free(); } catch {}
  };
  const emit = (controller, bytes) => {
    if (bytes && bytes.length) {
      bytesOut += bytes.length;
      controller.enqueue(bytes);
    }
  };
  // The watchdog's cancel ends the pending read one way or another (done, or
  // rejected, depending on the stream): either way it is a stall.
  const read = async () => {
    readingSince = Date.now();
    let r;
    try {
      r = await source.read();
    } catch (e) {
      if (!stalled) throw e;
    } finally {
      readingSince = null;
    }
    if (stalled) throw new Error('mcpgate-idle');
    return r;
  };

  // Forwards every complete event of `chunk` (after what is held), holds the
  // rest; an event over the bound is forwarded as it comes. True if it emitted.
  const frameInto = (controller, chunk) => {
    const ends = framer.scan(chunk);
    if (framer.oversize) {
      spilled = true;
      const out = held.take(chunk);
      emit(controller, out);
      return out.length > 0;
    }
    if (ends.length === 0) {
      held.keep(chunk);
      return false;
    }
    spilled = false;
    const last = ends[ends.length - 1];
    // Copy the new tail before enqueueing: the runtime may detach an enqueued buffer.
    const rest = last < chunk.length ? chunk.slice(last) : null;
    const out = held.take(last === chunk.length ? chunk : chunk.subarray(0, last));
    if (rest) held.keep(rest);
    emit(controller, out);
    return out.length > 0;
  };

  // The client went away: stop reading upstream (which cancels the provider's
  // generation) and account for the request now.
  let ctrl = null;
  if (opts.signal) {
    const onAbort = () => {
      if (finished) return;
      finish('client_cancelled');
      reader.cancel('client disconnected').catch(() => {});
      try { if (ctrl) ctrl.close(); } catch {}
    };
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  }

  return new ReadableStream({
    start(controller) {
      ctrl = controller;
    },
    // Loops until it has enqueued something or ended the stream: a pull that
    // resolves without enqueueing is not called again by the runtime.
    async pull(controller) {
      while (!finished) {
        let r;
        try {
          r = await read();
          if (finished) return;
        } catch (e) {
          if (finished) return;
          const stalled = e instanceof Error && e.message === 'mcpgate-idle';
          reader.cancel().catch(() => {});
          if (opts.sse) {
            if (framed && opts.scrub.spilling) spilled = true;
            // Complete events that were held back still go out; a partial one does not.
            const tail = opts.scrub ? opts.scrub.finish() : null;
            if (tail && tail.length) frameInto(controller, tail);
            if (framer.finish()) emit(controller, held.take());
            // An oversize event already half sent is closed off, so the error event stands alone.
            else if (spilled) emit(controller, encoder.encode('\n\n'));
            emit(controller, encoder.encode(stalled ? opts.stallEvent : opts.resetEvent));
            controller.close();
          } else {
            controller.error(new Error('upstream body failed'));
          }
          finish(stalled ? 'upstream_stalled' : 'upstream_reset');
          return;
        }
        if (r.done) {
          const tail = opts.scrub ? opts.scrub.finish() : null;
          emit(controller, held.take(tail));
          controller.close();
          finish('completed');
          return;
        }
        const tapped = opts.scrub ? opts.scrub.push(r.value) : undefined;
        const chunk = tapped === undefined ? r.value : tapped;
        // The tap copied the bytes into wasm and answered new ones: the read buffer is free.
        if (tapped !== undefined) source.recycle(r.value);
        if (opts.sse && !framed) {
          if (frameInto(controller, chunk)) return;
        } else if (chunk.length > 0) {
          emit(controller, chunk);
          return;
        }
      }
    },
    cancel(reason) {
      finish('client_cancelled');
      return reader.cancel(reason);
    },
  }, { highWaterMark: 2 });
}

/** Bytes asked of a byte stream per read, first and at most: the runtime's
 * fetch bodies hand a default reader at most 4 KiB at a time, a BYOB read
 * whatever has arrived up to the buffer's size, so a fast stream costs far
 * fewer reads (and wasm calls). The buffer starts small (a short answer
 * should not allocate 64 KiB per read) and doubles while reads fill it. */
const FIRST_READ = 8 * 1024;
const MAX_READ = 64 * 1024;

/**
 * A reader of `body`: BYOB when it is a byte stream (a read never waits for
 * the buffer to fill, only for some bytes), into a fresh buffer or one the
 * caller gave back with `recycle`; else the default reader.
 */
function openReader(body) {
  try {
    const reader = body.getReader({ mode: 'byob' });
    let size = FIRST_READ;
    // A buffer whose bytes the caller has copied away: the next read fills it again.
    let spare = null;
    const recycle = (view) => {
      spare = view.buffer;
    };
    const read = async () => {
      const into = spare !== null && spare.byteLength >= size ? new Uint8Array(spare, 0, size) : new Uint8Array(size);
      spare = null;
      const { done, value } = await reader.read(into);
      if (done) return { done, value };
      const full = value.byteLength === size;
      if (full && size < MAX_READ) size *= 2;
      // A small read is copied out of its buffer: held bytes must not pin a big one each.
      return { done, value: !full && value.byteLength * 4 < size ? value.slice() : value };
    };
    return { reader, read, recycle };
  } catch {
    const reader = body.getReader();
    return { reader, read: () => reader.read(), recycle: () => {} };
  }
}

/**
 * Reads a request body into one buffer, giving up (and cancelling the
 * stream) as soon as it exceeds `limit` bytes: a chunked upload without
 * content-length never makes the gateway hold more than the limit.
 * @returns {Promise<Uint8Array|null>} null when over the limit
 */
export async function readLimited(body, limit) {
  if (!body) return new Uint8Array(0);
  const { reader, read } = openReader(body);
  const parts = [];
  let total = 0;
  for (;;) {
    const r = await read();
    if (r.done) break;
    total += r.value.length;
    if (total > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    parts.push(r.value);
  }
  return parts.length === 0 ? new Uint8Array(0) : join(parts);
}

/**
 * Reads a body whose length the runtime enforces (a declared Content-Length
 * the caller has already checked against its limit) in one native read.
 * @returns {Promise<Uint8Array>}
 */
export async function readWhole(body) {
  if (!body) return new Uint8Array(0);
  return new Uint8Array(await new Response(body).arrayBuffer());
}
