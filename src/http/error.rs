//! Every error the gateway itself answers, and the one table that maps each
//! to a status and to the OpenAI and Anthropic wire shapes
//! (README "Errors").
//!
//! Messages are written by the gateway only: they name fields and servers,
//! never a secret, an upstream body or an inner error's `Debug`.

use serde::Serialize;

use crate::provider::table::Family;
use crate::provider::Provider;

/// One variant per row of the error table (plus later rows for
/// OAuth and rate limits). `message` texts are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// Missing or unknown gateway key (or admin token).
    Unauthenticated { message: String },
    /// MCP relay: missing, malformed, expired, forged or misaddressed
    /// capability token (401 with `WWW-Authenticate: Bearer`).
    InvalidCapability { message: &'static str, missing: bool },
    /// Malformed body, wrong field types, unknown MCP server, client-owned credentials.
    BadRequest { message: String, param: Option<String> },
    /// Body over `MAX_BODY_BYTES` (after decoding its `Content-Encoding`).
    PayloadTooLarge { limit: u64 },
    /// A request `Content-Encoding` the gateway cannot decode (it must read
    /// what it polices, and forwards bodies decoded).
    UnsupportedEncoding { encoding: String },
    /// A route whose body the gateway cannot police for this tenant.
    RouteRefused { message: String },
    /// The tenant has no API key for the route's provider.
    NoProviderKey(Provider),
    /// Unknown route (or admin API disabled, or an absent resource).
    NotFound { message: String },
    /// Known route, wrong method.
    MethodNotAllowed { allowed: &'static str },
    /// The tenant's `rate_limit` is used up for this minute.
    RateLimited { retry_after_s: u64 },
    /// Upstream connection failed.
    UpstreamUnreachable { what: String },
    /// Upstream sent no response headers in time.
    UpstreamTimeout { what: String },
    /// An `oauth2` MCP server has no usable grant (never connected, or the
    /// authorization server answered `invalid_grant` / `invalid_client`):
    /// only reconnecting it helps. `reason` is the gateway's own words.
    McpOAuthReconnect { server: String, reason: String },
    /// The token endpoint of an `oauth2` MCP server failed (unreachable,
    /// garbage, an unexpected error).
    McpOAuthUnavailable { server: String, reason: String },
    /// The request names a per-user MCP server its user has not connected
    /// (or names no user at all: `no_user`).
    McpUserConnectRequired { server: String, no_user: bool },
    /// The gateway key may not act for the user the request names.
    UserForbidden { message: String },
    /// A gateway bug or misconfiguration; details go to the log, never here.
    Internal { message: String },
}

/// How an error looks on the wire, independent of the route's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub status: u16,
    pub openai_type: &'static str,
    pub openai_code: Option<&'static str>,
    pub anthropic_type: &'static str,
    /// Google's canonical status name (`error.status` in the Google shape).
    pub google_status: &'static str,
    /// `Some(false)` → `x-should-retry: false`.
    pub should_retry: Option<bool>,
}

/// Which wire shape a route answers errors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
    /// The MCP relay: a JSON-RPC error response with `id: null`.
    JsonRpc,
    /// Google APIs (Gemini): `{"error":{"code","message","status"}}`.
    Google,
}

impl From<Provider> for Shape {
    fn from(p: Provider) -> Self {
        match p.spec().family {
            Family::OpenAi => Self::OpenAi,
            Family::Anthropic => Self::Anthropic,
            Family::Google => Self::Google,
        }
    }
}

