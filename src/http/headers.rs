//! Header policy between the client, the gateway and the provider
//! (docs/routes.md, "Headers"). Pure: headers are `(lowercase name, value)` pairs.
//!
//! Invariant: the gateway key never leaves, in either header the SDKs use.

use crate::crypto::Secret;
use crate::provider::table::ALL_KEY_HEADERS;
use crate::provider::Provider;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus those the runtime sets itself.
const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Owned by the gateway on the way up: the encodings (the runtime negotiates
/// response compression itself; request bodies go up decoded) and the headers
/// that pick which of the provider account's organizations or projects pays.
/// Every provider's key header is the gateway's too (`ALL_KEY_HEADERS`).
const GATEWAY_OWNED_UP: [&str; 4] = ["accept-encoding", "content-encoding", "openai-organization", "openai-project"];

/// Headers that describe the client's network path: the provider has no use
/// for them, and a proxy must not pass on what a client claims about it.
const CLIENT_PATH: [&str; 4] = ["forwarded", "x-real-ip", "true-client-ip", "via"];

fn dropped_up(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
        || GATEWAY_OWNED_UP.contains(&name)
        || ALL_KEY_HEADERS.contains(&name)
        || CLIENT_PATH.contains(&name)
        || name.starts_with("cf-")
        || name.starts_with("x-forwarded-")
        || name.starts_with("mcpgate-")
}

/// Builds the upstream request headers: client headers minus hop-by-hop,
/// `cf-*` and every provider's key header, plus the tenant's provider key in
/// the header that provider expects (its [`crate::provider::table::Spec`]). `beta` replaces `anthropic-beta` when set.
#[must_use]
pub fn upstream_request_headers(
    client: &[(String, String)],
    provider: Provider,
    key: &Secret,
    beta: Option<&str>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = client
        .iter()
        .filter(|(n, _)| !dropped_up(n))
        .filter(|(n, _)| beta.is_none() || n != "anthropic-beta")
        .cloned()
        .collect();
    let header = provider.spec().key_header;
    out.push((header.name().into(), header.value(key.expose())));
    if let Some(b) = beta {
        out.push(("anthropic-beta".into(), b.to_string()));
    }
    out
}

/// Response headers for the client: the provider's, minus hop-by-hop and
/// the encoding headers (the runtime hands the worker a decoded body, and
/// an identity stream is never held back by a compressor).
#[must_use]
pub fn client_response_headers(upstream: &[(String, String)]) -> Vec<(String, String)> {
    upstream
        .iter()
        .filter(|(n, _)| !HOP_BY_HOP.contains(&n.as_str()) && n != "content-encoding" && n != "set-cookie")
        .cloned()
        .collect()
}

/// First value of a header (names are lowercase).
#[must_use]
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_string(), (*b).to_string())).collect()
    }

    #[test]
    fn gateway_key_never_goes_up() {
        let client = h(&[
            ("authorization", "Bearer mgk_gateway"),
            ("x-api-key", "mgk_gateway"),
            ("anthropic-version", "2023-06-01"),
            ("x-stainless-lang", "python"),
            ("openai-beta", "responses_multi_agent=v1"),
            ("cf-connecting-ip", "1.2.3.4"),
            ("connection", "keep-alive"),
            ("content-length", "12"),
            ("host", "gw"),
            ("content-type", "application/json"),
            ("openai-organization", "org-someone-else"),
            ("openai-project", "proj_x"),
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-host", "evil"),
            ("x-real-ip", "1.2.3.4"),
            ("content-encoding", "gzip"),
            ("mcpgate-user", "u-1"),
        ]);
        let up = upstream_request_headers(&client, Provider::Anthropic, &Secret::new("sk-ant"), None);
        assert!(up.iter().all(|(_, v)| !v.contains("mgk_gateway")));
        assert_eq!(get(&up, "x-api-key"), Some("sk-ant"));
        assert_eq!(get(&up, "authorization"), None);
        assert_eq!(get(&up, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(up.iter().filter(|(n, _)| n == "anthropic-version").count(), 1);
        assert_eq!(get(&up, "x-stainless-lang"), Some("python"));
        assert_eq!(get(&up, "openai-beta"), Some("responses_multi_agent=v1"));
        for gone in [
            "cf-connecting-ip",
            "connection",
            "content-length",
            "host",
            "openai-organization",
            "openai-project",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-real-ip",
            "content-encoding",
            "mcpgate-user",
        ] {
            assert_eq!(get(&up, gone), None, "{gone}");
        }
        let up = upstream_request_headers(&client, Provider::OpenAi, &Secret::new("sk-oai"), None);
        assert_eq!(get(&up, "authorization"), Some("Bearer sk-oai"));
        assert_eq!(get(&up, "x-api-key"), None);
    }

    #[test]
    fn each_provider_gets_its_key_header_and_no_client_key() {
        let client = h(&[
            ("authorization", "Bearer mgk_g"),
            ("api-key", "mgk_g"),
            ("x-goog-api-key", "mgk_g"),
            ("x-api-key", "mgk_g"),
            ("content-type", "application/json"),
        ]);
        for (p, name, value) in [
            (Provider::Xai, "authorization", "Bearer sk-x"),
            (Provider::Groq, "authorization", "Bearer sk-x"),
            (Provider::AzureOpenAi, "api-key", "sk-x"),
            (Provider::Gemini, "x-goog-api-key", "sk-x"),
        ] {
            let up = upstream_request_headers(&client, p, &Secret::new("sk-x"), None);
            assert!(up.iter().all(|(_, v)| !v.contains("mgk_g")), "{p:?}");
            assert_eq!(get(&up, name), Some(value), "{p:?}");
            assert_eq!(up.len(), 2, "{p:?}: {up:?}");
        }
    }

    #[test]
    fn beta_is_set_not_appended() {
        let client = h(&[("anthropic-beta", "foo")]);
        let up = upstream_request_headers(
            &client,
            Provider::Anthropic,
            &Secret::new("k"),
            Some("foo,mcp-client-2025-11-20"),
        );
        let betas: Vec<_> = up.iter().filter(|(n, _)| n == "anthropic-beta").collect();
        assert_eq!(betas.len(), 1);
        assert_eq!(betas[0].1, "foo,mcp-client-2025-11-20");
    }

    #[test]
    fn response_headers_pass_except_encoding_and_hop_by_hop() {
        let up = h(&[
            ("content-type", "text/event-stream"),
            ("content-encoding", "gzip"),
            ("content-length", "99"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", "req_1"),
            ("retry-after", "3"),
            ("x-should-retry", "true"),
            ("set-cookie", "__cf_bm=abc; path=/"),
        ]);
        let out = client_response_headers(&up);
        assert_eq!(
            out,
            h(&[
                ("content-type", "text/event-stream"),
                ("x-request-id", "req_1"),
                ("retry-after", "3"),
                ("x-should-retry", "true")
            ])
        );
    }
}
