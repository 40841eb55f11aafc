//! Discovery for the connect flow (MCP "Authorization", docs/oauth.md):
//! the MCP server's 401 `WWW-Authenticate` challenge (RFC 9728 §5.1),
//! protected-resource metadata (RFC 9728), authorization-server metadata
//! (RFC 8414 / OpenID Connect discovery), dynamic client registration
//! (RFC 7591) and the authorization request URL.
//!
//! Pure: the shell fetches the URLs listed here and passes the bodies in.
//! Parsers accept unknown members and reject documents that lack what the
//! flow needs, with a reason that quotes no upstream content.

#![forbid(unsafe_code)]

use super::urls;
use serde_json::{Map, Value};

/// The parameters of a `Bearer` challenge that discovery uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
}

/// Reads the `Bearer` challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1
/// syntax: comma-separated challenges, `name=token` or `name="quoted"`).
#[must_use]
pub fn parse_www_authenticate(header: &str) -> Option<Challenge> {
    let mut rest = header.trim();
    let mut in_bearer = false;
    let mut found = None::<Challenge>;
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let name_end = rest.find(['=', ' ', ',', '\t']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=').filter(|_| !name.is_empty()) {
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remaining) = read_param_value(value_part)?;
            if in_bearer {
                let c = found.get_or_insert_with(Challenge::default);
                match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => c.resource_metadata = Some(value),
                    "scope" => c.scope = Some(value),
                    _ => {}
                }
            }
            rest = remaining;
        } else {
            // A new auth-scheme (possibly followed by a token68, which we skip).
            if name.is_empty() {
                break;
            }
            in_bearer = name.eq_ignore_ascii_case("bearer");
            if in_bearer {
                found.get_or_insert_with(Challenge::default);
            }
            rest = after;
        }
    }
    found
}

/// A quoted-string or token, and what follows it.
fn read_param_value(s: &str) -> Option<(String, &str)> {
    if let Some(inner) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, &inner[i + 1..])),
                _ => out.push(c),
            }
        }
        None
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        Some((s[..end].to_string(), &s[end..]))
    }
}

/// Where to look for the protected-resource metadata of `resource_url` when
/// the challenge names none: the path-aware well-known URL, then the root one
/// (RFC 9728 §3.1).
#[must_use]
pub fn protected_resource_urls(resource_url: &str) -> Vec<String> {
    well_known(resource_url, &["oauth-protected-resource"], false)
}

/// Where to look for authorization-server metadata of `issuer`: RFC 8414
/// (path inserted), OpenID Connect with the path inserted, then appended.
#[must_use]
pub fn authorization_server_urls(issuer: &str) -> Vec<String> {
    well_known(issuer, &["oauth-authorization-server", "openid-configuration"], true)
}

fn well_known(base: &str, names: &[&str], oidc_append: bool) -> Vec<String> {
    let (Some(parts), Some(origin)) = (urls::split(base), urls::origin(base)) else {
        return Vec::new();
    };
    let path = parts.path.trim_end_matches('/');
    let mut out = Vec::new();
    for name in names {
        if path.is_empty() {
            out.push(format!("{origin}/.well-known/{name}"));
        } else {
            out.push(format!("{origin}/.well-known/{name}{path}"));
            if *name == "openid-configuration" && oidc_append {
                out.push(format!("{origin}{path}/.well-known/{name}"));
            }
            if !oidc_append {
                out.push(format!("{origin}/.well-known/{name}"));
            }
        }
    }
    out
}

/// What discovery needs from RFC 9728 metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    pub resource: Option<String>,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
}

/// A JSON object body, read as a generic value (no per-shape deserializer: smaller wasm).
fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn string(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An array of strings; `None` when present with another shape.
fn strings(m: &Map<String, Value>, k: &str) -> Option<Vec<String>> {
    match m.get(k) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_string)).collect(),
        Some(_) => None,
    }
}

/// Parses protected-resource metadata.
///
/// # Errors
/// A short reason when the document is not JSON of that shape or names no
/// authorization server.
pub fn parse_resource_metadata(body: &[u8]) -> Result<ResourceMetadata, &'static str> {
    let bad = "its protected-resource metadata is not valid JSON of that shape";
    let m = json_object(body).ok_or(bad)?;
    let authorization_servers = strings(&m, "authorization_servers").ok_or(bad)?;
    if authorization_servers.is_empty() {
        return Err("its protected-resource metadata names no authorization server");
    }
    Ok(ResourceMetadata {
        resource: string(&m, "resource"),
        authorization_servers,
        scopes_supported: strings(&m, "scopes_supported").ok_or(bad)?,
    })
}

