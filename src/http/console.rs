//! The response headers of the admin console's files and of the OpenAPI
//! document. The console handles an admin token and shows tenant-supplied
//! names, so it runs under a CSP that allows only its own script and style
//! from this origin: no inline script, no other origin, no framing.

/// Content-Security-Policy of every console file.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers set on a console file, besides its `content-type`.
#[must_use]
pub fn console_headers() -> [(&'static str, &'static str); 5] {
    [
        ("content-security-policy", CONSOLE_CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        // An upgrade must reach operators at once; the files are small.
        ("cache-control", "no-cache"),
    ]
}

/// The content type of a console file, from its path: the worker sets it
/// itself so that `nosniff` never meets a guessed type.
#[must_use]
pub fn content_type(asset_path: &str) -> &'static str {
    match asset_path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/html; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_only_self() {
        assert!(!CONSOLE_CSP.contains("unsafe"));
        assert!(!CONSOLE_CSP.contains("http"));
        assert!(CONSOLE_CSP.contains("script-src 'self'"));
        assert!(CONSOLE_CSP.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("/admin/"), "text/html; charset=utf-8");
        assert_eq!(content_type("/admin/console.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/admin/console.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/admin/openapi.json"), "application/json");
    }
}
