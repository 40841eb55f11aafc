//! The one SSE framer: where each event of a byte stream ends, found
//! incrementally (every byte is looked at once, whatever the chunking), with
//! a bound on how long one event may grow. `src/shell/js/sse.js` is the same
//! machine in JS; both are checked against the fixtures in
//! `tests/fixtures/sse/`.
//!
//! Line terminators are the three the SSE format allows: `\n`, `\r\n` and a
//! bare `\r`. An event ends at a blank line, i.e. at the second of two
//! consecutive terminators (`\n\n`, `\r\r`, `\r\n\r\n`, `\n\r\n`, `\r\n\n`,
//! …); a terminator at the very start of an event is a blank line too (an
//! empty event). A `\r` that may be followed by `\n` is only one terminator
//! with it: an event whose blank line is a bare `\r` is reported once the
//! next byte is known (or at the end of the stream), so a `\r\n` split over
//! two chunks is never read as two terminators.

/// Longest event held to be read whole (by the stream guard and the
/// scrubber); a longer one is handed on as it streams.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;

/// What came before the next byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of an event.
    Start,
    /// Inside a line.
    Line,
    /// Just after a `\n` (or a `\r\n`) that ended a non-blank line.
    Eol,
    /// Just after a `\r` that ended a non-blank line; a `\n` would belong to it.
    Cr,
    /// Just after a `\r` that ended a blank line: the event is over, and a
    /// following `\n` is still part of it.
    EndCr,
}

/// Incremental framer. Offsets it reports are positions in the chunk just
/// scanned; an event ends *before* that position (0: the bytes held from
/// earlier chunks form a complete event).
#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
    /// Bytes of the current event seen so far.
    len: usize,
    max: usize,
}

impl Framer {
    /// A framer that flags events longer than `max` bytes.
    #[must_use]
    pub const fn new(max: usize) -> Self {
        Self { state: State::Start, len: 0, max }
    }

    /// Scans the next chunk, calling `on_end` with the offset just past each
    /// event that ends in it, in order.
    pub fn scan(&mut self, chunk: &[u8], mut on_end: impl FnMut(usize)) {
        let mut i = 0;
        while i < chunk.len() {
            // Inside a line only a terminator changes anything: skip to it.
            if self.state == State::Line {
                let Some(k) = memchr::memchr2(b'\n', b'\r', &chunk[i..]) else {
                    self.len += chunk.len() - i;
                    return;
                };
                self.len += k;
                i += k;
            }
            let b = chunk[i];
            if self.state == State::EndCr {
                self.state = State::Start;
                self.len = 0;
                if b == b'\n' {
                    on_end(i + 1);
                    i += 1;
                    continue;
                }
                on_end(i);
            }
            self.len += 1;
            self.state = match (b, self.state) {
                (b'\n', State::Cr) => State::Eol,
                (b'\n', State::Start | State::Eol) => {
                    self.len = 0;
                    on_end(i + 1);
                    State::Start
                }
                (b'\r', State::Start | State::Eol | State::Cr) => State::EndCr,
                (b'\n', _) => State::Eol,
                (b'\r', _) => State::Cr,
                _ => State::Line,
            };
            i += 1;
        }
    }

    /// The current (unfinished) event is longer than the bound.
    #[must_use]
    pub const fn oversize(&self) -> bool {
        self.len > self.max
    }

    /// Bytes of the current, unfinished event.
    #[must_use]
    pub const fn pending_len(&self) -> usize {
        self.len
    }

    /// At the end of the stream: the held bytes end with a complete event
    /// (one whose blank line was a bare `\r`). Resets the framer.
    pub fn finish(&mut self) -> bool {
        let ended = self.state == State::EndCr;
        *self = Self::new(self.max);
        ended
    }
}

