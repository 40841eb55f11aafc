// Unit tests of src/shell/js/sse.js (the JS SSE framer) against the fixtures
// the Rust framer (src/stream/framer.rs) is tested with.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SseFramer, Held } from '../../src/shell/js/sse.js';

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/sse/framing.json', import.meta.url), 'utf8'));
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Events and tail of `bytes` fed in the pieces `cuts` makes, the way guard.js and relay_filter.js hold them. */
function frame(bytes, cuts, max = 1 << 20) {
  const framer = new SseFramer(max);
  const held = new Held();
  const events = [];
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    const chunk = bytes.subarray(last, Math.max(last, Math.min(c, bytes.length)));
    last += chunk.length;
    let start = 0;
    for (const end of framer.scan(chunk)) {
      events.push(dec.decode(held.take(chunk.subarray(start, end))));
      start = end;
    }
    held.add(chunk.subarray(start));
  }
  const ended = framer.finish();
  const rest = dec.decode(held.take());
  if (ended) return { events: [...events, rest], tail: '' };
  return { events, tail: rest };
}

test('shared fixtures: every single cut point and byte by byte', () => {
  assert.ok(fixtures.length >= 10);
  for (const f of fixtures) {
    const bytes = enc.encode(f.stream);
    for (let cut = 0; cut <= bytes.length; cut++) {
      assert.deepEqual(frame(bytes, [cut]), { events: f.events, tail: f.tail }, `${f.name}, cut at ${cut}`);
    }
    const every = [...Array(bytes.length).keys()];
    assert.deepEqual(frame(bytes, every), { events: f.events, tail: f.tail }, `${f.name}, byte by byte`);
  }
});

test('a CRLF split over two chunks is one line terminator', () => {
  const f = new SseFramer(100);
  assert.deepEqual(f.scan(enc.encode('data: 1\r')), []);
  assert.deepEqual(f.scan(enc.encode('\n')), []);
  assert.deepEqual(f.scan(enc.encode('data: 2\r\n\r')), [], 'a bare \\r blank line waits for the next byte');
  assert.deepEqual(f.scan(enc.encode('\ndata: 3')), [1]);
});

test('the bound flags an event as soon as it is longer, and resets at its end', () => {
  const f = new SseFramer(8);
  f.scan(enc.encode('data: 01'));
  assert.equal(f.oversize, false);
  f.scan(enc.encode('2'));
  assert.equal(f.oversize, true);
  assert.deepEqual(f.scan(enc.encode('\n\ndata')), [2]);
  assert.equal(f.oversize, false);
});

test('scanning is linear: a long event in many small chunks is fast', () => {
  const f = new SseFramer(1 << 30);
  const held = new Held();
  const piece = enc.encode('x'.repeat(16));
  for (let i = 0; i < 200_000; i++) {
    assert.equal(f.scan(piece).length, 0);
    held.add(piece);
  }
  assert.equal(held.take(enc.encode('\n\n')).length, 16 * 200_000 + 2);
});