/// What the flow needs from authorization-server metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9207: the server puts `iss` in every authorization response.
    pub iss_parameter_supported: bool,
}

/// Parses RFC 8414 metadata fetched for `expected_issuer`.
///
/// # Errors
/// A short reason when the issuer differs (RFC 8414 §3.3), an endpoint is
/// missing, or PKCE `S256` is not advertised (MCP: clients must refuse).
pub fn parse_server_metadata(body: &[u8], expected_issuer: &str) -> Result<ServerMetadata, &'static str> {
    let bad = "its authorization-server metadata is not valid JSON of that shape";
    let m = json_object(body).ok_or(bad)?;
    let issuer = string(&m, "issuer").ok_or("its authorization-server metadata has no issuer")?;
    if issuer.trim_end_matches('/') != expected_issuer.trim_end_matches('/') {
        return Err("its authorization-server metadata names a different issuer");
    }
    if !strings(&m, "code_challenge_methods_supported").ok_or(bad)?.iter().any(|x| x == "S256") {
        return Err("its authorization server does not support PKCE with S256");
    }
    Ok(ServerMetadata {
        issuer,
        authorization_endpoint: string(&m, "authorization_endpoint")
            .ok_or("its authorization-server metadata has no authorization_endpoint")?,
        token_endpoint: string(&m, "token_endpoint")
            .ok_or("its authorization-server metadata has no token_endpoint")?,
        registration_endpoint: string(&m, "registration_endpoint"),
        token_endpoint_auth_methods_supported: strings(&m, "token_endpoint_auth_methods_supported").ok_or(bad)?,
        iss_parameter_supported: m.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true)),
    })
}

/// RFC 9728 §3.3: the metadata's `resource` must be the MCP server's URL
/// (compared without a trailing slash); otherwise it describes another
/// resource, and a token obtained for it must not be handed to this server.
///
/// # Errors
/// A short reason when `resource` is absent or names another resource.
pub fn check_resource_matches(meta: &ResourceMetadata, mcp_url: &str) -> Result<(), &'static str> {
    match meta.resource.as_deref() {
        None => Err("its protected-resource metadata names no resource (RFC 9728 requires it)"),
        Some(r) if r.trim_end_matches('/') == mcp_url.trim_end_matches('/') => Ok(()),
        Some(_) => {
            Err("its protected-resource metadata is for another resource than the MCP server URL (RFC 9728 §3.3)")
        }
    }
}

/// RFC 9207: the `iss` of an authorization response against the issuer the
/// request was sent to. Present: it must match. Absent: acceptable only when
/// the server does not advertise the parameter.
///
/// # Errors
/// A short reason for a mismatch or a missing, advertised `iss`.
pub fn check_response_iss(iss: Option<&str>, expected: Option<&str>, required: bool) -> Result<(), &'static str> {
    match (iss, expected) {
        (Some(got), Some(want)) if got.trim_end_matches('/') != want.trim_end_matches('/') => {
            Err("the authorization response comes from another issuer than the one asked (RFC 9207)")
        }
        (None, _) if required => {
            Err("the authorization response carries no iss, though its server promises one (RFC 9207)")
        }
        _ => Ok(()),
    }
}

/// Whether the gateway may fetch `raw` (metadata, token and registration
/// endpoints): the rule for MCP server URLs, `https://` or, when
/// insecure URLs are allowed, loopback `http://`. No userinfo, no fragment.
#[must_use]
pub fn is_fetchable(raw: &str, allow_insecure: bool) -> bool {
    let Some(url) = urls::split(raw) else {
        return false;
    };
    let host = url.host.as_str();
    !url.has_userinfo
        && !url.has_fragment
        && match url.scheme.as_str() {
            "https" => true,
            "http" => allow_insecure && (host == "127.0.0.1" || host == "localhost" || host == "[::1]"),
            _ => false,
        }
}

/// The issuer assumed when the MCP server publishes no resource metadata:
/// its origin (MCP 2025-03-26 fallback).
#[must_use]
pub fn fallback_issuer(mcp_url: &str) -> Option<String> {
    urls::origin(mcp_url)
}

/// The RFC 7591 registration request of a public client using PKCE.
#[must_use]
pub fn registration_request(redirect_uri: &str, scope: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "client_name": "mcpgate",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let (Some(s), Some(obj)) = (scope, v.as_object_mut()) {
        obj.insert("scope".into(), serde_json::Value::from(s));
    }
    v
}

/// A registered client (RFC 7591 §3.2.1).
#[derive(Debug)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Option<crate::crypto::Secret>,
    /// `client_secret_basic` or `client_secret_post` when a secret was issued.
    pub client_auth: crate::oauth::config::ClientAuth,
}