impl GatewayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest { message: message.into(), param: None }
    }

    pub fn bad_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest { message: message.into(), param: Some(param.into()) }
    }

    pub fn not_found() -> Self {
        Self::NotFound { message: "Unknown route.".into() }
    }

    /// The error table (README "Errors").
    #[must_use]
    pub fn wire(&self) -> Wire {
        let (status, openai_type, openai_code, anthropic_type, should_retry) = match self {
            Self::Unauthenticated { .. } => {
                (401, "invalid_request_error", Some("invalid_api_key"), "authentication_error", Some(false))
            }
            Self::InvalidCapability { .. } => {
                (401, "invalid_request_error", Some("invalid_token"), "authentication_error", Some(false))
            }
            Self::BadRequest { .. } => (400, "invalid_request_error", None, "invalid_request_error", Some(false)),
            Self::PayloadTooLarge { .. } => (413, "invalid_request_error", None, "request_too_large", Some(false)),
            Self::UnsupportedEncoding { .. } => (
                415,
                "invalid_request_error",
                Some("unsupported_content_encoding"),
                "invalid_request_error",
                Some(false),
            ),
            Self::RouteRefused { .. } => {
                (403, "permission_error", Some("route_refused_by_mcp_policy"), "permission_error", Some(false))
            }
            Self::NoProviderKey(_) => (403, "permission_error", None, "permission_error", Some(false)),
            Self::NotFound { .. } => (404, "not_found_error", None, "not_found_error", Some(false)),
            Self::MethodNotAllowed { .. } => (405, "invalid_request_error", None, "invalid_request_error", Some(false)),
            Self::RateLimited { .. } => {
                (429, "rate_limit_error", Some("rate_limit_exceeded"), "rate_limit_error", None)
            }
            Self::UpstreamUnreachable { .. } => (502, "api_error", None, "api_error", None),
            Self::UpstreamTimeout { .. } => (504, "api_error", None, "api_error", None),
            Self::McpOAuthReconnect { .. } => (
                424,
                "invalid_request_error",
                Some("mcp_oauth_reconnect_required"),
                "invalid_request_error",
                Some(false),
            ),
            Self::McpOAuthUnavailable { .. } => (502, "api_error", None, "api_error", None),
            Self::McpUserConnectRequired { .. } => {
                (424, "invalid_request_error", Some("mcp_user_connect_required"), "invalid_request_error", Some(false))
            }
            Self::UserForbidden { .. } => {
                (403, "permission_error", Some("user_not_allowed"), "permission_error", Some(false))
            }
            Self::Internal { .. } => (500, "api_error", None, "api_error", None),
        };
        let google_status = match status {
            400 | 405 | 413 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            424 => "FAILED_PRECONDITION",
            429 => "RESOURCE_EXHAUSTED",
            502 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        };
        Wire { status, openai_type, openai_code, anthropic_type, google_status, should_retry }
    }

    /// A low-cardinality name for logs and metrics.
    #[must_use]
    pub const fn class(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::InvalidCapability { .. } => "invalid_capability_token",
            Self::BadRequest { .. } => "bad_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedEncoding { .. } => "unsupported_content_encoding",
            Self::RouteRefused { .. } => "route_refused",
            Self::NoProviderKey(_) => "no_provider_key",
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::UpstreamUnreachable { .. } => "upstream_unreachable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::McpOAuthReconnect { .. } => "mcp_oauth_reconnect_required",
            Self::McpOAuthUnavailable { .. } => "mcp_oauth_token_unavailable",
            Self::McpUserConnectRequired { .. } => "mcp_user_connect_required",
            Self::UserForbidden { .. } => "user_not_allowed",
            Self::Internal { .. } => "internal",
        }
    }

    /// The caller-facing message.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated { message }
            | Self::BadRequest { message, .. }
            | Self::NotFound { message }
            | Self::RouteRefused { message }
            | Self::UserForbidden { message } => message.clone(),
            Self::UnsupportedEncoding { encoding } => format!(
                "Content-Encoding '{encoding}' is not supported; send the body plain, gzip, deflate or br encoded."
            ),
            Self::InvalidCapability { message, .. } => (*message).to_string(),
            Self::PayloadTooLarge { limit } => {
                format!("Request body is larger than the gateway's limit of {limit} bytes.")
            }
            Self::NoProviderKey(p) => {
                format!("This tenant has no API key configured for provider '{}'.", p.spec().config_key)
            }
            Self::MethodNotAllowed { allowed } => {
                format!("Method not allowed on this route; allowed: {allowed}.")
            }
            Self::RateLimited { retry_after_s } => {
                format!("This tenant's request rate limit is used up; retry after {retry_after_s} s.")
            }
            Self::UpstreamUnreachable { what } => format!("Could not reach {what}."),
            Self::UpstreamTimeout { what } => format!("{what} did not answer in time."),
            Self::McpOAuthReconnect { server, reason } => format!(
                "MCP server '{server}' must be reconnected: {reason}. Reconnect it through the gateway's OAuth \
                 connect flow, or update its OAuth credentials."
            ),
            Self::McpOAuthUnavailable { server, reason } => {
                format!("Could not get an OAuth access token for MCP server '{server}': {reason}.")
            }
            Self::McpUserConnectRequired { server, no_user: false } => format!(
                "MCP server '{server}' takes each user's own credential, and this request's user has not connected \
                 it. Connect it for this user through the admin API, then retry."
            ),
            Self::McpUserConnectRequired { server, no_user: true } => format!(
                "MCP server '{server}' takes each user's own credential, and this request names no user: use a user's \
                 gateway key, or a key with \"act_as_users\" and the mcpgate-user header."
            ),
            Self::Internal { .. } => "The gateway hit an internal error.".into(),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::BadRequest { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// Extra headers besides `content-type` and `x-should-retry`.
    #[must_use]
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allowed } => vec![("allow", (*allowed).to_string())],
            Self::RateLimited { retry_after_s } => vec![("retry-after", retry_after_s.to_string())],
            // RFC 6750 §3: no error attribute when the request had no token.
            Self::InvalidCapability { missing: true, .. } => {
                vec![("www-authenticate", "Bearer realm=\"mcpgate\"".to_string())]
            }
            Self::InvalidCapability { message, missing: false } => vec![(
                "www-authenticate",
                format!("Bearer realm=\"mcpgate\", error=\"invalid_token\", error_description=\"{message}\""),
            )],
            _ => Vec::new(),
        }
    }

    /// Body bytes in the given shape.
    #[must_use]
    pub fn body(&self, shape: Shape) -> Vec<u8> {
        let wire = self.wire();
        let message = self.message();
        let value = match shape {
            Shape::OpenAi => serde_json::to_vec(&OpenAiBody {
                error: OpenAiError {
                    message: &message,
                    r#type: wire.openai_type,
                    param: self.param(),
                    code: wire.openai_code,
                },
            }),
            Shape::Anthropic => serde_json::to_vec(&AnthropicBody {
                r#type: "error",
                error: AnthropicError { r#type: wire.anthropic_type, message: &message },
            }),
            Shape::Google => serde_json::to_vec(&serde_json::json!({
                "error": {"code": wire.status, "message": message, "status": wire.google_status},
            })),
            Shape::JsonRpc => serde_json::to_vec(&serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": {
                    // JSON-RPC "invalid request" for the caller's faults, "server error" otherwise.
                    "code": if matches!(wire.status, 400 | 413) { -32600 } else { -32000 },
                    "message": message,
                    "data": {"status": wire.status, "type": wire.openai_code.unwrap_or(wire.openai_type)},
                },
            })),
        };
        value.unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"api_error","param":null,"code":null}}"#.to_vec()
        })
    }

    /// All response headers for this error.
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("content-type", "application/json".to_string())];
        if let Some(retry) = self.wire().should_retry {
            h.push(("x-should-retry", retry.to_string()));
        }
        h.extend(self.extra_headers());
        h
    }
}

