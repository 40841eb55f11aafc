// Unit tests of src/shell/js/relay_filter.js (the relay's streaming SSE tool filter) under Node's web streams.
// The wasm filter is stood in for by a JS object with the same interface.
import test from 'node:test';
import assert from 'node:assert/strict';
import { filterSse } from '../../src/shell/js/relay_filter.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function upstream(chunks, { fail = false, hang = false } = {}) {
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream({
    pull(c) {
      if (i < chunks.length) return c.enqueue(enc.encode(chunks[i++]));
      if (fail) return c.error(new Error('connection reset'));
      if (hang) return new Promise(() => {});
      c.close();
    },
    cancel() { cancelled = true; },
  });
  return { stream, wasCancelled: () => cancelled };
}

/** Drops "bad" from events (like the wasm filter drops a tool); records what it was shown. */
function fakeFilter() {
  const shown = [];
  let freed = 0;
  return {
    shown,
    freed: () => freed,
    event(ev) {
      const text = dec.decode(ev);
      shown.push(text);
      return text.includes('bad') ? enc.encode(text.replaceAll(',"bad"', '')) : undefined;
    },
    free() { freed++; },
  };
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

test('events are forwarded as they complete; only tool-list candidates reach the filter', async () => {
  const f = fakeFilter();
  const { stream } = upstream([
    'event: message\ndata: {"method":"notifications/progress"}\n\nevent: mess',
    'age\ndata: {"result":{"tools":["ok","bad"]}}\n\n',
    'data: {"id":3}\n\n',
  ]);
  const parts = await readAll(filterSse(stream, f));
  assert.deepEqual(parts, [
    'event: message\ndata: {"method":"notifications/progress"}\n\n',
    'event: message\ndata: {"result":{"tools":["ok"]}}\n\n',
    'data: {"id":3}\n\n',
  ]);
  assert.deepEqual(f.shown, ['event: message\ndata: {"result":{"tools":["ok","bad"]}}\n\n']);
  assert.equal(f.freed(), 1);
});

test('several events in one chunk, CRLF framing, and an escape that could hide "tools"', async () => {
  const f = fakeFilter();
  const { stream } = upstream(['data: 1\r\n\r\ndata: {"result":{"\\u0074ools":["bad"]}}\r\n\r\ndata: 2\r\n\r\n']);
  const parts = await readAll(filterSse(stream, f));
  assert.equal(parts.join(''), 'data: 1\r\n\r\ndata: {"result":{"\\u0074ools":["bad"]}}\r\n\r\ndata: 2\r\n\r\n');
  assert.equal(f.shown.length, 1, 'the escaped event was checked');
});

test('a trailing partial event is flushed through the check at the end', async () => {
  const f = fakeFilter();
  const { stream } = upstream(['data: {"tools":["x","bad"]}']);
  assert.deepEqual(await readAll(filterSse(stream, f)), ['data: {"tools":["x"]}']);
});

test('an upstream error errors the stream; a client cancel cancels upstream', async () => {
  const f = fakeFilter();
  await assert.rejects(readAll(filterSse(upstream(['data: 1\n\n'], { fail: true }).stream, f)));
  assert.equal(f.freed(), 1);
  const up = upstream(['data: 1\n\n'], { hang: true });
  const g = fakeFilter();
  const reader = filterSse(up.stream, g).getReader();
  assert.equal(dec.decode((await reader.read()).value), 'data: 1\n\n');
  await reader.cancel('gone');
  assert.ok(up.wasCancelled());
  assert.equal(g.freed(), 1);
});
