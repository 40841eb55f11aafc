//! Exact-value scrubbing of answers: every secret the gateway injected into
//! the request is replaced by `[redacted]` on the way back — in the body, in
//! every JSON escape form ([`super::matcher`]), across chunk boundaries, and
//! in response headers.
//!
//! Two modes. Bytes: only a tail that could be the start of a secret is held
//! back (a possible partial match), so text that cannot begin a secret goes
//! out at once. SSE (`for_sse`): the stream is cut into events; a secret a
//! model's text splits over two text-delta events of one part
//! ([`super::deltas`]) is found in the reassembled text. Only a possible
//! partial match at the end of a delta is held back: its event waits; when
//! the next delta of the same part arrives, the held text moves into that
//! event (its delta string is rewritten, every other byte kept); when any
//! other event arrives or the stream ends, it goes back into its own event
//! (contentless events — pings, comments — wait behind a held delta instead,
//! so they cannot split a secret). Every event stays one well-formed event,
//! in order.

use super::deltas::{delta_of, splice, Delta};
use super::framer::{Events, Piece, MAX_EVENT};
use super::matcher::Matcher;
use super::sse::SseKind;
use crate::crypto::REDACTED;

/// Secrets shorter than this are not scrubbed: replacing two-letter values
/// would mangle ordinary text without protecting anything.
pub const MIN_SCRUB_LEN: usize = 6;

/// Incremental byte scrubbing: what is held back.
#[derive(Debug, Default, Clone)]
struct Tail {
    held: Vec<u8>,
}

impl Tail {
    fn push(&mut self, m: &Matcher, chunk: &[u8], last: bool) -> Vec<u8> {
        let out = if self.held.is_empty() {
            let (out, n) = m.replace(chunk, REDACTED.as_bytes(), last);
            self.held = chunk[n..].to_vec();
            out
        } else {
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(chunk);
            let (out, n) = m.replace(&buf, REDACTED.as_bytes(), last);
            self.held = buf.split_off(n);
            out
        };
        out
    }
}

/// A delta event waiting for the next piece of its text.
#[derive(Debug)]
struct HeldDelta {
    event: Vec<u8>,
    delta: Delta,
    /// Its text, scrubbed, without the held part.
    safe: String,
    /// The end of its text that may begin a secret.
    tail: Tail,
    /// Events that carry nothing (pings, comments) which arrived since, in order.
    queued: Vec<u8>,
}

/// Most bytes of contentless events queued behind a held delta; past it, the delta goes out.
const MAX_QUEUED: usize = 64 * 1024;

/// An event that carries no data but a ping: it may wait behind a held delta.
fn is_contentless(event: &[u8]) -> bool {
    match super::framer::data(event) {
        None => true,
        Some(d) => {
            #[derive(serde::Deserialize)]
            struct Type<'a> {
                #[serde(rename = "type", borrow)]
                kind: std::borrow::Cow<'a, str>,
            }
            serde_json::from_slice::<Type<'_>>(&d).is_ok_and(|t| t.kind == "ping")
        }
    }
}

#[derive(Debug)]
struct SseState {
    kind: SseKind,
    events: Events,
    held: Option<HeldDelta>,
    /// Bytes of an event too long to hold.
    spill: Tail,
}

#[derive(Debug)]
enum Mode {
    Bytes(Tail),
    Sse(Box<SseState>),
}

/// Incremental scrubber over one answer.
pub struct Scrubber {
    matcher: Matcher,
    mode: Mode,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber")
    }
}

fn matcher<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Matcher> {
    Matcher::new(secrets.into_iter().filter(|s| s.len() >= MIN_SCRUB_LEN))
}

