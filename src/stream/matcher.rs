//! Finds secrets in bytes in every form JSON can give them: raw, as the
//! content of a JSON string (escape depth 1), and as the content of a JSON
//! string inside a JSON string (depth 2). At depth `L` a character may be
//! written raw or as any JSON escape of it (`\"`, `\\`, `\/`, `\b` … `\t`,
//! `\uXXXX` in any hex case, surrogate pairs), and every byte of that escape
//! is itself written at depth `L - 1`.
//!
//! JSON string decoding is deterministic, so matching is a walk: at a start
//! position, decode one character at depth `L` and compare it with the
//! secret's next character; no backtracking. A walk that runs out of input
//! while still matching is a *possible partial match*: only from there on is
//! anything held back.

/// The deepest escape level matched.
pub const MAX_DEPTH: u8 = 2;

/// One step of decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// A character and the position after it.
    Char(char, usize),
    /// Not a character at this depth (bad UTF-8, bad escape).
    Invalid,
    /// The input ends inside it.
    More,
}

/// The result of trying one start position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A secret ends just before this position.
    Match(usize),
    No,
    /// A secret may start here; more input decides.
    More,
}

/// Reads one UTF-8 character.
fn read_raw(buf: &[u8], pos: usize) -> Read {
    let Some(&b) = buf.get(pos) else { return Read::More };
    if b < 0x80 {
        return Read::Char(char::from(b), pos + 1);
    }
    let width = match b {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Read::Invalid,
    };
    let end = pos + width;
    let avail = &buf[pos..end.min(buf.len())];
    if avail[1..].iter().any(|&c| c & 0xc0 != 0x80) {
        return Read::Invalid;
    }
    if end > buf.len() {
        return Read::More;
    }
    match std::str::from_utf8(avail).ok().and_then(|s| s.chars().next()) {
        Some(c) => Read::Char(c, end),
        None => Read::Invalid,
    }
}

/// Reads one character at `depth`.
fn read(buf: &[u8], pos: usize, depth: u8) -> Read {
    if depth == 0 {
        return read_raw(buf, pos);
    }
    match read(buf, pos, depth - 1) {
        Read::Char('\\', p) => escape(buf, p, depth),
        other => other,
    }
}

/// Reads four hex digits at `depth` (the depth of the escape's bytes).
fn hex4(buf: &[u8], mut pos: usize, depth: u8) -> Result<(u32, usize), Read> {
    let mut v = 0;
    for _ in 0..4 {
        match read(buf, pos, depth) {
            Read::Char(c, p) => {
                v = v * 16 + c.to_digit(16).ok_or(Read::Invalid)?;
                pos = p;
            }
            other => return Err(other),
        }
    }
    Ok((v, pos))
}

/// The rest of an escape whose backslash ended just before `pos`.
fn escape(buf: &[u8], pos: usize, depth: u8) -> Read {
    let inner = depth - 1;
    let (e, p) = match read(buf, pos, inner) {
        Read::Char(e, p) => (e, p),
        other => return other,
    };
    let simple = match e {
        '"' | '\\' | '/' => Some(e),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'u' => None,
        _ => return Read::Invalid,
    };
    if let Some(c) = simple {
        return Read::Char(c, p);
    }
    let (hi, p) = match hex4(buf, p, inner) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !(0xd800..0xdc00).contains(&hi) {
        return char::from_u32(hi).map_or(Read::Invalid, |c| Read::Char(c, p));
    }
    // A high surrogate: the low one must follow as `\uXXXX` at the same depth.
    let p = match read(buf, p, inner) {
        Read::Char('\\', p) => p,
        Read::Char(..) | Read::Invalid => return Read::Invalid,
        Read::More => return Read::More,
    };
    let p = match read(buf, p, inner) {
        Read::Char('u', p) => p,
        Read::Char(..) | Read::Invalid => return Read::Invalid,
        Read::More => return Read::More,
    };
    match hex4(buf, p, inner) {
        Ok((lo, p)) if (0xdc00..0xe000).contains(&lo) => {
            char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)).map_or(Read::Invalid, |c| Read::Char(c, p))
        }
        Ok(_) => Read::Invalid,
        Err(r) => r,
    }
}

/// The secrets, as characters.
#[derive(Clone)]
pub struct Matcher {
    needles: Vec<Vec<char>>,
    /// `start[b]`: a secret may start at a byte `b`: some secret's raw first
    /// byte, or a backslash (any escaped form).
    start: [bool; 256],
    /// The distinct bytes `start` marks, for a vectorised search when they are few.
    starts: Vec<u8>,
    /// Each secret's first two raw bytes (`None`: it is one byte long). After
    /// a raw first byte, a secret can only go on with its raw second byte or
    /// with a backslash (its second character escaped).
    pairs: Vec<(u8, Option<u8>)>,
}

