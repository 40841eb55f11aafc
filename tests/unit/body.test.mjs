// Unit tests of src/shell/js/body.js (request bodies: decoded, bounded) under Node's web streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { readBody } from '../../src/shell/js/body.js';

const streamOf = (...chunks) => new ReadableStream({
  start(c) {
    for (const x of chunks) c.enqueue(new Uint8Array(x));
    c.close();
  },
});

test('plain bodies are read whole, in any chunking', async () => {
  assert.deepEqual(Buffer.from(await readBody(streamOf(Buffer.from('ab'), Buffer.from('cd')), [], 10)), Buffer.from('abcd'));
  assert.deepEqual(await readBody(null, [], 10), new Uint8Array(0));
});

test('gzip and deflate are decoded; bytes that do not decode are corrupt', async () => {
  const text = Buffer.from('{"tools":[{"type":"mcp"}]}');
  assert.deepEqual(Buffer.from(await readBody(streamOf(zlib.gzipSync(text)), ['gzip'], 100)), text);
  assert.deepEqual(Buffer.from(await readBody(streamOf(zlib.deflateSync(text)), ['deflate'], 100)), text);
  // gzip over deflate, decoded in reverse order of application.
  const twice = zlib.gzipSync(zlib.deflateSync(text));
  assert.deepEqual(Buffer.from(await readBody(streamOf(twice), ['gzip', 'deflate'], 100)), text);
  assert.equal(await readBody(streamOf(text), ['gzip'], 100), 'corrupt');
});

test('the limit applies after decoding: a small bomb is cut off', async () => {
  const bomb = zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024));
  assert.ok(bomb.length < 64 * 1024);
  assert.equal(await readBody(streamOf(bomb), ['gzip'], 1024 * 1024), 'too_large');
  assert.equal(await readBody(streamOf(Buffer.alloc(11)), [], 10), 'too_large');
  assert.equal((await readBody(streamOf(Buffer.alloc(10)), [], 10)).length, 10);
});

test('an unknown format is unsupported', async () => {
  assert.equal(await readBody(streamOf(Buffer.from('x')), ['no-such-format'], 10), 'unsupported');
});
