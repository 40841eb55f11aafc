// Unit tests of src/shell/js/guard.js (the response-body guard) under Node's web streams.
import test from 'node:test';
import assert from 'node:assert/strict';
import { guardBody } from '../../src/shell/js/guard.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

// Every test runs against both kinds of upstream body: a default stream and a
// byte stream (what fetch gives in the runtime; the guard reads it BYOB).
let streamType;
function both(name, fn) {
  for (const type of ['default', 'bytes']) {
    test(`${name} (${type} stream)`, () => {
      streamType = type === 'bytes' ? 'bytes' : undefined;
      return fn();
    });
  }
}

/** An upstream body from chunks; `fail` errors it after them, `hang` never ends it. */
function upstream(chunks, { fail = false, hang = false } = {}) {
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream({
    type: streamType,
    pull(c) {
      if (i < chunks.length) return c.enqueue(enc.encode(chunks[i++]));
      if (fail) return c.error(new Error('connection reset'));
      if (hang) return new Promise(() => {});
      c.close();
      // A byte stream closed under a pending BYOB read ends that read with this.
      c.byobRequest?.respond(0);
    },
    cancel() { cancelled = true; },
  });
  return { stream, wasCancelled: () => cancelled };
}

async function readAll(body) {
  const reader = body.getReader();
  const parts = [];
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(dec.decode(r.value));
  }
  return parts;
}

function opts(extra = {}) {
  const outcomes = [];
  return {
    outcomes,
    o: { sse: true, idleMs: 0, resetEvent: 'event: error\ndata: {"reset":1}\n\n', stallEvent: 'event: error\ndata: {"stall":1}\n\n', scrub: null, done: (o, n) => outcomes.push([o, n]), ...extra },
  };
}

both('complete events pass in order; a split event is held until whole', async () => {
  const { stream } = upstream(['event: a\ndata: 1\n\nevent: b\nda', 'ta: 2\n\n', 'event: c\ndata: 3\n\n']);
  const { o, outcomes } = opts();
  const reader = guardBody(stream, o).getReader();
  const first = dec.decode((await reader.read()).value);
  assert.equal(first, 'event: a\ndata: 1\n\n', 'the partial event b is not sent with a');
  const parts = [first];
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(dec.decode(r.value));
  }
  assert.equal(parts.join(''), 'event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\ndata: 3\n\n');
  assert.deepEqual(outcomes, [['completed', parts.join('').length]]);
});

both('a reset mid-stream ends with the error event and drops the partial event', async () => {
  const { stream } = upstream(['data: 1\n\ndata: {"trunc', ], { fail: true });
  const { o, outcomes } = opts();
  const text = (await readAll(guardBody(stream, o))).join('');
  assert.equal(text, 'data: 1\n\nevent: error\ndata: {"reset":1}\n\n');
  assert.equal(outcomes[0][0], 'upstream_reset');
});

both('a stall ends the stream with the stall event and cancels upstream', async () => {
  const up = upstream(['data: 1\n\n'], { hang: true });
  const { o, outcomes } = opts({ idleMs: 50 });
  const text = (await readAll(guardBody(up.stream, o))).join('');
  assert.equal(text, 'data: 1\n\nevent: error\ndata: {"stall":1}\n\n');
  assert.equal(outcomes[0][0], 'upstream_stalled');
  assert.ok(up.wasCancelled());
});

both('non-SSE bodies pass chunk by chunk and error on reset', async () => {
  const { stream } = upstream(['{"a":', '1}']);
  const { o } = opts({ sse: false });
  assert.deepEqual(await readAll(guardBody(stream, o)), ['{"a":', '1}']);
  const broken = upstream(['{"a":'], { fail: true });
  await assert.rejects(readAll(guardBody(broken.stream, opts({ sse: false }).o)));
});

both('client cancel cancels upstream and reports it', async () => {
  const up = upstream(['data: 1\n\n'], { hang: true });
  const { o, outcomes } = opts();
  const reader = guardBody(up.stream, o).getReader();
  await reader.read();
  await reader.cancel('client went away');
  assert.ok(up.wasCancelled());
  assert.equal(outcomes[0][0], 'client_cancelled');
});

both('the scrubber sees every byte once, also on reset', async () => {
  const seen = [];
  const scrub = {
    push: (u) => { seen.push(dec.decode(u)); return enc.encode(dec.decode(u).replaceAll('S', '*')); },
    finish: () => new Uint8Array(0),
    free: () => {},
  };
  const { stream } = upstream(['data: S1\n\n', 'data: S2\n\n'], { fail: true });
  const { o } = opts({ scrub });
  const text = (await readAll(guardBody(stream, o))).join('');
  assert.equal(text, 'data: *1\n\ndata: *2\n\nevent: error\ndata: {"reset":1}\n\n');
  assert.deepEqual(seen, ['data: S1\n\n', 'data: S2\n\n']);
});

both('readLimited returns the body, or null past the limit and cancels', async () => {
  const { readLimited } = await import('../../src/shell/js/guard.js');
  const small = upstream(['ab', 'cd']);
  assert.equal(dec.decode(await readLimited(small.stream, 4)), 'abcd');
  const big = upstream(['ab', 'cd', 'e'], { hang: true });
  assert.equal(await readLimited(big.stream, 4), null);
  assert.ok(big.wasCancelled());
  assert.equal((await readLimited(null, 4)).length, 0);
});