/// A piece of the stream, as [`Events`] hands it on.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One whole event, its closing blank line included.
    Event(&'a [u8]),
    /// Bytes of an event longer than the bound, handed on as they arrive
    /// instead of being held; `last` marks the piece that ends the event.
    Oversize { bytes: &'a [u8], last: bool },
    /// The bytes left at the end of the stream that did not end in a blank line.
    Tail(&'a [u8]),
}

/// The framer plus the bytes of the unfinished event: whole events are
/// handed on borrowed from the chunk where possible, so only an event that
/// spans chunks is copied, once.
#[derive(Debug, Clone)]
pub struct Events {
    framer: Framer,
    held: Vec<u8>,
    /// The current event passed the bound; its bytes are streamed, not held.
    spilling: bool,
}

impl Events {
    #[must_use]
    pub const fn new(max: usize) -> Self {
        Self { framer: Framer::new(max), held: Vec::new(), spilling: false }
    }

    /// Feeds a chunk; `f` gets every piece that is ready, in order.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(Piece<'_>)) {
        let mut ends = Vec::new();
        self.framer.scan(chunk, |e| ends.push(e));
        let mut start = 0;
        for end in ends {
            if self.spilling {
                self.spilling = false;
                f(Piece::Oversize { bytes: &chunk[start..end], last: true });
            } else if self.held.is_empty() {
                f(Piece::Event(&chunk[start..end]));
            } else {
                self.held.extend_from_slice(&chunk[start..end]);
                let event = std::mem::take(&mut self.held);
                f(Piece::Event(&event));
            }
            start = end;
        }
        let rest = &chunk[start..];
        if self.spilling || self.framer.oversize() {
            if !self.spilling {
                self.spilling = true;
                let held = std::mem::take(&mut self.held);
                if !held.is_empty() {
                    f(Piece::Oversize { bytes: &held, last: false });
                }
            }
            if !rest.is_empty() {
                f(Piece::Oversize { bytes: rest, last: false });
            }
        } else {
            self.held.extend_from_slice(rest);
        }
    }

    /// Part of an event longer than the bound has been handed on and its end has not.
    #[must_use]
    pub const fn spilling(&self) -> bool {
        self.spilling
    }

    /// Ends the stream: hands on what is still held.
    pub fn finish(&mut self, mut f: impl FnMut(Piece<'_>)) {
        let ended = self.framer.finish();
        let held = std::mem::take(&mut self.held);
        if std::mem::take(&mut self.spilling) {
            f(Piece::Oversize { bytes: &[], last: true });
        }
        if held.is_empty() {
            return;
        }
        f(if ended { Piece::Event(&held) } else { Piece::Tail(&held) });
    }
}

/// Where each line of one event is (any terminator), terminators excluded;
/// blank lines are skipped.
pub fn line_spans(event: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= event.len() {
            return None;
        }
        let rest = &event[at..];
        let cut = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
        let span = at..at + cut;
        let mut next = cut;
        if next < rest.len() {
            next += if rest[next] == b'\r' && rest.get(next + 1) == Some(&b'\n') { 2 } else { 1 };
        }
        at += next;
        Some(span)
    })
    .filter(|r| !r.is_empty())
}

/// The lines of one event (any terminator), without their terminators; the
/// blank line that ends it is not included.
pub fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    line_spans(event).map(move |r| &event[r])
}

/// The `field: value` pair of a line (`None` for a comment). A line without
/// a colon is a field with an empty value; one space after the colon is
/// dropped, as the SSE format says.
#[must_use]
pub fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.first() == Some(&b':') {
        return None;
    }
    Some(match line.iter().position(|&b| b == b':') {
        Some(c) => {
            let v = &line[c + 1..];
            (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &[][..]),
    })
}

