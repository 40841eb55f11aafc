//! The one canonical spelling of a request path. Routes are decided on it and
//! the provider receives exactly it, so no spelling the provider might
//! normalise (`%65` for `e`, `//`, a trailing `/`) can reach a route the
//! gateway did not police.
//!
//! Canonical means: percent-escapes of unreserved characters (RFC 3986 §2.3)
//! decoded, every other escape written with upper-case hex, no empty segment,
//! no trailing slash, no dot segment, no escaped `/` or `\`. Spellings that
//! cannot be made canonical without guessing are refused (404).

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonCanonical {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// `//` or a trailing `/`.
    EmptySegment,
    /// `.` or `..` as a segment, in any spelling.
    DotSegment,
    /// `%2F` or `%5C` (a slash hidden in a segment), or a raw `\`.
    HiddenSlash,
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical form of `path` (which starts with `/`, query excluded).
///
/// # Errors
/// [`NonCanonical`] for spellings that are refused rather than rewritten.
pub fn canonical(path: &str) -> Result<String, NonCanonical> {
    // The runtime hands over an already percent-encoded path; raw non-ASCII
    // is not a path we route.
    if !path.is_ascii() {
        return Err(NonCanonical::BadEscape);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            return Err(NonCanonical::HiddenSlash);
        }
        if b != b'%' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) =
            (bytes.get(i + 1).copied().and_then(hex_val), bytes.get(i + 2).copied().and_then(hex_val))
        else {
            return Err(NonCanonical::BadEscape);
        };
        let decoded = hi << 4 | lo;
        if matches!(decoded, b'/' | b'\\') {
            return Err(NonCanonical::HiddenSlash);
        }
        if is_unreserved(decoded) {
            out.push(char::from(decoded));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
        }
        i += 3;
    }
    if out.len() > 1 {
        for seg in out[1..].split('/') {
            match seg {
                "" => return Err(NonCanonical::EmptySegment),
                "." | ".." => return Err(NonCanonical::DotSegment),
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_escapes_are_decoded_others_normalised() {
        assert_eq!(canonical("/openai/v1/respons%65s").unwrap(), "/openai/v1/responses");
        assert_eq!(canonical("/openai/v1/%72%65%73ponses").unwrap(), "/openai/v1/responses");
        assert_eq!(canonical("/a/%7e%2D%5f%2E%41").unwrap(), "/a/~-_.A");
        assert_eq!(canonical("/a/b%3ac%20d").unwrap(), "/a/b%3Ac%20d");
        assert_eq!(canonical("/").unwrap(), "/");
        assert_eq!(canonical("/healthz").unwrap(), "/healthz");
    }

    #[test]
    fn refused_spellings() {
        for (p, why) in [
            ("/openai/v1/responses/", NonCanonical::EmptySegment),
            ("/anthropic/v1//messages", NonCanonical::EmptySegment),
            ("//openai/v1/responses", NonCanonical::EmptySegment),
            ("/openai/v1/./responses", NonCanonical::DotSegment),
            ("/openai/v1/%2e%2E/admin", NonCanonical::DotSegment),
            ("/openai/v1/.%2e", NonCanonical::DotSegment),
            ("/openai/v1/a%2Fb", NonCanonical::HiddenSlash),
            ("/openai/v1/a%5cb", NonCanonical::HiddenSlash),
            ("/openai/v1/a\\b", NonCanonical::HiddenSlash),
            ("/openai/v1/a%zz", NonCanonical::BadEscape),
            ("/openai/v1/a%4", NonCanonical::BadEscape),
            ("/openai/v1/é", NonCanonical::BadEscape),
        ] {
            assert_eq!(canonical(p), Err(why), "{p}");
        }
    }

    #[test]
    fn canonical_is_a_fixed_point() {
        for p in ["/openai/v1/respons%65s", "/a/b%3ac", "/x/%7E/y", "/anthropic/v1/messages/count_tokens"] {
            let once = canonical(p).unwrap();
            assert_eq!(canonical(&once).unwrap(), once);
        }
    }

    #[test]
    fn never_panics() {
        for p in ["%", "/%", "/%%", "/%2", "/a%", "/%ff%fe", "/\u{0}", ""] {
            let _ = canonical(p);
        }
    }
}