both('after a client disconnect the tap is freed once and never used again', async () => {
  let freed = 0;
  let usedAfterFree = false;
  const tap = {
    push: (u) => { if (freed) usedAfterFree = true; return undefined; },
    finish: () => { if (freed) usedAfterFree = true; return new Uint8Array(0); },
    free: () => { freed += 1; },
  };
  const up = upstream(['data: 1\n\n', 'data: 2\n\n'], { hang: true });
  const ac = new AbortController();
  const { o, outcomes } = opts({ scrub: tap, signal: ac.signal });
  const reader = guardBody(up.stream, o).getReader();
  await reader.read();
  ac.abort();
  await new Promise((r) => setTimeout(r, 20));
  await reader.read().catch(() => {});
  await reader.cancel().catch(() => {});
  assert.equal(freed, 1);
  assert.equal(usedAfterFree, false);
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0][0], 'client_cancelled');
  assert.ok(up.wasCancelled());
});

both('every blank-line form ends an event, also split over chunks; a reset drops only the partial one', async () => {
  for (const blank of ['\n\n', '\r\n\r\n', '\r\r', '\n\r\n', '\r\n\n']) {
    const whole = `data: 1${blank}data: 2${blank}data: {"tr`;
    for (let cut = 1; cut < whole.length; cut++) {
      const { stream } = upstream([whole.slice(0, cut), whole.slice(cut)], { fail: true });
      const { o } = opts();
      const text = (await readAll(guardBody(stream, o))).join('');
      assert.equal(text, `data: 1${blank}data: 2${blank}event: error\ndata: {"reset":1}\n\n`, `${JSON.stringify(blank)} cut at ${cut}`);
    }
  }
});

both('an event longer than maxEvent is forwarded as it comes, not held; a reset closes it off first', async () => {
  const up = upstream(['data: 1\n\ndata: "0123456789', 'abcdef'], { hang: true });
  const { o, outcomes } = opts({ maxEvent: 8, idleMs: 50 });
  const reader = guardBody(up.stream, o).getReader();
  assert.equal(dec.decode((await reader.read()).value), 'data: 1\n\ndata: "0123456789', 'the big event is not held back');
  assert.equal(dec.decode((await reader.read()).value), 'abcdef');
  assert.equal(dec.decode((await reader.read()).value), '\n\n');
  assert.equal(dec.decode((await reader.read()).value), 'event: error\ndata: {"stall":1}\n\n');
  assert.equal(outcomes[0][0], 'upstream_stalled');
});

test('a byte stream is read in large reads: what has arrived goes to the tap at once', async () => {
  const pushes = [];
  const tap = { push: (u) => { pushes.push(u.length); return undefined; }, finish: () => new Uint8Array(0), free: () => {} };
  const events = Array.from({ length: 50 }, (_, i) => `data: ${i}\n\n`);
  const stream = new ReadableStream({
    type: 'bytes',
    start(c) {
      for (const e of events) c.enqueue(enc.encode(e));
      c.close();
    },
  });
  const { o } = opts({ scrub: tap });
  const text = (await readAll(guardBody(stream, o))).join('');
  assert.equal(text, events.join(''));
  assert.deepEqual(pushes, [events.join('').length], 'one read took every queued chunk');
});

// A tap that frames events itself, like the wasm SSE scrubber: push returns
// whole events only, finish what it still holds (possibly a partial event).
function framingTap({ spillAt = Infinity } = {}) {
  let pending = '';
  let spilling = false;
  return {
    framed: true,
    get spilling() { return spilling; },
    push(u) {
      pending += dec.decode(u);
      if (spilling || pending.length > spillAt) {
        const out = pending;
        pending = '';
        spilling = true;
        return enc.encode(out);
      }
      const end = pending.lastIndexOf('\n\n');
      if (end < 0) return new Uint8Array(0);
      const out = pending.slice(0, end + 2);
      pending = pending.slice(end + 2);
      return enc.encode(out);
    },
    finish() {
      const out = pending;
      pending = '';
      return enc.encode(out);
    },
    free() {},
  };
}

both('a framing tap: its events pass as they come, a reset drops only its partial event', async () => {
  const { stream } = upstream(['data: 1\n\ndata: 2', '\n\ndata: {"tr'], { fail: true });
  const { o, outcomes } = opts({ scrub: framingTap() });
  const text = (await readAll(guardBody(stream, o))).join('');
  assert.equal(text, 'data: 1\n\ndata: 2\n\nevent: error\ndata: {"reset":1}\n\n');
  assert.equal(outcomes[0][0], 'upstream_reset');
});

both('a framing tap that spilled an over-long event: a reset closes it off first', async () => {
  const { stream } = upstream(['data: 1\n\ndata: "0123456789', 'abc'], { fail: true });
  const { o } = opts({ scrub: framingTap({ spillAt: 12 }) });
  const text = (await readAll(guardBody(stream, o))).join('');
  assert.equal(text, 'data: 1\n\ndata: "0123456789abc\n\nevent: error\ndata: {"reset":1}\n\n');
});