/// Parses a registration answer.
///
/// # Errors
/// A short reason when there is no usable `client_id`.
pub fn parse_registration(body: &[u8]) -> Result<Registration, &'static str> {
    let m = json_object(body).ok_or("its client registration answer is not valid JSON")?;
    let client_id = string(&m, "client_id")
        .filter(|id| !id.is_empty() && id.len() <= 512 && id.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or("its client registration answer has no valid client_id")?;
    let client_secret = string(&m, "client_secret").filter(|s| !s.is_empty()).map(crate::crypto::Secret::new);
    let client_auth =
        crate::oauth::config::ClientAuth::from_name(string(&m, "token_endpoint_auth_method").as_deref().unwrap_or(""));
    Ok(Registration { client_id, client_secret, client_auth })
}

/// Everything the authorization request carries (RFC 6749 §4.1.1, RFC 7636
/// §4.3, RFC 8707 §2.1).
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    pub endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub state: &'a str,
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// The URL the user opens; existing query parameters of the endpoint are kept.
///
/// # Errors
/// When the endpoint is not an absolute URL.
pub fn authorization_url(req: &AuthorizationRequest<'_>) -> Result<String, &'static str> {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", req.client_id),
        ("redirect_uri", req.redirect_uri),
        ("code_challenge", req.code_challenge),
        ("code_challenge_method", "S256"),
        ("state", req.state),
    ];
    if let Some(s) = req.scope {
        pairs.push(("scope", s));
    }
    if let Some(r) = req.resource {
        pairs.push(("resource", r));
    }
    urls::with_query(req.endpoint, &pairs).ok_or("its authorization_endpoint is not a URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate_variants() {
        let c = parse_www_authenticate(
            r#"Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", scope="files:read files:write", error="invalid_token""#,
        )
        .unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://mcp.example/.well-known/oauth-protected-resource"));
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        // Another scheme first, a token value, odd spacing and an escaped quote.
        let c = parse_www_authenticate(
            r#"Basic realm="x, y", bearer  error=invalid_token ,resource_metadata = "https://a/b\"c", realm=z"#,
        )
        .unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://a/b\"c"));
        assert!(c.scope.is_none());
        // A Basic-only challenge does not count; a bare Bearer does.
        assert_eq!(parse_www_authenticate(r#"Basic realm="resource_metadata""#), None);
        assert_eq!(parse_www_authenticate("Bearer"), Some(Challenge::default()));
        assert_eq!(parse_www_authenticate(r#"Bearer resource_metadata="unterminated"#), None);
        assert_eq!(parse_www_authenticate(""), None);
    }

    #[test]
    fn well_known_urls() {
        assert_eq!(
            protected_resource_urls("https://mcp.example/v1/mcp?x=1"),
            vec![
                "https://mcp.example/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            authorization_server_urls("https://as.example"),
            vec![
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            authorization_server_urls("https://as.example/tenant1/"),
            vec![
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert!(authorization_server_urls("nope").is_empty());
        assert_eq!(fallback_issuer("http://127.0.0.1:9/mcp").as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn fetchable_urls_follow_the_https_rule() {
        assert!(is_fetchable("https://as.example/token", false));
        assert!(!is_fetchable("http://as.example/token", true));
        assert!(!is_fetchable("http://127.0.0.1:8/token", false));
        assert!(is_fetchable("http://127.0.0.1:8/token", true));
        assert!(!is_fetchable("https://u:p@as.example/", false));
        assert!(!is_fetchable("file:///etc/passwd", true));
        assert!(!is_fetchable("nope", true));
    }

    #[test]
    fn resource_metadata() {
        let m = parse_resource_metadata(
            br#"{"resource":"https://mcp.example/mcp","authorization_servers":["https://as.example"],"scopes_supported":["a"],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(m.authorization_servers, vec!["https://as.example"]);
        assert_eq!(m.resource.as_deref(), Some("https://mcp.example/mcp"));
        assert!(parse_resource_metadata(br#"{"resource":"x"}"#).is_err());
        assert!(parse_resource_metadata(b"<html>").is_err());
    }

    #[test]
    fn server_metadata() {
        let body = br#"{"issuer":"https://as.example","authorization_endpoint":"https://as.example/authorize",
            "token_endpoint":"https://as.example/token","registration_endpoint":"https://as.example/register",
            "code_challenge_methods_supported":["plain","S256"]}"#;
        let m = parse_server_metadata(body, "https://as.example/").unwrap();
        assert_eq!(m.token_endpoint, "https://as.example/token");
        assert_eq!(m.registration_endpoint.as_deref(), Some("https://as.example/register"));
        assert_eq!(
            parse_server_metadata(body, "https://evil.example").unwrap_err(),
            "its authorization-server metadata names a different issuer"
        );
        let no_pkce = br#"{"issuer":"https://as.example","authorization_endpoint":"a","token_endpoint":"t"}"#;
        assert!(parse_server_metadata(no_pkce, "https://as.example").unwrap_err().contains("PKCE"));
        let no_token = br#"{"issuer":"https://as.example","authorization_endpoint":"a","code_challenge_methods_supported":["S256"]}"#;
        assert!(parse_server_metadata(no_token, "https://as.example").unwrap_err().contains("token_endpoint"));
    }

    #[test]
    fn registration() {
        let req = registration_request("https://gw/oauth/callback", Some("read"));
        assert_eq!(req["redirect_uris"][0], "https://gw/oauth/callback");
        assert_eq!(req["token_endpoint_auth_method"], "none");
        assert_eq!(req["scope"], "read");
        let r = parse_registration(
            br#"{"client_id":"c1","client_secret":"s1","token_endpoint_auth_method":"client_secret_post"}"#,
        )
        .unwrap();
        assert_eq!(r.client_id, "c1");
        assert_eq!(r.client_auth, crate::oauth::config::ClientAuth::Post);
        assert!(r.client_secret.is_some());
        let r = parse_registration(br#"{"client_id":"c2"}"#).unwrap();
        assert!(r.client_secret.is_none());
        assert!(parse_registration(br#"{"client_id":""}"#).is_err());
        assert!(parse_registration(b"nope").is_err());
    }

    #[test]
    fn authorization_url_has_every_parameter() {
        let u = authorization_url(&AuthorizationRequest {
            endpoint: "https://as.example/authorize?tenant=t1",
            client_id: "c 1",
            redirect_uri: "https://gw.example/oauth/callback",
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            state: "abc.def",
            scope: Some("read write"),
            resource: Some("https://mcp.example/mcp"),
        })
        .unwrap();
        let get = |k: &str| crate::http::route::query_param(&u, k);
        assert_eq!(get("tenant").as_deref(), Some("t1"));
        assert_eq!(get("response_type").as_deref(), Some("code"));
        assert_eq!(get("client_id").as_deref(), Some("c 1"));
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(get("state").as_deref(), Some("abc.def"));
        assert_eq!(get("scope").as_deref(), Some("read write"));
        assert_eq!(get("resource").as_deref(), Some("https://mcp.example/mcp"));
        assert!(authorization_url(&AuthorizationRequest {
            endpoint: "relative",
            ..AuthorizationRequest {
                endpoint: "",
                client_id: "",
                redirect_uri: "",
                code_challenge: "",
                state: "",
                scope: None,
                resource: None
            }
        })
        .is_err());
    }

    #[test]
    fn resource_must_be_the_mcp_server() {
        let meta = |r: Option<&str>| ResourceMetadata {
            resource: r.map(str::to_string),
            authorization_servers: vec!["https://as.example".into()],
            scopes_supported: vec![],
        };
        assert!(check_resource_matches(&meta(Some("https://mcp.example/mcp")), "https://mcp.example/mcp").is_ok());
        assert!(check_resource_matches(&meta(Some("https://mcp.example/mcp/")), "https://mcp.example/mcp").is_ok());
        assert!(check_resource_matches(&meta(Some("https://other.example/mcp")), "https://mcp.example/mcp")
            .unwrap_err()
            .contains("another resource"));
        assert!(check_resource_matches(&meta(Some("https://mcp.example/")), "https://mcp.example/mcp").is_err());
        assert!(check_resource_matches(&meta(None), "https://mcp.example/mcp").unwrap_err().contains("no resource"));
    }

    #[test]
    fn authorization_response_issuer() {
        let body = br#"{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a","token_endpoint":"https://as.example/t",
            "code_challenge_methods_supported":["S256"],"authorization_response_iss_parameter_supported":true}"#;
        assert!(parse_server_metadata(body, "https://as.example").unwrap().iss_parameter_supported);
        let want = Some("https://as.example");
        assert!(check_response_iss(Some("https://as.example"), want, true).is_ok());
        assert!(check_response_iss(Some("https://as.example/"), want, false).is_ok());
        assert!(check_response_iss(Some("https://evil.example"), want, false).is_err(), "checked whenever present");
        assert!(check_response_iss(None, want, true).is_err());
        assert!(check_response_iss(None, want, false).is_ok());
    }
}
