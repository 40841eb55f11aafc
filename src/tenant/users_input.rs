//! Admin input for per-user servers: the `auth` of a server marked
//! `"per_user": true` and a user's credential body
//! (`PUT /admin/tenants/{id}/users/{user}/mcp_servers/{s}/credential`).

use serde::Deserialize;

use super::input::{invalid, parse_auth, parse_record, ParseOptions};
use super::users::{KeyScope, OnMissing, PerUser, UserCredential, UserCredentialKind, UserId};
use super::McpAuth;
use crate::http::error::GatewayError;
use crate::oauth::config::{parse_oauth2, Grant};
use crate::tenant::input::RawAuthType;

/// `{"type": "bearer"}` / `{"type": "headers"}`: the kind only; each user's value comes later.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKindOnly {
    #[serde(rename = "type")]
    _kind: String,
}

/// The tenant-level `auth` of a per-user server and its [`PerUser`] setting.
///
/// # Errors
/// A 400 naming the field: a credential given at tenant level, an auth type
/// that cannot be per user, or an OAuth grant other than the connect flow.
/// Both modes work: in relay mode the capability token binds the user.
pub(crate) fn parse_per_user_auth(
    raw: &str,
    server_path: &str,
    on_missing: Option<&str>,
    opts: ParseOptions,
) -> Result<(McpAuth, PerUser), GatewayError> {
    let path = format!("{server_path}.auth");
    let on_missing = match on_missing {
        None | Some("error") => OnMissing::Error,
        Some("omit") => OnMissing::Omit,
        Some(_) => return Err(invalid(&format!("{server_path}.on_missing"), "must be \"error\" or \"omit\"")),
    };
    let kind: RawAuthType = parse_record(raw, &path)?;
    let (auth, credential) = match kind.kind.as_str() {
        "bearer" | "headers" => {
            let _: RawKindOnly = parse_record(raw, &path).map_err(|_| {
                invalid(&path, "a per-user server holds no credential itself: give only \"type\"; each user's is set through the admin API")
            })?;
            let credential =
                if kind.kind == "bearer" { UserCredentialKind::Bearer } else { UserCredentialKind::Headers };
            (McpAuth::None, credential)
        }
        "oauth2" => {
            let c = parse_oauth2(raw, &path, opts)?;
            if !matches!(c.grant, Grant::AuthorizationCode) {
                return Err(invalid(
                    &format!("{path}.grant"),
                    "a per-user oauth2 server uses grant \"authorization_code\": each user runs the connect flow",
                ));
            }
            (McpAuth::OAuth2(Box::new(c)), UserCredentialKind::OAuth2)
        }
        "none" => {
            return Err(invalid(
                &format!("{path}.type"),
                "a per-user server needs \"bearer\", \"headers\" or \"oauth2\"",
            ))
        }
        _ => return Err(invalid(&format!("{path}.type"), "must be one of \"bearer\", \"headers\", \"oauth2\"")),
    };
    Ok((auth, PerUser { credential, on_missing }))
}

/// A user's static credential for a server of kind `expected`.
///
/// # Errors
/// A 400 naming the field; never quotes a value.
pub fn parse_user_credential(body: &[u8], expected: UserCredentialKind) -> Result<UserCredential, GatewayError> {
    crate::provider::json::check_strict(body)?;
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::bad_request("Request body is not valid UTF-8."))?;
    let got = match parse_auth(text, "$", ParseOptions::default())? {
        McpAuth::Bearer(t) => UserCredential::Bearer(t),
        McpAuth::Headers(h) => UserCredential::Headers(h),
        McpAuth::None | McpAuth::OAuth2(_) => {
            return Err(invalid("$.type", "a user's credential is \"bearer\" or \"headers\""));
        }
    };
    if got.kind() != expected {
        return Err(invalid("$.type", format_args!("this server takes a \"{}\" credential", expected.as_str())));
    }
    Ok(got)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyRequest {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    act_as_users: Option<bool>,
}

