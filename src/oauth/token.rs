//! Token endpoint requests and answers (RFC 6749 §3.2, §4.1.3, §4.4, §6;
//! RFC 8707; docs/oauth.md), and the expiry rule of docs/oauth.md
//! ("OAuth credentials": a cached token is used while it has more than
//! min(60 s, lifetime / 2) left).
//!
//! Pure: the shell sends the [`TokenRequest`] and hands the answer to
//! [`parse_token_response`]. Nothing here formats a secret into a message;
//! [`TokenRequest`] does not print its body.

#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::crypto::Secret;
use crate::oauth::config::ClientAuth;

/// Lifetime assumed when a token response has no `expires_in` (it is only RECOMMENDED).
pub const DEFAULT_LIFETIME_MS: u64 = 300_000;
/// Upper bound of the safety margin.
pub const MAX_MARGIN_MS: u64 = 60_000;
/// Longest access or refresh token accepted (they travel in headers).
const MAX_TOKEN_LEN: usize = 8192;

/// The OAuth client the gateway acts as for one credential.
#[derive(Debug, Clone)]
pub struct Client {
    pub token_url: String,
    pub client_id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
}

/// Which grant a token request uses.
#[derive(Debug)]
pub enum GrantRequest<'a> {
    RefreshToken(&'a Secret),
    ClientCredentials,
    AuthorizationCode { code: &'a str, verifier: &'a Secret, redirect_uri: &'a str },
}

/// A ready-to-send `POST` to the token endpoint.
pub struct TokenRequest {
    pub url: String,
    /// Lowercase names; `authorization` holds a secret when present.
    pub headers: Vec<(String, String)>,
    /// `application/x-www-form-urlencoded`; holds secrets.
    pub body: String,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest").field("url", &self.url).finish_non_exhaustive()
    }
}

use super::urls::{encode, form};

/// Builds the token request. `scope` and `resource` are sent whenever set
/// (docs/oauth.md); a client without a secret sends only `client_id`; a secret is
/// sent by exactly one method, never both (RFC 6749 §2.3.1).
#[must_use]
pub fn build_request(
    client: &Client,
    grant: &GrantRequest<'_>,
    scope: Option<&str>,
    resource: Option<&str>,
) -> TokenRequest {
    let mut pairs: Vec<(&str, &str)> = match grant {
        GrantRequest::RefreshToken(rt) => vec![("grant_type", "refresh_token"), ("refresh_token", rt.expose())],
        GrantRequest::ClientCredentials => vec![("grant_type", "client_credentials")],
        GrantRequest::AuthorizationCode { code, verifier, redirect_uri } => vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ],
    };
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    if let Some(r) = resource {
        pairs.push(("resource", r));
    }
    let mut headers = vec![
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("accept".to_string(), "application/json".to_string()),
    ];
    match (&client.secret, client.auth) {
        (Some(secret), ClientAuth::Basic) => {
            let pair = format!("{}:{}", encode(&client.client_id), encode(secret.expose()));
            headers.push(("authorization".to_string(), format!("Basic {}", STANDARD.encode(pair))));
        }
        (Some(secret), ClientAuth::Post) => {
            pairs.push(("client_id", &client.client_id));
            pairs.push(("client_secret", secret.expose()));
        }
        (None, _) => pairs.push(("client_id", &client.client_id)),
    }
    TokenRequest { url: client.token_url.clone(), headers, body: form(&pairs) }
}

/// A successful token response.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: Secret,
    /// `None` when the server sent none: keep the current refresh token.
    pub refresh_token: Option<Secret>,
    /// Milliseconds from issue; [`DEFAULT_LIFETIME_MS`] when `expires_in` was absent.
    pub lifetime_ms: u64,
}

/// Why no token came back. Never holds a token or an upstream body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// The grant or client was refused (`invalid_grant`, `invalid_client`,
    /// `unauthorized_client`): only reconnecting or new credentials help.
    Rejected { error: String },
    /// Any other OAuth error code.
    Refused { error: String },
    /// An answer that is not a usable token response.
    Malformed,
    /// A non-OAuth HTTP failure status (e.g. 500).
    Status(u16),
    /// No answer (connection failed or timed out).
    Unreachable,
}

