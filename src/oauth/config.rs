//! The `oauth2` credential type of an MCP server (docs/oauth.md) and its
//! admin-input parsing.
//!
//! The gateway is the OAuth client: it turns this config into an access token
//! before a request is rewritten. Errors name the field path and never quote
//! a submitted value.

#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::crypto::Secret;
use crate::http::error::GatewayError;
use crate::tenant::input::{check_secret, check_url, invalid, optional, parse_record, ParseOptions};

/// How the client authenticates at the token endpoint when it has a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` (RFC 6749 §2.3.1; the RFC 8414 default).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

impl ClientAuth {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }

    /// The stored or registered name; anything unknown is the default.
    #[must_use]
    pub fn from_name(s: &str) -> Self {
        if s == "client_secret_post" {
            Self::Post
        } else {
            Self::Basic
        }
    }
}

/// How the gateway obtains tokens for the server.
#[derive(Debug, Clone)]
pub enum Grant {
    /// RFC 6749 §4.4: a new access token from the client's own credentials.
    ClientCredentials,
    /// A refresh token the tenant obtained elsewhere; the gateway rotates it.
    RefreshToken(Secret),
    /// Tokens come from the gateway's connect flow (authorization code + PKCE);
    /// token endpoint and client may be discovered and registered then.
    AuthorizationCode,
}

impl Grant {
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken(_) => "refresh_token",
            Self::AuthorizationCode => "authorization_code",
        }
    }
}

/// A validated `{"type":"oauth2", ...}` credential.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Required unless `grant` is [`Grant::AuthorizationCode`] (then discovered).
    pub token_url: Option<String>,
    /// Required unless `grant` is [`Grant::AuthorizationCode`] (then registered, RFC 7591).
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    /// Sent on every token request when set.
    pub scope: Option<String>,
    /// RFC 8707 resource indicator; sent on every token request when set.
    pub resource: Option<String>,
    /// The authorization server the tenant trusts (its RFC 8414 issuer). The
    /// connect flow then uses its metadata, not the one the MCP server names.
    pub issuer: Option<String>,
    pub grant: Grant,
    /// Names the credential's token state. Empty when parsed; assigned when the
    /// tenant is written and kept while the credential stays the same
    /// (`crate::oauth::credential`).
    pub credential_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth<'a> {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(default, borrow)]
    token_url: Option<&'a RawValue>,
    #[serde(default, borrow)]
    client_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    client_secret: Option<&'a RawValue>,
    #[serde(default, borrow)]
    client_auth: Option<&'a RawValue>,
    #[serde(default, borrow)]
    scope: Option<&'a RawValue>,
    #[serde(default, borrow)]
    resource: Option<&'a RawValue>,
    #[serde(default, borrow)]
    grant: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refresh_token: Option<&'a RawValue>,
    #[serde(default, borrow)]
    issuer: Option<&'a RawValue>,
}

