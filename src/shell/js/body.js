// Reads a request body into one buffer, undoing its Content-Encoding first,
// and stops as soon as the decoded bytes pass `limit` (a zip bomb costs at
// most `limit` bytes of memory). Returns the bytes, or one of the strings
// 'too_large', 'unsupported' (the runtime has no decoder for a coding) and
// 'corrupt' (the coded bytes do not decode, or the body could not be read).

import { readLimited, readWhole } from './guard.js';

/**
 * @param {ReadableStream<Uint8Array> | null} body
 * @param {string[]} formats DecompressionStream formats, in decoding order
 * @param {number} limit
 * @param {boolean} bounded its declared length is within `limit` (the runtime enforces it)
 * @returns {Promise<Uint8Array | 'too_large' | 'unsupported' | 'corrupt'>}
 */
export async function readBody(body, formats, limit, bounded) {
  if (!body) return new Uint8Array(0);
  if (bounded && formats.length === 0) {
    try {
      return await readWhole(body);
    } catch {
      return 'corrupt';
    }
  }
  let stream = body;
  try {
    for (const f of formats) stream = stream.pipeThrough(new DecompressionStream(f));
  } catch {
    // Left unread: the runtime discards a request body nobody reads.
    return 'unsupported';
  }
  try {
    const bytes = await readLimited(stream, limit);
    return bytes === null ? 'too_large' : bytes;
  } catch {
    return 'corrupt';
  }
}