impl TokenFailure {
    /// True when retrying cannot help and the server must be reconnected (424).
    #[must_use]
    pub const fn needs_reconnect(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// A short reason safe for messages, logs and the admin view.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Rejected { error } if error == "invalid_grant" => {
                "the authorization server rejected the grant (invalid_grant): it was revoked, expired or already used"
                    .to_string()
            }
            Self::Rejected { error } => format!("the authorization server rejected the client ({error})"),
            Self::Refused { error } => format!("the token endpoint answered with the error {error}"),
            Self::Malformed => "the token endpoint answered with a malformed token response".to_string(),
            Self::Status(s) => format!("the token endpoint answered HTTP {s}"),
            Self::Unreachable => "the token endpoint could not be reached".to_string(),
        }
    }

    /// A stable, low-cardinality name for the admin view.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "reconnect_required",
            Self::Refused { .. } => "token_endpoint_error",
            Self::Malformed => "token_endpoint_malformed",
            Self::Status(_) => "token_endpoint_status",
            Self::Unreachable => "token_endpoint_unreachable",
        }
    }
}

/// A JSON object body, read as a generic value (no per-shape deserializer: smaller wasm).
fn json_object(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// An OAuth error code we are willing to repeat: `[a-z_]`, at most 64 bytes.
fn safe_code(v: Option<&serde_json::Value>) -> String {
    match v.and_then(serde_json::Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            s.to_string()
        }
        _ => "an unrecognised error".to_string(),
    }
}

fn token_value(v: Option<serde_json::Value>) -> Result<Option<Secret>, TokenFailure> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s))
            if !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            Ok(Some(Secret::new(s)))
        }
        Some(_) => Err(TokenFailure::Malformed),
    }
}

