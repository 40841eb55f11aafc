//! The little URL handling OAuth needs, without the `url` crate (kept out of
//! the bundle for size): splitting an absolute URL, its origin, appending
//! query parameters and `application/x-www-form-urlencoded` encoding.
//!
//! Strict by design: only ASCII-graphic URLs with a `scheme://authority`
//! are accepted; anything else is `None` and callers treat it as unusable.

#![forbid(unsafe_code)]

/// The parts of an absolute URL, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Lowercased.
    pub scheme: String,
    /// `host[:port]`, without userinfo.
    pub authority: &'a str,
    /// The host alone (IPv6 literals keep their brackets), lowercased.
    pub host: String,
    /// From the first `/` up to `?` or `#`; may be empty.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub has_fragment: bool,
    pub has_userinfo: bool,
}

/// Splits `raw`; `None` unless it is `scheme://authority…` of ASCII-graphic characters.
#[must_use]
pub fn split(raw: &str) -> Option<Parts<'_>> {
    if raw.is_empty() || raw.len() > 4096 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = raw.split_once("://")?;
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (full_authority, tail) = rest.split_at(end);
    let (has_userinfo, authority) = match full_authority.rsplit_once('@') {
        Some((_, a)) => (true, a),
        None => (false, full_authority),
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split_once(']')?.0),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string(),
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let (before_fragment, has_fragment) = match tail.split_once('#') {
        Some((b, _)) => (b, true),
        None => (tail, false),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    Some(Parts {
        scheme: scheme.to_ascii_lowercase(),
        authority,
        host: host.to_ascii_lowercase(),
        path,
        query,
        has_fragment,
        has_userinfo,
    })
}

/// `scheme://authority` of `raw`.
#[must_use]
pub fn origin(raw: &str) -> Option<String> {
    split(raw).map(|p| format!("{}://{}", p.scheme, p.authority.to_ascii_lowercase()))
}

/// One `application/x-www-form-urlencoded` component: `A-Z a-z 0-9 * - . _`
/// kept, space as `+`, every other byte `%XX`.
#[must_use]
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    out
}

/// `k=v&k=v`, form-encoded.
#[must_use]
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// `endpoint` with `pairs` appended to its query (existing parameters kept);
/// `None` if `endpoint` is not an absolute URL or has a fragment.
#[must_use]
pub fn with_query(endpoint: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let parts = split(endpoint)?;
    if parts.has_fragment {
        return None;
    }
    let sep = match parts.query {
        None => "?",
        Some("") => "",
        Some(_) => "&",
    };
    Some(format!("{endpoint}{sep}{}", form(pairs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let p = split("HTTPS://user:pw@MCP.example.com:8443/v1/mcp?x=1#f").unwrap();
        assert_eq!(p.scheme, "https");
        assert_eq!(p.authority, "MCP.example.com:8443");
        assert_eq!(p.host, "mcp.example.com");
        assert_eq!(p.path, "/v1/mcp");
        assert_eq!(p.query, Some("x=1"));
        assert!(p.has_fragment && p.has_userinfo);
        let p = split("http://[::1]:9/").unwrap();
        assert_eq!(p.host, "[::1]");
        let p = split("https://a.b").unwrap();
        assert_eq!((p.path, p.query), ("", None));
        for bad in
            ["", "a.b/x", "https://", "https:///x", "1http://a", "https://a b/", "https://exämple/", "https://[::1/"]
        {
            assert!(split(bad).is_none(), "{bad}");
        }
        assert_eq!(origin("https://A.example:1/x?y").as_deref(), Some("https://a.example:1"));
    }

    #[test]
    fn encodes_forms() {
        assert_eq!(encode("a b+c/d:é~"), "a+b%2Bc%2Fd%3A%C3%A9%7E");
        assert_eq!(form(&[("grant_type", "refresh_token"), ("x", "1&2=3")]), "grant_type=refresh_token&x=1%262%3D3");
        assert_eq!(with_query("https://as/authorize", &[("a", "1")]).as_deref(), Some("https://as/authorize?a=1"));
        assert_eq!(
            with_query("https://as/authorize?t=x", &[("a", "1")]).as_deref(),
            Some("https://as/authorize?t=x&a=1")
        );
        assert_eq!(with_query("https://as/authorize?", &[("a", "1")]).as_deref(), Some("https://as/authorize?a=1"));
        assert!(with_query("https://as/a#f", &[]).is_none());
        assert!(with_query("/relative", &[]).is_none());
    }
}