/// Parses the `auth` object of an `oauth2` server at `path`.
///
/// # Errors
/// A 400 naming the first offending field.
pub fn parse_oauth2(raw: &str, path: &str, opts: ParseOptions) -> Result<OAuthConfig, GatewayError> {
    let r: RawOAuth<'_> = parse_record(raw, path)?;
    let at = |f: &str| format!("{path}.{f}");
    let refresh: Option<String> = optional(r.refresh_token, &at("refresh_token"))?;
    let grant_name: Option<String> = optional(r.grant, &at("grant"))?;
    let grant = match (grant_name.as_deref(), refresh) {
        (Some("refresh_token"), Some(t)) | (None, Some(t)) => {
            Grant::RefreshToken(check_secret(t, &at("refresh_token"))?)
        }
        // No refresh token yet: it comes from the connect flow, exactly as with `authorization_code`.
        (Some("refresh_token" | "authorization_code") | None, None) => Grant::AuthorizationCode,
        (Some("client_credentials" | "authorization_code"), Some(_)) => {
            return Err(invalid(&at("refresh_token"), "is only allowed with grant \"refresh_token\""));
        }
        (Some("client_credentials"), None) => Grant::ClientCredentials,
        (Some(_), _) => {
            return Err(invalid(
                &at("grant"),
                "must be \"client_credentials\", \"refresh_token\" or \"authorization_code\"",
            ));
        }
    };
    let discovered = matches!(grant, Grant::AuthorizationCode);

    let token_url = match optional::<String>(r.token_url, &at("token_url"))? {
        Some(u) => Some(check_url(&u, &at("token_url"), opts, false)?),
        None if discovered => None,
        None => return Err(invalid(&at("token_url"), format_args!("is required with grant \"{}\"", grant.as_str()))),
    };
    let client_id = match optional::<String>(r.client_id, &at("client_id"))? {
        Some(id) => Some(check_client_id(id, &at("client_id"))?),
        None if discovered => None,
        None => return Err(invalid(&at("client_id"), format_args!("is required with grant \"{}\"", grant.as_str()))),
    };
    let client_secret = match optional::<String>(r.client_secret, &at("client_secret"))? {
        Some(_) if client_id.is_none() => return Err(invalid(&at("client_secret"), "requires client_id")),
        Some(s) => Some(check_secret(s, &at("client_secret"))?),
        None => None,
    };
    let client_auth = match optional::<String>(r.client_auth, &at("client_auth"))?.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some(_) => {
            return Err(invalid(&at("client_auth"), "must be \"client_secret_basic\" or \"client_secret_post\""));
        }
    };
    let scope = match optional::<String>(r.scope, &at("scope"))? {
        Some(s) if is_scope(&s) => Some(s),
        Some(_) => return Err(invalid(&at("scope"), "must be space-separated scope tokens (RFC 6749 §3.3)")),
        None => None,
    };
    let resource = match optional::<String>(r.resource, &at("resource"))? {
        Some(u) => Some(check_resource(&u, &at("resource"))?),
        None => None,
    };
    let issuer = match optional::<String>(r.issuer, &at("issuer"))? {
        Some(u) => Some(check_url(&u, &at("issuer"), opts, false)?),
        None => None,
    };
    Ok(OAuthConfig {
        token_url,
        client_id,
        client_secret,
        client_auth,
        scope,
        resource,
        issuer,
        grant,
        credential_id: String::new(),
    })
}

/// RFC 6749 Appendix A: `client_id` is VSCHAR (printable ASCII).
fn check_client_id(id: String, path: &str) -> Result<String, GatewayError> {
    if id.is_empty() || id.len() > 512 || !id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid(path, "must be 1-512 printable ASCII characters"));
    }
    Ok(id)
}