/// `expires_in` as a number of seconds (a numeric string is tolerated).
fn lifetime_ms(v: Option<&serde_json::Value>) -> Result<u64, TokenFailure> {
    let secs = match v {
        None | Some(serde_json::Value::Null) => return Ok(DEFAULT_LIFETIME_MS),
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    secs.map(|s| s.saturating_mul(1000)).ok_or(TokenFailure::Malformed)
}

/// Classifies a token endpoint answer.
///
/// # Errors
/// A [`TokenFailure`] for OAuth errors, other failure statuses and bodies
/// that are not a bearer token response.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenSet, TokenFailure> {
    if !(200..300).contains(&status) {
        if let Some(e) = json_object(body).as_mut().and_then(|m| m.remove("error")) {
            let code = safe_code(Some(&e));
            return Err(match code.as_str() {
                "invalid_grant" | "invalid_client" | "unauthorized_client" => TokenFailure::Rejected { error: code },
                _ => TokenFailure::Refused { error: code },
            });
        }
        return Err(TokenFailure::Status(status));
    }
    let mut raw = json_object(body).ok_or(TokenFailure::Malformed)?;
    let access_token = token_value(raw.remove("access_token"))?.ok_or(TokenFailure::Malformed)?;
    match raw.get("token_type") {
        None => {}
        Some(serde_json::Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err(TokenFailure::Malformed),
    }
    let lifetime_ms = lifetime_ms(raw.get("expires_in"))?;
    let refresh_token = token_value(raw.remove("refresh_token"))?;
    Ok(TokenSet { access_token, refresh_token, lifetime_ms })
}

/// The safety margin for a token of this lifetime: min(60 s, lifetime / 2).
#[must_use]
pub const fn margin_ms(lifetime_ms: u64) -> u64 {
    let half = lifetime_ms / 2;
    if half < MAX_MARGIN_MS {
        half
    } else {
        MAX_MARGIN_MS
    }
}

/// Whether a token issued with `lifetime_ms` and expiring at `expires_at_ms`
/// may still be used at `now_ms` (more than the margin left).
#[must_use]
pub const fn is_fresh(now_ms: u64, expires_at_ms: u64, lifetime_ms: u64) -> bool {
    expires_at_ms > now_ms && expires_at_ms - now_ms > margin_ms(lifetime_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<&str>, auth: ClientAuth) -> Client {
        Client {
            token_url: "https://as.example/token".into(),
            client_id: "my client".into(),
            secret: secret.map(Secret::new),
            auth,
        }
    }

    fn form(body: &str) -> Vec<(String, String)> {
        body.split('&')
            .map(|pair| {
                let (k, _) = pair.split_once('=').unwrap();
                let value = crate::http::route::query_param(&format!("x?{pair}"), k).unwrap();
                (k.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn refresh_with_basic_auth_sends_scope_and_resource() {
        let rt = Secret::new("rt/1+2");
        let req = build_request(
            &client(Some("s:e&c"), ClientAuth::Basic),
            &GrantRequest::RefreshToken(&rt),
            Some("read write"),
            Some("https://mcp.example/mcp"),
        );
        assert_eq!(
            form(&req.body),
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("refresh_token".into(), "rt/1+2".into()),
                ("scope".into(), "read write".into()),
                ("resource".into(), "https://mcp.example/mcp".into()),
            ]
        );
        let auth = req.headers.iter().find(|(k, _)| k == "authorization").unwrap();
        let decoded = STANDARD.decode(auth.1.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:s%3Ae%26c");
        assert!(!format!("{req:?}").contains("rt/1"), "Debug hides the body");
    }

    #[test]
    fn post_auth_and_public_clients() {
        let req = build_request(&client(Some("sec"), ClientAuth::Post), &GrantRequest::ClientCredentials, None, None);
        assert_eq!(
            form(&req.body),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), "my client".into()),
                ("client_secret".into(), "sec".into()),
            ]
        );
        assert!(!req.headers.iter().any(|(k, _)| k == "authorization"));
        let v = Secret::new("verifier");
        let req = build_request(
            &client(None, ClientAuth::Basic),
            &GrantRequest::AuthorizationCode { code: "c0de", verifier: &v, redirect_uri: "https://gw/oauth/callback" },
            None,
            Some("https://mcp/"),
        );
        let f = form(&req.body);
        assert_eq!(f[0], ("grant_type".into(), "authorization_code".into()));
        assert!(f.contains(&("code_verifier".into(), "verifier".into())));
        assert!(f.contains(&("client_id".into(), "my client".into())));
        assert!(!f.iter().any(|(k, _)| k == "client_secret"));
        assert!(!req.headers.iter().any(|(k, _)| k == "authorization"));
    }

    #[test]
    fn parses_success() {
        let t = parse_token_response(
            200,
            br#"{"access_token":"at-1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-2","scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "at-1");
        assert_eq!(t.refresh_token.unwrap().expose(), "rt-2");
        assert_eq!(t.lifetime_ms, 3_600_000);
        let t = parse_token_response(200, br#"{"access_token":"at","token_type":"Bearer","expires_in":"5"}"#).unwrap();
        assert_eq!(t.lifetime_ms, 5000);
        assert!(t.refresh_token.is_none());
        let t = parse_token_response(200, br#"{"access_token":"at"}"#).unwrap();
        assert_eq!(t.lifetime_ms, DEFAULT_LIFETIME_MS);
    }

    #[test]
    fn classifies_failures() {
        let rejected = |c: &str| TokenFailure::Rejected { error: c.into() };
        assert_eq!(parse_token_response(400, br#"{"error":"invalid_grant"}"#).unwrap_err(), rejected("invalid_grant"));
        assert_eq!(
            parse_token_response(401, br#"{"error":"invalid_client"}"#).unwrap_err(),
            rejected("invalid_client")
        );
        assert_eq!(
            parse_token_response(400, br#"{"error":"invalid_scope","error_description":"rt-SECRET"}"#).unwrap_err(),
            TokenFailure::Refused { error: "invalid_scope".into() }
        );
        assert_eq!(
            parse_token_response(400, br#"{"error":"<script>"}"#).unwrap_err(),
            TokenFailure::Refused { error: "an unrecognised error".into() }
        );
        assert_eq!(parse_token_response(503, b"<html>down</html>").unwrap_err(), TokenFailure::Status(503));
        for body in [
            &b"not json"[..],
            br#"{"token_type":"bearer"}"#,
            br#"{"access_token":"","token_type":"bearer"}"#,
            br#"{"access_token":"a b","token_type":"bearer"}"#,
            br#"{"access_token":"at","token_type":"mac"}"#,
            br#"{"access_token":"at","expires_in":"soon"}"#,
            br#"{"access_token":"at","expires_in":-5}"#,
            br#"{"access_token":7}"#,
            br#"{"access_token":"at","refresh_token":["x"]}"#,
            b"[]",
        ] {
            assert_eq!(parse_token_response(200, body).unwrap_err(), TokenFailure::Malformed, "{body:?}");
        }
        assert!(rejected("invalid_grant").needs_reconnect());
        assert!(!TokenFailure::Unreachable.needs_reconnect());
        assert!(!rejected("invalid_grant").describe().contains("SECRET"));
    }

    #[test]
    fn expiry_uses_the_documented_margin() {
        // Long-lived: 60 s margin.
        assert_eq!(margin_ms(3_600_000), 60_000);
        assert!(is_fresh(0, 60_001, 3_600_000));
        assert!(!is_fresh(0, 60_000, 3_600_000));
        // Short-lived: half the lifetime.
        assert_eq!(margin_ms(4_000), 2_000);
        assert!(is_fresh(1_000, 4_000, 4_000));
        assert!(!is_fresh(2_000, 4_000, 4_000));
        assert!(!is_fresh(5_000, 4_000, 4_000));
        // Exactly 120 s: both rules agree.
        assert_eq!(margin_ms(120_000), 60_000);
        assert!(!is_fresh(0, 0, 0));
    }
}