/// The body of `POST /admin/tenants/{id}/keys`: empty or `{}` (a tenant-wide
/// key), `{"user": "u-123"}` (that user's key) or `{"act_as_users": true}`.
///
/// # Errors
/// A 400 naming the field.
pub fn parse_key_request(body: &[u8]) -> Result<KeyScope, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(KeyScope::Tenant);
    }
    crate::provider::json::check_strict(body)?;
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::bad_request("Request body is not valid UTF-8."))?;
    let raw: RawKeyRequest = parse_record(text, "$")?;
    match (raw.user, raw.act_as_users.unwrap_or(false)) {
        (Some(_), true) => Err(invalid("act_as_users", "a user's key cannot act as other users")),
        (Some(u), false) => UserId::parse(&u, "user").map(KeyScope::User),
        (None, true) => Ok(KeyScope::ActAsUsers),
        (None, false) => Ok(KeyScope::Tenant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::input::tests::{param, parse};

    #[test]
    fn per_user_servers_parse() {
        let t = parse(
            r#"{"mcp_servers":{
            "gh":{"url":"https://gh.example/mcp","auth":{"type":"bearer"},"per_user":true},
            "files":{"url":"https://f.example/mcp","auth":{"type":"headers"},"per_user":true,"on_missing":"omit"},
            "drive":{"url":"https://d.example/mcp","auth":{"type":"oauth2"},"per_user":true},
            "shared":{"url":"https://s.example/mcp","auth":{"type":"bearer","token":"t"},"per_user":false},
            "relayed":{"url":"https://r.example/mcp","auth":{"type":"oauth2"},"per_user":true,"mode":"relay"}}}"#,
        )
        .unwrap();
        assert_eq!(t.per_user.len(), 4);
        assert_eq!(t.mcp.servers["relayed"].mode, crate::tenant::McpMode::Relay);
        assert_eq!(t.per_user["gh"], PerUser { credential: UserCredentialKind::Bearer, on_missing: OnMissing::Error });
        assert_eq!(t.per_user["files"].on_missing, OnMissing::Omit);
        assert_eq!(t.per_user["drive"].credential, UserCredentialKind::OAuth2);
        assert!(matches!(t.mcp.servers["gh"].auth, McpAuth::None));
        assert!(matches!(t.mcp.servers["drive"].auth, McpAuth::OAuth2(_)));
        assert!(matches!(t.mcp.servers["shared"].auth, McpAuth::Bearer(_)));
    }

    #[test]
    fn per_user_mistakes_name_the_field() {
        let cases = [
            (
                r#"{"url":"https://a.example","auth":{"type":"bearer","token":"t"},"per_user":true}"#,
                "mcp_servers.s.auth",
            ),
            (r#"{"url":"https://a.example","auth":{"type":"none"},"per_user":true}"#, "mcp_servers.s.auth.type"),
            (
                r#"{"url":"https://a.example","auth":{"type":"bearer"},"per_user":true,"on_missing":"skip"}"#,
                "mcp_servers.s.on_missing",
            ),
            (
                r#"{"url":"https://a.example","auth":{"type":"bearer","token":"t"},"on_missing":"omit"}"#,
                "mcp_servers.s.on_missing",
            ),
            (r#"{"url":"https://a.example","auth":{"type":"bearer"},"per_user":"yes"}"#, "mcp_servers.s.per_user"),
            (
                r#"{"url":"https://a.example","auth":{"type":"oauth2","grant":"client_credentials","token_url":"https://t.example","client_id":"c"},"per_user":true}"#,
                "mcp_servers.s.auth.grant",
            ),
            (
                r#"{"url":"https://a.example","auth":{"type":"oauth2","refresh_token":"r","token_url":"https://t.example","client_id":"c"},"per_user":true}"#,
                "mcp_servers.s.auth.grant",
            ),
        ];
        for (server, want) in cases {
            let body = format!(r#"{{"mcp_servers":{{"s":{server}}}}}"#);
            assert_eq!(param(parse(&body).unwrap_err()), want, "{server}");
        }
        // A bearer server without a token is still refused unless it is per user.
        let body = r#"{"mcp_servers":{"s":{"url":"https://a.example","auth":{"type":"bearer"}}}}"#;
        assert!(parse(body).is_err());
    }

    #[test]
    fn key_requests() {
        assert_eq!(parse_key_request(b"").unwrap(), KeyScope::Tenant);
        assert_eq!(parse_key_request(b" {} ").unwrap(), KeyScope::Tenant);
        assert_eq!(parse_key_request(br#"{"act_as_users":true}"#).unwrap(), KeyScope::ActAsUsers);
        assert_eq!(parse_key_request(br#"{"act_as_users":false}"#).unwrap(), KeyScope::Tenant);
        assert!(matches!(parse_key_request(br#"{"user":"u-1"}"#).unwrap(), KeyScope::User(u) if u.as_str() == "u-1"));
        assert_eq!(param(parse_key_request(br#"{"user":"u 1"}"#).unwrap_err()), "user");
        assert_eq!(param(parse_key_request(br#"{"user":"u","act_as_users":true}"#).unwrap_err()), "act_as_users");
        assert!(parse_key_request(br#"{"users":"u"}"#).is_err());
        assert!(parse_key_request(br#"{"act_as_users":"yes"}"#).is_err());
        assert!(parse_key_request(b"[]").is_err());
    }

    #[test]
    fn user_credentials() {
        let c = parse_user_credential(br#"{"type":"bearer","token":"tok-a"}"#, UserCredentialKind::Bearer).unwrap();
        assert!(matches!(c, UserCredential::Bearer(t) if t.expose() == "tok-a"));
        let c = parse_user_credential(br#"{"type":"headers","headers":{"X-Key":"v"}}"#, UserCredentialKind::Headers)
            .unwrap();
        assert!(matches!(c, UserCredential::Headers(h) if h[0].0 == "X-Key"));
        for (body, kind) in [
            (&br#"{"type":"bearer","token":"t"}"#[..], UserCredentialKind::Headers),
            (br#"{"type":"none"}"#, UserCredentialKind::Bearer),
            (br#"{"type":"bearer"}"#, UserCredentialKind::Bearer),
            (br#"{"type":"bearer","token":"a\nb"}"#, UserCredentialKind::Bearer),
            (br#"{"type":"bearer","token":"t","x":1}"#, UserCredentialKind::Bearer),
            (br#"{"type":"oauth2"}"#, UserCredentialKind::OAuth2),
        ] {
            let e = parse_user_credential(body, kind).unwrap_err();
            assert!(!format!("{e:?}").contains("\"t\""), "never echoes a value");
        }
    }
}
