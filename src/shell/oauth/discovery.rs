//! Connect-flow discovery I/O (docs/oauth.md): the MCP server's
//! 401 challenge → RFC 9728 protected-resource metadata → RFC 8414
//! authorization-server metadata, and RFC 7591 registration. Parsing and
//! every decision are in `crate::oauth::metadata`; this file only fetches.
//! Failure reasons are the gateway's own words, never upstream content.

use super::http::{fetch, get_document};
use crate::oauth::metadata::{
    authorization_server_urls, check_resource_matches, fallback_issuer, parse_registration, parse_resource_metadata,
    parse_server_metadata, parse_www_authenticate, protected_resource_urls, registration_request, Registration,
    ServerMetadata,
};

/// What the connect flow learned about the server.
pub struct Discovered {
    pub server: ServerMetadata,
    /// From the challenge or the resource metadata, for servers configured without a scope.
    pub scope: Option<String>,
    /// The resource metadata's `resource`, if any.
    pub resource: Option<String>,
}

/// An initialize request without credentials, to make the server answer its challenge.
const PROBE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpgate","version":"1"}}}"#;

/// Finds the authorization server of the MCP server at `mcp_url`: the one the
/// tenant named (`named_issuer`) if any, else the one the server's metadata
/// names. `allowed` says whether a URL may be fetched (the `https://` rule).
/// Protected-resource metadata must describe `mcp_url` itself (RFC 9728
/// §3.3) and authorization-server metadata its own issuer (RFC 8414 §3.3).
pub async fn discover(
    mcp_url: &str,
    named_issuer: Option<&str>,
    allowed: impl Fn(&str) -> bool,
) -> Result<Discovered, String> {
    let probe = fetch(
        "POST",
        mcp_url,
        vec![
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "application/json, text/event-stream".into()),
        ],
        Some(PROBE.as_bytes().to_vec()),
    )
    .await
    .ok_or_else(|| "the MCP server could not be reached".to_string())?;
    let challenge = crate::http::headers::get(&probe.headers, "www-authenticate").and_then(parse_www_authenticate);

    let mut candidates: Vec<String> = Vec::new();
    if let Some(u) = challenge.as_ref().and_then(|c| c.resource_metadata.clone()) {
        candidates.push(u);
    }
    candidates.extend(protected_resource_urls(mcp_url));
    let mut resource_meta = None;
    for url in candidates.iter().filter(|u| allowed(u)) {
        if let Some(body) = get_document(url).await {
            if let Ok(m) = parse_resource_metadata(&body) {
                check_resource_matches(&m, mcp_url).map_err(str::to_string)?;
                resource_meta = Some(m);
                break;
            }
        }
    }
    let issuer = match (named_issuer, &resource_meta) {
        (Some(named), _) => Some(named.to_string()),
        (None, Some(m)) => m.authorization_servers.first().cloned(),
        (None, None) => fallback_issuer(mcp_url),
    }
    .ok_or_else(|| "the MCP server names no authorization server".to_string())?;

    let mut server = None;
    let mut last_reason = "no authorization-server metadata was found";
    for url in authorization_server_urls(&issuer).iter().filter(|u| allowed(u)) {
        if let Some(body) = get_document(url).await {
            match parse_server_metadata(&body, &issuer) {
                Ok(m) => {
                    server = Some(m);
                    break;
                }
                Err(why) => last_reason = why,
            }
        }
    }
    let server = server.ok_or_else(|| last_reason.to_string())?;
    if !allowed(&server.token_endpoint) || !allowed(&server.authorization_endpoint) {
        return Err("its authorization server's endpoints do not use https://".into());
    }
    let scope = challenge.and_then(|c| c.scope).or_else(|| {
        resource_meta.as_ref().filter(|m| !m.scopes_supported.is_empty()).map(|m| m.scopes_supported.join(" "))
    });
    let resource = resource_meta.and_then(|m| m.resource);
    Ok(Discovered { server, scope, resource })
}

/// Registers the gateway as a public client with the authorization server.
pub async fn register(endpoint: &str, redirect_uri: &str, scope: Option<&str>) -> Result<Registration, String> {
    let body = registration_request(redirect_uri, scope).to_string();
    let got = fetch(
        "POST",
        endpoint,
        vec![("content-type".into(), "application/json".into()), ("accept".into(), "application/json".into())],
        Some(body.into_bytes()),
    )
    .await
    .ok_or_else(|| "its client registration endpoint could not be reached".to_string())?;
    if !(200..300).contains(&got.status) {
        return Err(format!("its client registration endpoint answered HTTP {}", got.status));
    }
    parse_registration(&got.body).map_err(str::to_string)
}