impl Scrubber {
    /// A byte-mode scrubber for these plaintext secrets; `None` if none is long enough to scrub.
    #[must_use]
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        Some(Self { matcher: matcher(secrets)?, mode: Mode::Bytes(Tail::default()) })
    }

    /// A scrubber for an event stream of this dialect, which also finds
    /// secrets split over text-delta events.
    #[must_use]
    pub fn for_sse<'a>(secrets: impl IntoIterator<Item = &'a str>, kind: SseKind) -> Option<Self> {
        let state = SseState { kind, events: Events::new(MAX_EVENT), held: None, spill: Tail::default() };
        Some(Self { matcher: matcher(secrets)?, mode: Mode::Sse(Box::new(state)) })
    }

    /// The scrubber for an answer: SSE-aware when it is an event stream.
    #[must_use]
    pub fn for_body<'a>(secrets: impl IntoIterator<Item = &'a str>, sse: Option<SseKind>) -> Option<Self> {
        match sse {
            Some(kind) => Self::for_sse(secrets, kind),
            None => Self::new(secrets),
        }
    }

    /// Scrubs a chunk; returns what can be sent now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let m = &self.matcher;
        match &mut self.mode {
            Mode::Bytes(tail) => tail.push(m, chunk, false),
            Mode::Sse(st) => {
                let mut out = Vec::with_capacity(chunk.len());
                let st = &mut **st;
                st.events.push(chunk, |p| on_piece(m, st.kind, &mut st.held, &mut st.spill, &p, &mut out));
                out
            }
        }
    }

    /// Flushes what was held back at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let m = &self.matcher;
        match &mut self.mode {
            Mode::Bytes(tail) => tail.push(m, &[], true),
            Mode::Sse(st) => {
                let mut out = Vec::new();
                let st = &mut **st;
                st.events.finish(|p| on_piece(m, st.kind, &mut st.held, &mut st.spill, &p, &mut out));
                flush(m, &mut st.held, &mut out);
                out
            }
        }
    }

    /// Whether what [`Self::push`] returns ends on event boundaries: an SSE
    /// scrubber holds an unfinished event back (unless it is over the bound).
    #[must_use]
    pub const fn frames_events(&self) -> bool {
        matches!(self.mode, Mode::Sse(_))
    }

    /// An SSE scrubber has handed on part of an over-long event, not its end.
    #[must_use]
    pub fn spilling(&self) -> bool {
        match &self.mode {
            Mode::Sse(st) => st.events.spilling(),
            Mode::Bytes(_) => false,
        }
    }

    /// Response headers with every secret in their values replaced.
    #[must_use]
    pub fn scrub_headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let (out, _) = self.matcher.replace(value.as_bytes(), REDACTED.as_bytes(), true);
                (name.clone(), String::from_utf8(out).unwrap_or_else(|_| REDACTED.to_string()))
            })
            .collect()
    }
}

/// A whole chunk of bytes scrubbed with nothing held.
fn scrub_all(m: &Matcher, bytes: &[u8]) -> Vec<u8> {
    m.replace(bytes, REDACTED.as_bytes(), true).0
}

/// Sends the held delta event with its held text put back.
fn flush(m: &Matcher, held: &mut Option<HeldDelta>, out: &mut Vec<u8>) {
    if let Some(mut h) = held.take() {
        let rest = h.tail.push(m, &[], true);
        h.safe.push_str(&String::from_utf8_lossy(&rest));
        out.extend(scrub_all(m, &splice(&h.event, &h.delta.span, &h.safe)));
        out.extend(h.queued);
    }
}

fn on_piece(
    m: &Matcher,
    kind: SseKind,
    held: &mut Option<HeldDelta>,
    spill: &mut Tail,
    piece: &Piece<'_>,
    out: &mut Vec<u8>,
) {
    match *piece {
        // Nearly every event: nothing of a secret in it, nothing held before it.
        Piece::Event(event) if held.is_none() && !m.may_touch(event) => out.extend_from_slice(event),
        Piece::Event(event) => match delta_of(kind, event) {
            Some(delta) => on_delta(m, held, event, delta, out),
            None => match held {
                // A ping between two deltas must not split them.
                Some(h) if h.queued.len() + event.len() <= MAX_QUEUED && is_contentless(event) => {
                    h.queued.extend(scrub_all(m, event));
                }
                _ => {
                    flush(m, held, out);
                    out.extend(scrub_all(m, event));
                }
            },
        },
        Piece::Oversize { bytes, last } => {
            flush(m, held, out);
            out.extend(spill.push(m, bytes, last));
        }
        Piece::Tail(bytes) => {
            flush(m, held, out);
            out.extend(scrub_all(m, bytes));
        }
    }
}

fn on_delta(m: &Matcher, held: &mut Option<HeldDelta>, event: &[u8], delta: Delta, out: &mut Vec<u8>) {
    let mut tail = match held.take() {
        Some(h) if h.delta.key == delta.key => {
            // The held text moves into this event; the held event goes out without it.
            out.extend(scrub_all(m, &splice(&h.event, &h.delta.span, &h.safe)));
            out.extend(h.queued);
            h.tail
        }
        other => {
            *held = other;
            flush(m, held, out);
            Tail::default()
        }
    };
    let moved = !tail.held.is_empty();
    let scrubbed = tail.push(m, delta.text.as_bytes(), false);
    // Cut on a character boundary: a possible match starts at one.
    let safe = String::from_utf8(scrubbed).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if !tail.held.is_empty() {
        *held = Some(HeldDelta { event: event.to_vec(), delta, safe, tail, queued: Vec::new() });
        return;
    }
    if !moved && safe == delta.text {
        out.extend(scrub_all(m, event));
    } else {
        out.extend(scrub_all(m, &splice(event, &delta.span, &safe)));
    }
}

#[cfg(test)]
mod tests;
