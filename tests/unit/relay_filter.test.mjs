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

const ERROR_EVENT = 'event: message\ndata: {"error":"refused"}\n\n';

/**
 * Drops "bad" from events (like the wasm filter drops a tool), refuses events
 * whose data is not JSON (as the wasm filter does); records what it was shown.
 */
function fakeFilter() {
  const shown = [];
  let freed = 0;
  const f = {
    shown,
    refused: false,
    freed: () => freed,
    event(ev) {
      const text = dec.decode(ev);
      shown.push(text);
      const data = text.split(/\r\n|\r|\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
      try {
        JSON.parse(data);
      } catch {
        return f.refuse();
      }
      return text.includes('bad') ? enc.encode(text.replaceAll(',"bad"', '')) : undefined;
    },
    refuse() {
      f.refused = true;
      return enc.encode(ERROR_EVENT);
    },
    free() { freed++; },
  };
  return f;
}

const MAX = 1024;

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
  const parts = await readAll(filterSse(stream, f, MAX));
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
  const parts = await readAll(filterSse(stream, f, MAX));
  assert.equal(parts.join(''), 'data: 1\r\n\r\ndata: {"result":{"\\u0074ools":["bad"]}}\r\n\r\ndata: 2\r\n\r\n');
  assert.equal(f.shown.length, 1, 'the escaped event was checked');
});

test('a trailing partial event is flushed through the check at the end', async () => {
  const f = fakeFilter();
  const { stream } = upstream(['data: {"tools":["x","bad"]}']);
  assert.deepEqual(await readAll(filterSse(stream, f, MAX)), ['data: {"tools":["x"]}']);
});

test('an upstream error errors the stream; a client cancel cancels upstream', async () => {
  const f = fakeFilter();
  await assert.rejects(readAll(filterSse(upstream(['data: 1\n\n'], { fail: true }).stream, f, MAX)));
  assert.equal(f.freed(), 1);
  const up = upstream(['data: 1\n\n'], { hang: true });
  const g = fakeFilter();
  const reader = filterSse(up.stream, g, MAX).getReader();
  assert.equal(dec.decode((await reader.read()).value), 'data: 1\n\n');
  await reader.cancel('gone');
  assert.ok(up.wasCancelled());
  assert.equal(g.freed(), 1);
});

test('every line ending the format allows frames events, also split over chunks', async () => {
  for (const eol of ['\n', '\r\n', '\r']) {
    for (const mix of [eol + eol, '\n\r\n', '\r\n\n', '\r\r']) {
      const f = fakeFilter();
      const whole = `data: {"result":{"tools":["ok","bad"]}}${eol}${mix}data: 2${eol}${eol}`;
      for (let cut = 1; cut < whole.length; cut++) {
        const g = fakeFilter();
        const text = (await readAll(filterSse(upstream([whole.slice(0, cut), whole.slice(cut)]).stream, g, MAX))).join('');
        assert.ok(!text.includes('bad'), `${JSON.stringify(mix)} cut at ${cut}: ${JSON.stringify(text)}`);
        assert.equal(g.refused, false);
      }
      assert.ok(f);
    }
  }
});

test('fails closed: an unreadable candidate event ends the stream with the error event and cancels upstream', async () => {
  const f = fakeFilter();
  const up = upstream(['data: 1\n\ndata: {"result":{"tools":["bad"]}', ' oops\n\ndata: {"tools":["late"]}\n\n'], { hang: true });
  const text = (await readAll(filterSse(up.stream, f, MAX))).join('');
  assert.equal(text, 'data: 1\n\n' + ERROR_EVENT);
  assert.ok(up.wasCancelled());
  assert.equal(f.freed(), 1);
});

test('fails closed: an event longer than the bound is never passed on', async () => {
  const f = fakeFilter();
  const big = 'x'.repeat(600);
  // Still unfinished when it passes the bound (the end would only come later).
  const up = upstream(['data: 1\n\ndata: "' + big, big], { hang: true });
  const text = (await readAll(filterSse(up.stream, f, MAX))).join('');
  assert.equal(text, 'data: 1\n\n' + ERROR_EVENT);
  assert.ok(up.wasCancelled());
});

test('a trailing partial candidate that does not parse is refused too', async () => {
  const f = fakeFilter();
  const text = (await readAll(filterSse(upstream(['data: {"tools":["x"']).stream, f, MAX))).join('');
  assert.equal(text, ERROR_EVENT);
});
