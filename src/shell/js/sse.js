// The SSE framer, the same machine as src/stream/framer.rs (both are checked
// against tests/fixtures/sse/): where each event of a byte stream ends, found
// incrementally — every byte is looked at once, whatever the chunking.
//
// Line terminators are `\n`, `\r\n` and a bare `\r`; an event ends at a blank
// line (the second of two consecutive terminators), and a terminator at the
// start of an event is an empty event. An event whose blank line is a bare
// `\r` is reported once the next byte is known (or at the end), so a `\r\n`
// split over two chunks is never read as two terminators.

const START = 0; // at the start of an event
const LINE = 1; // inside a line
const EOL = 2; // after `\n` / `\r\n` ending a non-blank line
const CR = 3; // after `\r` ending a non-blank line
const END_CR = 4; // after `\r` ending a blank line: the event is over, a `\n` still belongs to it

export class SseFramer {
  /** @param {number} max events longer than this many bytes are flagged as oversize */
  constructor(max) {
    this.max = max;
    this.state = START;
    this.len = 0;
  }

  /**
   * Scans the next chunk.
   * @param {Uint8Array} chunk
   * @returns {number[]} offsets in `chunk` just past each event that ends in it
   *   (0: the bytes held from earlier chunks are a complete event)
   */
  scan(chunk) {
    const ends = [];
    let state = this.state;
    let len = this.len;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (state === END_CR) {
        state = START;
        len = 0;
        if (b === 10) {
          ends.push(i + 1);
          continue;
        }
        ends.push(i);
      }
      len++;
      if (b === 10) {
        if (state === CR) state = EOL;
        else if (state === START || state === EOL) {
          len = 0;
          ends.push(i + 1);
          state = START;
        } else state = EOL;
      } else if (b === 13) {
        state = state === LINE ? CR : END_CR;
      } else state = LINE;
    }
    this.state = state;
    this.len = len;
    return ends;
  }

  /** The current, unfinished event is longer than the bound. */
  get oversize() {
    return this.len > this.max;
  }

  /** At the end of the stream: whether the held bytes end with a complete event. Resets. */
  finish() {
    const ended = this.state === END_CR;
    this.state = START;
    this.len = 0;
    return ended;
  }
}

/** The parts as one buffer (the part itself when there is only one). */
export function join(parts) {
  if (parts.length === 1) return parts[0];
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes held for an unfinished event, as a list of parts joined once (no repeated copying). */
export class Held {
  constructor() {
    this.parts = [];
    this.length = 0;
  }

  /** Keeps a copy of `bytes`: for a view into a buffer that is being enqueued (the runtime may detach it). */
  add(bytes) {
    this.keep(bytes.length ? bytes.slice() : bytes);
  }

  /** Keeps `bytes` itself: for a buffer nothing else will enqueue. */
  keep(bytes) {
    if (bytes.length === 0) return;
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  /** All held bytes followed by `more` (not copied when nothing is held), and forgets them. */
  take(more) {
    const parts = this.parts;
    const total = this.length + (more ? more.length : 0);
    this.parts = [];
    this.length = 0;
    if (parts.length === 0) return more ?? new Uint8Array(0);
    if (parts.length === 1 && !(more && more.length)) return parts[0];
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    if (more) out.set(more, at);
    return out;
  }
}