#[derive(Serialize)]
struct OpenAiBody<'a> {
    error: OpenAiError<'a>,
}

#[derive(Serialize)]
struct OpenAiError<'a> {
    message: &'a str,
    r#type: &'static str,
    param: Option<&'a str>,
    code: Option<&'static str>,
}

#[derive(Serialize)]
struct AnthropicBody<'a> {
    r#type: &'static str,
    error: AnthropicError<'a>,
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    r#type: &'static str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn all() -> Vec<GatewayError> {
        vec![
            GatewayError::Unauthenticated { message: "m".into() },
            GatewayError::InvalidCapability { message: "The capability token has expired.", missing: false },
            GatewayError::bad_param("tools[0]", "bad"),
            GatewayError::PayloadTooLarge { limit: 10 },
            GatewayError::NoProviderKey(Provider::Anthropic),
            GatewayError::not_found(),
            GatewayError::MethodNotAllowed { allowed: "GET" },
            GatewayError::RateLimited { retry_after_s: 7 },
            GatewayError::UpstreamUnreachable { what: "the provider".into() },
            GatewayError::UpstreamTimeout { what: "the provider".into() },
            GatewayError::Internal { message: "x".into() },
            GatewayError::McpOAuthReconnect { server: "crm".into(), reason: "r".into() },
            GatewayError::McpOAuthUnavailable { server: "crm".into(), reason: "r".into() },
            GatewayError::McpUserConnectRequired { server: "crm".into(), no_user: false },
            GatewayError::UserForbidden { message: "m".into() },
        ]
    }

    #[test]
    fn table_matches_the_documented_table() {
        let got: Vec<(u16, &str, &str)> = all()
            .iter()
            .map(|e| {
                let w = e.wire();
                (w.status, w.openai_type, w.anthropic_type)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (401, "invalid_request_error", "authentication_error"),
                (401, "invalid_request_error", "authentication_error"),
                (400, "invalid_request_error", "invalid_request_error"),
                (413, "invalid_request_error", "request_too_large"),
                (403, "permission_error", "permission_error"),
                (404, "not_found_error", "not_found_error"),
                (405, "invalid_request_error", "invalid_request_error"),
                (429, "rate_limit_error", "rate_limit_error"),
                (502, "api_error", "api_error"),
                (504, "api_error", "api_error"),
                (500, "api_error", "api_error"),
                (424, "invalid_request_error", "invalid_request_error"),
                (502, "api_error", "api_error"),
                (424, "invalid_request_error", "invalid_request_error"),
                (403, "permission_error", "permission_error"),
            ]
        );
        assert_eq!(all()[0].wire().openai_code, Some("invalid_api_key"));
    }

    #[test]
    fn oauth_errors_name_the_server_and_say_reconnect() {
        let e =
            GatewayError::McpOAuthReconnect { server: "crm".into(), reason: "it has not been connected yet".into() };
        let v: Value = serde_json::from_slice(&e.body(Shape::OpenAi)).unwrap();
        assert_eq!(v["error"]["code"], "mcp_oauth_reconnect_required");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("'crm'") && m.contains("reconnect"), "{m}");
        let v: Value = serde_json::from_slice(&e.body(Shape::Anthropic)).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(e.headers().contains(&("x-should-retry", "false".to_string())));
        let e = GatewayError::McpOAuthUnavailable { server: "crm".into(), reason: "down".into() };
        assert!(e.message().contains("'crm'"));
    }

    #[test]
    fn openai_shape_has_all_four_keys() {
        let v: Value =
            serde_json::from_slice(&GatewayError::bad_param("tools[1].server_url", "no").body(Shape::OpenAi)).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "tools[1].server_url");
        assert!(v["error"]["code"].is_null());
        assert_eq!(v["error"]["message"], "no");
    }

    #[test]
    fn anthropic_shape() {
        let v: Value =
            serde_json::from_slice(&GatewayError::PayloadTooLarge { limit: 5 }.body(Shape::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "request_too_large");
    }

    #[test]
    fn google_shape() {
        let v: Value =
            serde_json::from_slice(&GatewayError::bad_param("tools[0].url", "no").body(Shape::Google)).unwrap();
        assert_eq!(v, serde_json::json!({"error": {"code": 400, "message": "no", "status": "INVALID_ARGUMENT"}}));
        let v: Value =
            serde_json::from_slice(&GatewayError::Unauthenticated { message: "m".into() }.body(Shape::Google)).unwrap();
        assert_eq!((v["error"]["code"].as_u64(), v["error"]["status"].as_str()), (Some(401), Some("UNAUTHENTICATED")));
        assert_eq!(Shape::from(Provider::Gemini), Shape::Google);
        assert_eq!(Shape::from(Provider::AzureOpenAi), Shape::OpenAi);
        assert_eq!(Shape::from(Provider::Xai), Shape::OpenAi);
        for e in all() {
            assert!(!e.wire().google_status.is_empty());
        }
    }

    #[test]
    fn json_rpc_shape_and_bearer_challenge() {
        let e = GatewayError::InvalidCapability { message: "The capability token has expired.", missing: false };
        let v: Value = serde_json::from_slice(&e.body(Shape::JsonRpc)).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["id"].is_null());
        assert_eq!(v["error"]["code"], -32000);
        assert_eq!(v["error"]["data"]["type"], "invalid_token");
        let challenge = e.headers().into_iter().find(|(k, _)| *k == "www-authenticate").unwrap().1;
        assert!(challenge.starts_with("Bearer realm=\"mcpgate\", error=\"invalid_token\""), "{challenge}");
        let missing = GatewayError::InvalidCapability { message: "m", missing: true };
        assert!(missing.headers().contains(&("www-authenticate", "Bearer realm=\"mcpgate\"".to_string())));
        let v: Value = serde_json::from_slice(&GatewayError::bad_request("x").body(Shape::JsonRpc)).unwrap();
        assert_eq!(v["error"]["code"], -32600);
    }

    #[test]
    fn client_faults_say_do_not_retry() {
        for e in all() {
            let w = e.wire();
            let no_retry = e.headers().iter().any(|(k, v)| *k == "x-should-retry" && v == "false");
            assert_eq!(no_retry, w.status < 500 && w.status != 429, "{e:?}");
        }
    }
}
