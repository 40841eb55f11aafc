//! Request `Content-Encoding`. The gateway polices what the provider will
//! read, so a coded body is decoded first (bounded by `MAX_BODY_BYTES` after
//! decoding) and forwarded decoded, without the header. Codings it cannot
//! decode are refused (415) rather than forwarded unread.

use crate::http::error::GatewayError;

/// A content coding the gateway decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// `deflate`: the zlib format (RFC 9110 §8.4.1.2).
    Deflate,
    Brotli,
}

impl Coding {
    /// The coding's name in `Content-Encoding`.
    #[must_use]
    pub const fn token(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
        }
    }

    /// The `CompressionStream` format name of the runtime.
    #[must_use]
    pub const fn format(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "brotli",
        }
    }
}

/// The codings of a `Content-Encoding` header in the order they were
/// applied (decode in reverse). Empty for none or `identity`.
///
/// # Errors
/// 415 naming an unknown coding (echoed only when it is a short token).
pub fn parse(header: Option<&str>) -> Result<Vec<Coding>, GatewayError> {
    let Some(header) = header else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for token in header.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let coding = match token.to_ascii_lowercase().as_str() {
            "identity" => continue,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Brotli,
            _ => {
                let shown = if token.len() <= 32 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    token.to_string()
                } else {
                    "(unreadable)".to_string()
                };
                return Err(GatewayError::UnsupportedEncoding { encoding: shown });
            }
        };
        out.push(coding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings() {
        assert_eq!(parse(None).unwrap(), vec![]);
        assert_eq!(parse(Some("identity")).unwrap(), vec![]);
        assert_eq!(parse(Some("GZIP")).unwrap(), vec![Coding::Gzip]);
        assert_eq!(parse(Some("deflate, br")).unwrap(), vec![Coding::Deflate, Coding::Brotli]);
        assert_eq!(parse(Some("x-gzip,,identity")).unwrap(), vec![Coding::Gzip]);
    }

    #[test]
    fn unknown_codings_are_415_and_never_echo_junk() {
        let e = parse(Some("gzip, zstd")).unwrap_err();
        assert_eq!(e.wire().status, 415);
        assert!(e.message().contains("'zstd'"));
        let e = parse(Some("sk-secret-looking\"<x>")).unwrap_err();
        assert!(!e.message().contains("sk-secret"), "{}", e.message());
    }
}
