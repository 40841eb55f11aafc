//! Exact-value scrubbing of response bodies: every secret the gateway
//! injected into the request is replaced by `[redacted]` on the way back,
//! also in its JSON-escaped forms and across chunk boundaries.
//!
//! Streaming stays incremental: only a chunk's tail that could be the start
//! of a secret is held back (at most the longest needle's length minus one
//! byte), so text that cannot begin a secret, such as an SSE event's closing
//! blank line, goes out at once.

use crate::crypto::REDACTED;

/// Secrets shorter than this are not scrubbed: replacing two-letter values
/// would mangle ordinary text without protecting anything.
pub const MIN_SCRUB_LEN: usize = 6;

/// Incremental scrubber over a byte stream.
pub struct Scrubber {
    needles: Vec<Vec<u8>>,
    /// `first[b]`: some needle starts with byte `b`.
    first: [bool; 256],
    max_len: usize,
    tail: Vec<u8>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// One level of JSON string escaping (secrets are printable ASCII, so only
/// `"`, `\` and the optional `\/` change).
fn json_escape(s: &[u8], escape_slash: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 4);
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' if escape_slash => out.extend_from_slice(b"\\/"),
            _ => out.push(b),
        }
    }
    out
}

impl Scrubber {
    /// A scrubber for these plaintext secrets; `None` if none is long enough to scrub.
    #[must_use]
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            if s.len() < MIN_SCRUB_LEN {
                continue;
            }
            let raw = s.as_bytes().to_vec();
            let once = json_escape(&raw, false);
            let twice = json_escape(&once, false);
            for n in [json_escape(&raw, true), twice, once, raw] {
                if !needles.contains(&n) {
                    needles.push(n);
                }
            }
        }
        if needles.is_empty() {
            return None;
        }
        // Longest first, so a longer form wins where two forms overlap.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut first = [false; 256];
        for n in &needles {
            if let Some(&b) = n.first() {
                first[usize::from(b)] = true;
            }
        }
        let max_len = needles.iter().map(Vec::len).max().unwrap_or(1);
        Some(Self { needles, first, max_len, tail: Vec::new() })
    }

    /// Longest needle; the most held back between chunks is one less.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Scrubs a chunk; returns what can be sent now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.tail.is_empty() {
            let (out, consumed) = self.scan(chunk, chunk.len() - self.partial_suffix(chunk));
            self.tail = chunk[consumed..].to_vec();
            return out;
        }
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        let (out, consumed) = self.scan(&buf, buf.len() - self.partial_suffix(&buf));
        self.tail = buf.split_off(consumed);
        out
    }

    /// Length of the longest suffix of `buf` that is a proper prefix of some
    /// needle: only those bytes may still become a match.
    fn partial_suffix(&self, buf: &[u8]) -> usize {
        let longest = (self.max_len - 1).min(buf.len());
        (1..=longest)
            .rev()
            .find(|&k| {
                let tail = &buf[buf.len() - k..];
                self.first[usize::from(tail[0])] && self.needles.iter().any(|n| n.len() > k && n.starts_with(tail))
            })
            .unwrap_or(0)
    }

    /// Flushes what was held back at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.tail);
        let (out, _) = self.scan(&buf, buf.len());
        out
    }

    /// Replaces matches starting before `safe_end`. A needle starting before
    /// it either fits in `buf` or was a partial suffix, which `safe_end` excludes.
    fn scan(&self, buf: &[u8], safe_end: usize) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        let mut copied = 0;
        while i < safe_end {
            if self.first[usize::from(buf[i])] {
                if let Some(n) = self.needles.iter().find(|n| buf[i..].starts_with(n)) {
                    out.extend_from_slice(&buf[copied..i]);
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += n.len();
                    copied = i;
                    continue;
                }
            }
            i += 1;
        }
        let end = i.max(copied);
        out.extend_from_slice(&buf[copied..end]);
        (out, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scrub_all(s: &mut Scrubber, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn replaces_raw_and_escaped_forms() {
        let mut s = Scrubber::new(["tok\"en/123"]).unwrap();
        let body = br#"a tok"en/123 b "tok\"en/123" c tok\"en\/123 d"#;
        let out = String::from_utf8(scrub_all(&mut s, &[body])).unwrap();
        assert_eq!(out, "a [redacted] b \"[redacted]\" c [redacted] d");
    }

    #[test]
    fn split_across_chunks() {
        let mut s = Scrubber::new(["secret-token"]).unwrap();
        let out = scrub_all(&mut s, &[b"xx secr", b"et-to", b"ken yy"]);
        assert_eq!(out, b"xx [redacted] yy");
    }

    #[test]
    fn holds_back_only_a_possible_secret_start() {
        let mut s = Scrubber::new(["abcdefgh"]).unwrap();
        assert_eq!(s.push(b"0123456789"), b"0123456789", "nothing here can start the secret");
        assert_eq!(s.push(b"data: x\n\nabcd"), b"data: x\n\n", "only the possible start is held");
        assert_eq!(s.push(b"efgh!\n\n"), b"[redacted]!\n\n");
        assert_eq!(s.push(b"zabcdefg"), b"z");
        assert!(s.max_len() > 7);
        assert_eq!(s.finish(), b"abcdefg");
    }

    #[test]
    fn short_secrets_are_ignored() {
        assert!(Scrubber::new(["abc"]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_chunking_gives_the_same_result(
            prefix in "[a-z \"\\\\]{0,40}",
            suffix in "[a-z \"\\\\]{0,40}",
            cuts in proptest::collection::vec(0usize..120, 0..8),
        ) {
            let secret = "Sk-live_\"9/x\\y";
            let escaped = String::from_utf8(json_escape(secret.as_bytes(), false)).unwrap();
            let body = format!("{prefix}{secret}{suffix}{escaped}{prefix}");
            let mut whole = Scrubber::new([secret]).unwrap();
            let expect = scrub_all(&mut whole, &[body.as_bytes()]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points { chunks.push(&body.as_bytes()[last..p]); last = p; }
            chunks.push(&body.as_bytes()[last..]);
            let mut split = Scrubber::new([secret]).unwrap();
            let got = scrub_all(&mut split, &chunks);
            prop_assert_eq!(&got, &expect);
            let text = String::from_utf8(got).unwrap();
            prop_assert!(!text.contains(secret));
            prop_assert!(!text.contains(&escaped));
        }
    }
}