/// RFC 6749 §3.3: scope tokens of `%x21 / %x23-5B / %x5D-7E`, separated by single spaces.
#[must_use]
pub fn is_scope(s: &str) -> bool {
    s.len() <= 2048
        && !s.is_empty()
        && s.split(' ').all(|t| {
            !t.is_empty() && t.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn check_resource(raw: &str, path: &str) -> Result<String, GatewayError> {
    if raw.len() > 2048 {
        return Err(invalid(path, "must be at most 2048 characters"));
    }
    let url = crate::oauth::urls::split(raw).ok_or_else(|| invalid(path, "must be an absolute URL"))?;
    if url.has_fragment {
        return Err(invalid(path, "must not contain a fragment"));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tenant::input::tests::param;

    fn parse(s: &str) -> Result<OAuthConfig, GatewayError> {
        parse_oauth2(s, "mcp_servers.crm.auth", ParseOptions::default())
    }

    #[test]
    fn refresh_token_grant() {
        let c = parse(
            r#"{"type":"oauth2","token_url":"https://as.example/token","client_id":"cid","client_secret":"cs",
                "client_auth":"client_secret_post","scope":"a b:c","resource":"https://mcp.example/mcp",
                "grant":"refresh_token","refresh_token":"rt-1"}"#,
        )
        .unwrap();
        assert!(matches!(&c.grant, Grant::RefreshToken(t) if t.expose() == "rt-1"));
        assert_eq!(c.client_auth, ClientAuth::Post);
        assert_eq!(c.scope.as_deref(), Some("a b:c"));
        assert_eq!(c.client_secret.unwrap().expose(), "cs");
        // `grant` may be left out when a refresh token is given.
        let c = parse(r#"{"type":"oauth2","token_url":"https://as.example/t","client_id":"c","refresh_token":"r"}"#)
            .unwrap();
        assert!(matches!(c.grant, Grant::RefreshToken(_)));
        assert_eq!(c.client_auth, ClientAuth::Basic);
    }

    #[test]
    fn client_credentials_and_connect_flow() {
        let c = parse(r#"{"type":"oauth2","token_url":"https://as.example/t","client_id":"c","client_secret":"s","grant":"client_credentials"}"#)
            .unwrap();
        assert!(matches!(c.grant, Grant::ClientCredentials));
        let c = parse(r#"{"type":"oauth2"}"#).unwrap();
        assert!(matches!(c.grant, Grant::AuthorizationCode));
        assert!(c.token_url.is_none() && c.client_id.is_none());
        let c = parse(r#"{"type":"oauth2","grant":"authorization_code","client_id":"pre","scope":"read"}"#).unwrap();
        assert_eq!(c.client_id.as_deref(), Some("pre"));
        // A refresh_token grant whose token is still to be obtained is a connect-flow server.
        let c =
            parse(r#"{"type":"oauth2","grant":"refresh_token","token_url":"https://a/t","client_id":"c"}"#).unwrap();
        assert!(matches!(c.grant, Grant::AuthorizationCode));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"type":"oauth2","grant":"client_credentials","client_id":"c"}"#, "token_url"),
            (r#"{"type":"oauth2","grant":"client_credentials","token_url":"https://a/t"}"#, "client_id"),
            (r#"{"type":"oauth2","grant":"password"}"#, "grant"),
            (
                r#"{"type":"oauth2","grant":"client_credentials","token_url":"https://a/t","client_id":"c","refresh_token":"r"}"#,
                "refresh_token",
            ),
            (r#"{"type":"oauth2","token_url":"http://as.example/t","client_id":"c","refresh_token":"r"}"#, "token_url"),
            (r#"{"type":"oauth2","client_secret":"s"}"#, "client_secret"),
            (r#"{"type":"oauth2","client_id":"c","client_secret":"s","client_auth":"private_key_jwt"}"#, "client_auth"),
            (r#"{"type":"oauth2","scope":"a  b"}"#, "scope"),
            (r#"{"type":"oauth2","issuer":"http://as.example"}"#, "issuer"),
            (r#"{"type":"oauth2","issuer":7}"#, "issuer"),
            (r#"{"type":"oauth2","scope":"a\"b"}"#, "scope"),
            (r#"{"type":"oauth2","resource":"not a url"}"#, "resource"),
            (r#"{"type":"oauth2","resource":"https://a/#frag"}"#, "resource"),
            (r#"{"type":"oauth2","refresh_token":5,"token_url":"https://a/t","client_id":"c"}"#, "refresh_token"),
            (r#"{"type":"oauth2","client_id":"c\u0001"}"#, "client_id"),
        ];
        for (body, field) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(param(e), format!("mcp_servers.crm.auth.{field}"), "{body}");
        }
        let e = parse(r#"{"type":"oauth2","token":"x"}"#).unwrap_err();
        assert!(e.message().contains("token"), "{}", e.message());
        assert_eq!(param(e), "mcp_servers.crm.auth");
    }

    #[test]
    fn secrets_are_never_quoted() {
        let e = parse(r#"{"type":"oauth2","token_url":"https://a/t","client_id":"c","refresh_token":"rt-SECRET\n"}"#)
            .unwrap_err();
        assert!(!e.message().contains("SECRET"));
        let e = parse(r#"{"type":"oauth2","client_id":"c","client_secret":["cs-SECRET"]}"#).unwrap_err();
        assert!(!e.message().contains("SECRET"));
    }

    #[test]
    fn loopback_token_url_only_when_insecure_allowed() {
        let body =
            r#"{"type":"oauth2","token_url":"http://127.0.0.1:9/token","client_id":"c","grant":"client_credentials"}"#;
        assert!(parse(body).is_err());
        assert!(parse_oauth2(body, "p", ParseOptions { allow_insecure_urls: true }).is_ok());
    }

    #[test]
    fn issuer_names_the_trusted_authorization_server() {
        let c =
            parse(r#"{"type":"oauth2","client_id":"c","client_secret":"s","issuer":"https://as.example"}"#).unwrap();
        assert_eq!(c.issuer.as_deref(), Some("https://as.example"));
        assert!(parse(r#"{"type":"oauth2"}"#).unwrap().issuer.is_none());
    }
}
