//! Header policy of the relay, both ways. Pure: `(lowercase name, value)` pairs.
//!
//! Up (provider → MCP server): an allow-list of what MCP needs (`accept`,
//! `content-type`, `last-event-id`, `user-agent`, every `mcp-*` header,
//! trace context); everything else, the capability token and any other
//! credential included, is dropped, and the tenant's real credential added.
//! Down (MCP server → provider): the content type, MCP headers and a few
//! protocol headers; the server's `www-authenticate` (which would point the
//! provider at the real server's OAuth metadata) is not passed on.

use crate::tenant::McpAuth;

const UP_ALLOWED: [&str; 7] =
    ["accept", "content-type", "last-event-id", "user-agent", "traceparent", "tracestate", "baggage"];
const DOWN_ALLOWED: [&str; 5] = ["content-type", "cache-control", "allow", "retry-after", "x-accel-buffering"];

/// The real credential as outbound headers. The values are secrets: they go
/// only into the request to the MCP server. An `oauth2` credential must have
/// been resolved to its access token (a bearer) first; unresolved it sends nothing.
#[must_use]
pub fn credential_headers(auth: &McpAuth) -> Vec<(String, String)> {
    match auth {
        McpAuth::None | McpAuth::OAuth2(_) => Vec::new(),
        McpAuth::Bearer(t) => vec![("authorization".into(), format!("Bearer {}", t.expose()))],
        McpAuth::Headers(h) => h.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.expose().to_string())).collect(),
    }
}

/// Headers for the request to the MCP server.
#[must_use]
pub fn upstream_headers(client: &[(String, String)], credentials: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = client
        .iter()
        .filter(|(n, _)| UP_ALLOWED.contains(&n.as_str()) || n.starts_with("mcp-"))
        .filter(|(n, _)| !credentials.iter().any(|(c, _)| c == n))
        .cloned()
        .collect();
    out.extend(credentials);
    out
}

/// Headers for the answer to the provider.
#[must_use]
pub fn downstream_headers(upstream: &[(String, String)]) -> Vec<(String, String)> {
    upstream.iter().filter(|(n, _)| DOWN_ALLOWED.contains(&n.as_str()) || n.starts_with("mcp-")).cloned().collect()
}

/// The capability token of `Authorization: Bearer <token>`; `""` when absent
/// or another scheme (the caller treats that as a missing token).
#[must_use]
pub fn capability_token(client: &[(String, String)]) -> &str {
    crate::http::headers::get(client, "authorization").and_then(crate::http::auth::bearer).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use crate::http::headers::get;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_string(), (*b).to_string())).collect()
    }

    #[test]
    fn up_keeps_mcp_headers_and_swaps_the_credential() {
        let client = h(&[
            ("authorization", "Bearer mcr1.cap.tag"),
            ("x-api-key", "other"),
            ("cookie", "a=b"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-session-id", "s1"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "search"),
            ("mcp-param-region", "eu"),
            ("last-event-id", "42"),
            ("origin", "https://provider.example"),
            ("cf-connecting-ip", "1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("host", "gw"),
            ("x-key", "client-supplied"),
        ]);
        let creds = credential_headers(&McpAuth::Headers(vec![("X-Key".into(), Secret::new("real"))]));
        let up = upstream_headers(&client, creds);
        assert_eq!(get(&up, "x-key"), Some("real"));
        assert_eq!(up.iter().filter(|(n, _)| n == "x-key").count(), 1);
        for gone in ["authorization", "x-api-key", "cookie", "origin", "cf-connecting-ip", "x-forwarded-for", "host"] {
            assert_eq!(get(&up, gone), None, "{gone}");
        }
        for kept in
            ["mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "mcp-param-region", "last-event-id"]
        {
            assert!(get(&up, kept).is_some(), "{kept}");
        }
        let up = upstream_headers(&client, credential_headers(&McpAuth::Bearer(Secret::new("tok"))));
        assert_eq!(get(&up, "authorization"), Some("Bearer tok"));
        let up = upstream_headers(&client, credential_headers(&McpAuth::None));
        assert_eq!(get(&up, "authorization"), None);
    }

    #[test]
    fn down_passes_mcp_headers_only() {
        let up = h(&[
            ("content-type", "text/event-stream"),
            ("mcp-session-id", "s1"),
            ("www-authenticate", "Bearer resource_metadata=\"https://internal/\""),
            ("set-cookie", "x=y"),
            ("content-length", "5"),
            ("x-accel-buffering", "no"),
        ]);
        assert_eq!(
            downstream_headers(&up),
            h(&[("content-type", "text/event-stream"), ("mcp-session-id", "s1"), ("x-accel-buffering", "no")])
        );
    }

    #[test]
    fn token_from_bearer_only() {
        assert_eq!(capability_token(&h(&[("authorization", "Bearer  mcr1.a.b ")])), "mcr1.a.b");
        assert_eq!(capability_token(&h(&[("authorization", "bearer x")])), "x");
        assert_eq!(capability_token(&h(&[("authorization", "Basic x")])), "");
        assert_eq!(capability_token(&h(&[("x-api-key", "mcr1.a.b")])), "");
        assert_eq!(capability_token(&h(&[])), "");
    }
}
