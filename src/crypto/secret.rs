//! A secret value that cannot leak by accident.
//!
//! `Secret` has no `Display`, `Serialize` or `PartialEq`; its `Debug` prints
//! `[redacted]`. The plaintext is reachable only through [`Secret::expose`],
//! so every place that reads it is greppable.

use std::fmt;

/// The text that stands in for every secret in admin answers and logs.
pub const REDACTED: &str = "[redacted]";

/// Plaintext of a provider key, MCP token, header value or gateway key.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext. Callers must only hand it to an upstream request or the cipher.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_plaintext() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "sk-very-secret");
    }
}