impl Matcher {
    /// A matcher for these secrets; `None` when there are none.
    #[must_use]
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut needles: Vec<Vec<char>> = Vec::new();
        let mut start = [false; 256];
        start[usize::from(b'\\')] = true;
        let mut pairs = Vec::new();
        for s in secrets {
            let chars: Vec<char> = s.chars().collect();
            if chars.is_empty() || needles.contains(&chars) {
                continue;
            }
            let bytes = s.as_bytes();
            start[usize::from(bytes[0])] = true;
            pairs.push((bytes[0], bytes.get(1).copied()));
            needles.push(chars);
        }
        let starts = (0..=255u8).filter(|&b| start[usize::from(b)]).collect();
        (!needles.is_empty()).then_some(Self { needles, start, starts, pairs })
    }

    /// The first position at or after `from` where a secret may start, judging by its byte.
    fn next_start(&self, buf: &[u8], from: usize) -> Option<usize> {
        let rest = &buf[from..];
        let at = match *self.starts.as_slice() {
            [a] => memchr::memchr(a, rest),
            [a, b] => memchr::memchr2(a, b, rest),
            [a, b, c] => memchr::memchr3(a, b, c, rest),
            _ => rest.iter().position(|&b| self.start[usize::from(b)]),
        };
        at.map(|k| from + k)
    }

    /// Whether a secret can start at `pos` judging by its first two bytes:
    /// a cheap test that rules out almost every position before [`Self::at`] walks it.
    fn may_start_at(&self, buf: &[u8], pos: usize) -> bool {
        let b = buf[pos];
        if b == b'\\' {
            return true;
        }
        match buf.get(pos + 1) {
            None | Some(b'\\') => true,
            Some(&n) => self.pairs.iter().any(|&(f, s)| f == b && s.is_none_or(|s| s == n)),
        }
    }

    /// Whether any secret, or the start of one, can be in `buf`, even as the
    /// end of a JSON string inside it (a raw first byte followed by `"`):
    /// `false` means `buf` needs no scrubbing and holds no partial match.
    #[must_use]
    pub fn may_touch(&self, buf: &[u8]) -> bool {
        let mut i = 0;
        while let Some(at) = self.next_start(buf, i) {
            i = at;
            if buf.get(i + 1) == Some(&b'"') || self.may_start_at(buf, i) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// The longest secret starting at `pos`, in any form. Any position may
    /// start one, even the byte after a backslash: over-matching where the
    /// bytes do spell a form of a secret is preferred to letting one through.
    #[must_use]
    pub fn at(&self, buf: &[u8], pos: usize) -> Found {
        let mut best = None;
        let mut more = false;
        for needle in &self.needles {
            for depth in 0..=MAX_DEPTH {
                let mut p = pos;
                let mut outcome = Found::Match(0);
                for &want in needle {
                    match read(buf, p, depth) {
                        Read::Char(c, q) if c == want => p = q,
                        Read::Char(..) | Read::Invalid => {
                            outcome = Found::No;
                            break;
                        }
                        Read::More => {
                            outcome = Found::More;
                            break;
                        }
                    }
                }
                match outcome {
                    Found::Match(_) => best = best.max(Some(p)),
                    Found::More => more = true,
                    Found::No => {}
                }
            }
        }
        match (more, best) {
            (true, _) => Found::More,
            (false, Some(end)) => Found::Match(end),
            (false, None) => Found::No,
        }
    }

    /// Replaces every secret in `buf` by `with`, leftmost first, the longest
    /// at a position. Unless `last`, stops at the first possible partial
    /// match: returns the output and how many bytes of `buf` it covers (the
    /// rest must be offered again with more input).
    #[must_use]
    pub fn replace(&self, buf: &[u8], with: &[u8], last: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(buf.len());
        let mut copied = 0;
        let mut i = 0;
        while i < buf.len() {
            // Most bytes cannot start a secret: skip them.
            match self.next_start(buf, i) {
                Some(at) => i = at,
                None => {
                    i = buf.len();
                    break;
                }
            }
            if self.may_start_at(buf, i) {
                match self.at(buf, i) {
                    Found::Match(end) => {
                        out.extend_from_slice(&buf[copied..i]);
                        out.extend_from_slice(with);
                        i = end;
                        copied = end;
                        continue;
                    }
                    Found::More if !last => break,
                    Found::More | Found::No => {}
                }
            }
            i += 1;
        }
        out.extend_from_slice(&buf[copied..i]);
        (out, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form of `c` at `depth`, as the matcher promises to read it.
    fn forms(c: char, depth: u8) -> Vec<String> {
        if depth == 0 {
            return vec![c.to_string()];
        }
        let u = |upper: bool| -> String {
            c.encode_utf16(&mut [0u16; 2])
                .iter()
                .map(|x| if upper { format!("\\u{x:04X}") } else { format!("\\u{x:04x}") })
                .collect()
        };
        // A raw backslash would start an escape: at depth 1 and deeper it is always escaped.
        let mut one: Vec<String> = if c == '\\' { vec![] } else { vec![c.to_string()] };
        one.extend([u(false), u(true)]);
        match c {
            '"' | '\\' | '/' => one.push(format!("\\{c}")),
            '\n' => one.push("\\n".into()),
            _ => {}
        }
        // Each byte of each depth-1 form, written at depth - 1 (first form only, to keep it small).
        one.iter()
            .map(|f| f.chars().map(|ch| forms(ch, depth - 1).last().cloned().unwrap_or_default()).collect())
            .collect()
    }

    fn scrub(m: &Matcher, s: &str) -> String {
        let (out, n) = m.replace(s.as_bytes(), b"[R]", true);
        assert_eq!(n, s.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_escape_form_of_every_char() {
        let secret = "a\"b\\c/d é😀";
        let m = Matcher::new([secret]).unwrap();
        for depth in 0..=MAX_DEPTH {
            for c in secret.chars() {
                for f in forms(c, depth) {
                    let written: String = secret
                        .chars()
                        .map(|x| if x == c { f.clone() } else { forms(x, depth).last().cloned().unwrap_or_default() })
                        .collect();
                    assert_eq!(scrub(&m, &format!("<{written}>")), "<[R]>", "depth {depth}: {written}");
                }
            }
        }
    }

    #[test]
    fn json_serialised_once_and_twice() {
        let secret = "tok\"en/\\x\u{1}";
        let m = Matcher::new([secret]).unwrap();
        let once = serde_json::to_string(secret).unwrap();
        let twice = serde_json::to_string(&once).unwrap();
        assert_eq!(scrub(&m, &once), "\"[R]\"");
        assert_eq!(scrub(&m, &twice), "\"\\\"[R]\\\"\"");
        assert_eq!(scrub(&m, "tok\\u0022en\\/\\u005Cx\\u0001"), "[R]");
        assert_eq!(scrub(&m, "tok\\\\u0022en\\\\\\/\\\\\\\\x\\\\u0001"), "[R]", "depth 2 with \\u escapes");
    }

    #[test]
    fn partial_matches_are_held_and_nothing_else() {
        let m = Matcher::new(["abcdefgh"]).unwrap();
        let (out, n) = m.replace(b"xx abc", b"[R]", false);
        assert_eq!((out.as_slice(), n), (&b"xx "[..], 3));
        let (out, n) = m.replace(b"xx ab\\u00", b"[R]", false);
        assert_eq!((out.as_slice(), n), (&b"xx "[..], 3), "ab\\u0063… may still be the secret");
        let (out, n) = m.replace(b"xx ab\\n", b"[R]", false);
        assert_eq!((out.as_slice(), n), (&b"xx ab\\n"[..], 7), "ab\\n cannot");
        let (out, n) = m.replace(b"abcdefgX", b"[R]", false);
        assert_eq!((out.as_slice(), n), (&b"abcdefgX"[..], 8));
        assert_eq!(scrub(&m, "abcdefg"), "abcdefg", "at the end a partial match is just text");
    }

    #[test]
    fn a_form_after_a_backslash_is_still_found() {
        let m = Matcher::new(["\"quoted"]).unwrap();
        assert_eq!(scrub(&m, "x\\\"quoted"), "x[R]", "the escaped form");
        let m = Matcher::new(["nquoted"]).unwrap();
        // `\\u006e` at depth 2 is `n`: the first backslash stays.
        assert_eq!(scrub(&m, "x\\\\\\u006equoted"), "x\\[R]");
    }

    #[test]
    fn may_touch_sees_secrets_and_their_starts_only() {
        let m = Matcher::new(["token-123"]).unwrap();
        assert!(
            !m.may_touch(b"data: {\"delta\":\"the cat is\"}\n\n"),
            "t followed by neither o, a backslash nor a quote"
        );
        assert!(m.may_touch(b"{\"delta\":\"a tok\"}"), "a possible start");
        assert!(m.may_touch(b"{\"delta\":\"at\"}"), "a one-byte start at the end of a string");
        assert!(m.may_touch(b"x\\u0074oken-123"), "an escaped form");
        assert!(m.may_touch(b"xt"), "a start at the end of the bytes");
    }

    #[test]
    fn invalid_input_never_panics() {
        let m = Matcher::new(["\u{e9}abcde"]).unwrap();
        for s in [&b"\xff\xfe\\u"[..], b"\\u12", b"\\ud83d\\u", b"\\ud83dx", b"\xc3", b"\\\\\\"] {
            let _ = m.replace(s, b"[R]", true);
            let _ = m.replace(s, b"[R]", false);
        }
    }
}