/// The event's data: its `data` fields joined with `\n`; `None` when it has none.
#[must_use]
pub fn data(event: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (name, value) in lines(event).filter_map(field) {
        if name != b"data" {
            continue;
        }
        match &mut out {
            Some(d) => {
                d.push(b'\n');
                d.extend_from_slice(value);
            }
            None => out = Some(value.to_vec()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    /// One shared fixture: a stream, and the events a framer must find in it.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fixture {
        name: String,
        stream: String,
        events: Vec<String>,
        /// Bytes left at the end that do not end in a blank line.
        tail: String,
    }

    fn fixtures() -> Vec<Fixture> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sse/framing.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    /// Every piece of `stream` cut at `cuts`: (kind, bytes), kind `e` event,
    /// `o` oversize, `O` last oversize piece, `t` tail.
    fn pieces(stream: &[u8], cuts: &[usize], max: usize) -> Vec<(char, Vec<u8>)> {
        let mut ev = Events::new(max);
        let mut out = Vec::new();
        let mut take = |p: Piece<'_>| match p {
            Piece::Event(e) => out.push(('e', e.to_vec())),
            Piece::Oversize { bytes, last } => out.push((if last { 'O' } else { 'o' }, bytes.to_vec())),
            Piece::Tail(t) => out.push(('t', t.to_vec())),
        };
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            let c = c.clamp(last, stream.len());
            ev.push(&stream[last..c], &mut take);
            last = c;
        }
        ev.finish(&mut take);
        out
    }

    /// Events and tail of `stream` cut at `cuts`, with no bound in play.
    fn frame(stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let all = pieces(stream, cuts, 1 << 20);
        let events = all.iter().filter(|p| p.0 == 'e').map(|p| p.1.clone()).collect();
        let tail = all.iter().filter(|p| p.0 == 't').flat_map(|p| p.1.clone()).collect();
        (events, tail)
    }

    #[test]
    fn shared_fixtures() {
        let all = fixtures();
        assert!(all.len() >= 10, "the fixture file is read");
        for f in &all {
            let s = f.stream.as_bytes();
            let want: Vec<Vec<u8>> = f.events.iter().map(|e| e.as_bytes().to_vec()).collect();
            for cut in 0..=s.len() {
                let (events, tail) = frame(s, &[cut]);
                assert_eq!(events, want, "{} cut at {cut}", f.name);
                assert_eq!(tail, f.tail.as_bytes(), "{} cut at {cut}", f.name);
            }
            let every: Vec<usize> = (0..s.len()).collect();
            assert_eq!(frame(s, &every).0, want, "{} byte by byte", f.name);
        }
    }

    #[test]
    fn crlf_split_over_chunks_is_one_terminator() {
        let mut f = Framer::new(100);
        let mut ends = Vec::new();
        f.scan(b"data: 1\r", |e| ends.push(e));
        f.scan(b"\n", |e| ends.push(e));
        f.scan(b"data: 2\r\n\r", |e| ends.push(e));
        assert!(ends.is_empty(), "a bare \\r blank line waits for the next byte");
        f.scan(b"\ndata: 3", |e| ends.push(e));
        assert_eq!(ends, vec![1]);
        f.scan(b"\r\r", |e| ends.push(e));
        assert!(f.finish());
    }

    #[test]
    fn oversize_events_are_streamed_not_held() {
        let got = pieces(b"data: 0123456789\n\ndata: x\n\n", &[10], 8);
        let kinds: String = got.iter().map(|p| p.0).collect();
        assert_eq!(kinds, "oOe", "{got:?}");
        assert_eq!(got[1].1, b"456789\n\n");
        let mut ev = Events::new(8);
        ev.push(b"data: 0123456789", |_| {});
        assert!(ev.held.is_empty(), "nothing is held for an oversize event");
    }

    #[test]
    fn fields_and_data() {
        let e = b"event: x\r\ndata: {\"a\":\rdata:1}\n:comment\nid\n\n";
        let names: Vec<&[u8]> = lines(e).filter_map(field).map(|(n, _)| n).collect();
        assert_eq!(names, vec![&b"event"[..], b"data", b"data", b"id"]);
        assert_eq!(data(e).unwrap(), b"{\"a\":\n1}");
        assert_eq!(data(b"event: ping\n\n"), None);
    }

    proptest! {
        #[test]
        fn any_chunking_finds_the_same_events(
            parts in proptest::collection::vec(prop_oneof![
                Just("\n"), Just("\r"), Just("\r\n"), Just("data: x"), Just(":c"), Just("é"),
            ], 0..40),
            cuts in proptest::collection::vec(0usize..200, 0..10),
        ) {
            let s = parts.concat();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let whole = frame(s.as_bytes(), &[]);
            prop_assert_eq!(&frame(s.as_bytes(), &cuts), &whole);
            let mut joined: Vec<u8> = whole.0.concat();
            joined.extend_from_slice(&whole.1);
            prop_assert_eq!(joined, s.as_bytes().to_vec(), "every byte exactly once");
            // A small bound changes how bytes are handed on, never which bytes.
            let small: Vec<u8> = pieces(s.as_bytes(), &cuts, 3).into_iter().flat_map(|p| p.1).collect();
            prop_assert_eq!(small, s.as_bytes().to_vec());
        }
    }
}
