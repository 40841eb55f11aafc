//! Pure routing: method + path → [`Route`]. Unknown paths and wrong methods
//! become JSON errors in the route's shape (`http::error`), never the runtime's plain text.

use crate::http::error::{GatewayError, Shape};
use crate::provider::Provider;
use crate::tenant::is_valid_name;

/// Which body rewrite a provider route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// OpenAI `POST /v1/responses`: `tools[type=mcp]`.
    Responses,
    /// Anthropic `POST /v1/messages` and `/v1/messages/count_tokens`: `mcp_servers[]`.
    Messages,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `/admin/tenants?limit=&cursor=`: GET, one page of tenant ids.
    Tenants,
    /// `/admin/openapi.json`: GET, the OpenAPI document of the admin API.
    OpenApi,
    /// `/admin/tenants/{id}`: PUT, GET, DELETE.
    Tenant { tenant: String },
    /// `/admin/tenants/{id}/keys`: POST, GET.
    Keys { tenant: String },
    /// `/admin/tenants/{id}/keys/{key_id}`: DELETE.
    Key { tenant: String, key_id: String },
    /// `/admin/tenants/{id}/usage?from=&to=`: GET.
    Usage { tenant: String },
    /// `/admin/tenants/{id}/mcp_servers/{name}/oauth[/connect]`.
    OAuth { tenant: String, server: String, action: OAuthAction },
}

/// What an admin call does to an MCP server's OAuth credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthAction {
    /// `POST .../oauth/connect`: a new authorization link.
    Connect,
    /// `GET .../oauth`: connected or not, expiry, last refresh, last error.
    Status,
    /// `DELETE .../oauth`: forget the tokens.
    Disconnect,
}

/// The admin console's files (static assets under `/admin/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleAsset {
    /// `/admin/` (also `/admin/index.html`).
    Page,
    /// `/admin/console.js`.
    Script,
    /// `/admin/console.css`.
    Style,
}

impl ConsoleAsset {
    /// The asset for a request path, if it is one of the console's files.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/admin/" | "/admin/index.html" => Some(Self::Page),
            "/admin/console.js" => Some(Self::Script),
            "/admin/console.css" => Some(Self::Style),
            _ => None,
        }
    }

    /// The path to ask the assets binding for (`/admin/` serves `admin/index.html`).
    #[must_use]
    pub const fn asset_path(self) -> &'static str {
        match self {
            Self::Page => "/admin/",
            Self::Script => "/admin/console.js",
            Self::Style => "/admin/console.css",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other,
}

impl Method {
    #[must_use]
    pub fn parse(m: &str) -> Self {
        match m {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Admin {
        route: AdminRoute,
        method: Method,
    },
    /// Anything under `/openai/v1/` or `/anthropic/v1/`. `upstream_path`
    /// starts with `/v1/`; the query string is appended by the shell.
    Provider {
        provider: Provider,
        upstream_path: String,
        rewrite: Option<Rewrite>,
    },
    /// `GET /oauth/callback`: the authorization server's redirect (public).
    OAuthCallback,
    /// `GET /admin/`, `/admin/console.js`, `/admin/console.css`: the admin console.
    Console(ConsoleAsset),
    /// `/mcp/{tenant}/{server}`: the MCP relay (GET, POST, DELETE).
    Relay {
        tenant: String,
        server: String,
        method: Method,
    },
}

/// The error shape of a path, for errors raised before or during routing.
#[must_use]
pub fn shape_of(path: &str) -> Shape {
    if path == "/anthropic" || path.starts_with("/anthropic/") {
        Shape::Anthropic
    } else if path.starts_with("/mcp/") {
        Shape::JsonRpc
    } else {
        Shape::OpenAi
    }
}

/// A path segment that is a dot segment (also percent-encoded) or hides a
/// slash or backslash could step out of `/v1/` upstream.
fn is_unsafe_segment(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    let decoded_dots = lower.replace("%2e", ".");
    decoded_dots == "." || decoded_dots == ".." || lower.contains("%2f") || lower.contains("%5c") || seg.contains('\\')
}

/// Classifies a request.
///
/// # Errors
/// 404 for unknown or unsafe paths, 405 for wrong methods, 400 for invalid tenant ids.
pub fn classify(method: &str, path: &str) -> Result<Route, GatewayError> {
    let m = Method::parse(method);
    if path.split('/').any(is_unsafe_segment) {
        return Err(GatewayError::not_found());
    }
    if path == "/healthz" {
        return match m {
            Method::Get => Ok(Route::Health),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        let prefix = match provider {
            Provider::OpenAi => "/openai",
            Provider::Anthropic => "/anthropic",
        };
        if let Some(rest) = path.strip_prefix(prefix) {
            if !rest.starts_with("/v1/") || rest.len() == "/v1/".len() {
                return Err(GatewayError::not_found());
            }
            let rewrite = match (provider, m, rest) {
                (Provider::OpenAi, Method::Post, "/v1/responses") => Some(Rewrite::Responses),
                (Provider::Anthropic, Method::Post, "/v1/messages" | "/v1/messages/count_tokens") => {
                    Some(Rewrite::Messages)
                }
                _ => None,
            };
            return Ok(Route::Provider { provider, upstream_path: rest.to_string(), rewrite });
        }
    }
    if path == "/oauth/callback" {
        return match m {
            Method::Get => Ok(Route::OAuthCallback),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    if let Some(route) = match path {
        "/admin/tenants" => Some(AdminRoute::Tenants),
        "/admin/openapi.json" => Some(AdminRoute::OpenApi),
        _ => None,
    } {
        return match m {
            Method::Get => Ok(Route::Admin { route, method: m }),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    if let Some(asset) = ConsoleAsset::of(path) {
        return match m {
            Method::Get => Ok(Route::Console(asset)),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    if let Some(rest) = path.strip_prefix("/admin/tenants/") {
        return classify_admin(m, rest);
    }
    if let Some(rest) = path.strip_prefix("/mcp/") {
        return classify_relay(m, rest);
    }
    Err(GatewayError::not_found())
}

fn classify_relay(m: Method, rest: &str) -> Result<Route, GatewayError> {
    let Some((tenant, server)) = rest.split_once('/') else {
        return Err(GatewayError::not_found());
    };
    if !is_valid_name(tenant) || !is_valid_name(server) {
        return Err(GatewayError::not_found());
    }
    match m {
        Method::Get | Method::Post | Method::Delete => {
            Ok(Route::Relay { tenant: tenant.to_string(), server: server.to_string(), method: m })
        }
        Method::Put | Method::Other => Err(GatewayError::MethodNotAllowed { allowed: "GET, POST, DELETE" }),
    }
}

fn classify_admin(m: Method, rest: &str) -> Result<Route, GatewayError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let tenant = (*parts.first().unwrap_or(&"")).to_string();
    let (route, allowed): (AdminRoute, &'static str) = match parts.as_slice() {
        [_] => (AdminRoute::Tenant { tenant: tenant.clone() }, "GET, PUT, DELETE"),
        [_, "keys"] => (AdminRoute::Keys { tenant: tenant.clone() }, "GET, POST"),
        [_, "usage"] => (AdminRoute::Usage { tenant: tenant.clone() }, "GET"),
        [_, "keys", key_id] if !key_id.is_empty() => {
            (AdminRoute::Key { tenant: tenant.clone(), key_id: (*key_id).to_string() }, "DELETE")
        }
        [_, "mcp_servers", server, "oauth", rest @ ..] if rest.len() <= 1 => {
            if !is_valid_name(server) {
                return Err(GatewayError::not_found());
            }
            let server = (*server).to_string();
            match (rest, m) {
                (["connect"], Method::Post) => {
                    (AdminRoute::OAuth { tenant: tenant.clone(), server, action: OAuthAction::Connect }, "POST")
                }
                (["connect"], _) => return Err(GatewayError::MethodNotAllowed { allowed: "POST" }),
                ([], Method::Delete) => (
                    AdminRoute::OAuth { tenant: tenant.clone(), server, action: OAuthAction::Disconnect },
                    "GET, DELETE",
                ),
                ([], _) => {
                    (AdminRoute::OAuth { tenant: tenant.clone(), server, action: OAuthAction::Status }, "GET, DELETE")
                }
                _ => return Err(GatewayError::not_found()),
            }
        }
        _ => return Err(GatewayError::not_found()),
    };
    let ok = match (&route, m) {
        (AdminRoute::Tenant { .. }, Method::Get | Method::Put | Method::Delete)
        | (AdminRoute::Keys { .. }, Method::Get | Method::Post)
        | (AdminRoute::Usage { .. }, Method::Get)
        | (AdminRoute::Key { .. }, Method::Delete)
        | (AdminRoute::OAuth { action: OAuthAction::Connect, .. }, Method::Post)
        | (AdminRoute::OAuth { action: OAuthAction::Status, .. }, Method::Get)
        | (AdminRoute::OAuth { action: OAuthAction::Disconnect, .. }, Method::Delete) => true,
        (AdminRoute::Tenants | AdminRoute::OpenApi, Method::Get) => true,
        (
            AdminRoute::Tenants
            | AdminRoute::OpenApi
            | AdminRoute::Tenant { .. }
            | AdminRoute::Keys { .. }
            | AdminRoute::Key { .. }
            | AdminRoute::Usage { .. }
            | AdminRoute::OAuth { .. },
            _,
        ) => false,
    };
    if !ok {
        return Err(GatewayError::MethodNotAllowed { allowed });
    }
    if !is_valid_name(&tenant) {
        return Err(GatewayError::bad_param(
            "tenant_id",
            "tenant_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'.",
        ));
    }
    Ok(Route::Admin { route, method: m })
}

/// The first value of query parameter `name` in a full URL, percent-decoded
/// (`+` as space); `None` if absent or not valid UTF-8 after decoding.
#[must_use]
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name).then(|| percent_decode(v)).flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(m: &str, p: &str) -> u16 {
        classify(m, p).map_or_else(|e| e.wire().status, |_| 200)
    }

    #[test]
    fn provider_routes() {
        assert_eq!(
            classify("POST", "/openai/v1/responses").unwrap(),
            Route::Provider {
                provider: Provider::OpenAi,
                upstream_path: "/v1/responses".into(),
                rewrite: Some(Rewrite::Responses)
            }
        );
        assert_eq!(
            classify("GET", "/openai/v1/responses/resp_1").unwrap(),
            Route::Provider { provider: Provider::OpenAi, upstream_path: "/v1/responses/resp_1".into(), rewrite: None }
        );
        assert!(matches!(
            classify("POST", "/anthropic/v1/messages/count_tokens").unwrap(),
            Route::Provider { rewrite: Some(Rewrite::Messages), .. }
        ));
        assert!(matches!(classify("GET", "/anthropic/v1/messages").unwrap(), Route::Provider { rewrite: None, .. }));
        assert!(matches!(
            classify("POST", "/openai/v1/chat/completions").unwrap(),
            Route::Provider { rewrite: None, .. }
        ));
    }

    #[test]
    fn unknown_and_unsafe_paths_are_404() {
        for p in [
            "/",
            "/openai",
            "/openai/v1",
            "/openai/v1/",
            "/openai/v2/models",
            "/openaiv1/models",
            "/openai/v1/../admin",
            "/openai/v1/%2e%2e/x",
            "/openai/v1/a%2Fb",
            "/openai/v1/a%5cb",
            "/anthropic/v1/.%2E/x",
            "/admin",
            "/admin/tenants/a/b",
            "/admin/tenants/a/keys/k/x",
        ] {
            assert_eq!(status("GET", p), 404, "{p}");
        }
    }

    #[test]
    fn methods() {
        assert_eq!(status("POST", "/healthz"), 405);
        assert_eq!(status("GET", "/healthz"), 200);
        assert_eq!(status("PATCH", "/admin/tenants/acme"), 405);
        assert_eq!(status("POST", "/admin/tenants/acme"), 405);
        assert_eq!(status("PUT", "/admin/tenants/acme/keys"), 405);
        assert_eq!(status("GET", "/admin/tenants/acme/keys/key_1"), 405);
        assert_eq!(status("DELETE", "/admin/tenants/acme/keys/key_1"), 200);
    }

    #[test]
    fn oauth_routes() {
        assert_eq!(
            classify("POST", "/admin/tenants/acme/mcp_servers/crm/oauth/connect").unwrap(),
            Route::Admin {
                route: AdminRoute::OAuth { tenant: "acme".into(), server: "crm".into(), action: OAuthAction::Connect },
                method: Method::Post
            }
        );
        assert!(matches!(
            classify("GET", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
            Route::Admin { route: AdminRoute::OAuth { action: OAuthAction::Status, .. }, .. }
        ));
        assert!(matches!(
            classify("DELETE", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
            Route::Admin { route: AdminRoute::OAuth { action: OAuthAction::Disconnect, .. }, .. }
        ));
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/connect"), 405);
        assert_eq!(status("PUT", "/admin/tenants/acme/mcp_servers/crm/oauth"), 405);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/x"), 404);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/a%20b/oauth"), 404);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm"), 404);
        assert_eq!(classify("GET", "/oauth/callback").unwrap(), Route::OAuthCallback);
        assert_eq!(status("POST", "/oauth/callback"), 405);
    }

    #[test]
    fn list_openapi_and_console_routes() {
        assert_eq!(
            classify("GET", "/admin/tenants").unwrap(),
            Route::Admin { route: AdminRoute::Tenants, method: Method::Get }
        );
        assert_eq!(
            classify("GET", "/admin/openapi.json").unwrap(),
            Route::Admin { route: AdminRoute::OpenApi, method: Method::Get }
        );
        assert_eq!(status("POST", "/admin/tenants"), 405);
        assert_eq!(status("DELETE", "/admin/openapi.json"), 405);
        assert_eq!(classify("GET", "/admin/").unwrap(), Route::Console(ConsoleAsset::Page));
        assert_eq!(classify("GET", "/admin/index.html").unwrap(), Route::Console(ConsoleAsset::Page));
        assert_eq!(classify("GET", "/admin/console.js").unwrap(), Route::Console(ConsoleAsset::Script));
        assert_eq!(classify("GET", "/admin/console.css").unwrap(), Route::Console(ConsoleAsset::Style));
        assert_eq!(status("POST", "/admin/"), 405);
        for p in ["/admin/tenants/", "/admin/x.js", "/admin/console.js/", "/admin//"] {
            assert_ne!(status("GET", p), 200, "{p}");
        }
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert_eq!(status("PUT", "/admin/tenants/a%20b"), 400);
        assert_eq!(status("PUT", &format!("/admin/tenants/{}", "a".repeat(65))), 400);
        assert_eq!(status("PUT", "/admin/tenants/Acme_1-x"), 200);
    }

    #[test]
    fn query_params() {
        let u = "https://gw/admin/tenants/a/usage?from=2026-11-01&to=2026%2D11%2D30&x&q=a+b#frag";
        assert_eq!(query_param(u, "from").as_deref(), Some("2026-11-01"));
        assert_eq!(query_param(u, "to").as_deref(), Some("2026-11-30"));
        assert_eq!(query_param(u, "x").as_deref(), Some(""));
        assert_eq!(query_param(u, "q").as_deref(), Some("a b"));
        assert_eq!(query_param(u, "none"), None);
        assert_eq!(query_param("https://gw/x?bad=%zz&ok=1", "bad"), None);
        assert_eq!(query_param("https://gw/x?t=%2", "t"), None);
        assert_eq!(query_param("https://gw/x", "t"), None);
    }

    #[test]
    fn relay_routes() {
        assert_eq!(
            classify("POST", "/mcp/acme/crm").unwrap(),
            Route::Relay { tenant: "acme".into(), server: "crm".into(), method: Method::Post }
        );
        assert!(matches!(classify("GET", "/mcp/acme/crm").unwrap(), Route::Relay { method: Method::Get, .. }));
        assert!(matches!(classify("DELETE", "/mcp/a/b").unwrap(), Route::Relay { method: Method::Delete, .. }));
        assert_eq!(status("PUT", "/mcp/acme/crm"), 405);
        assert_eq!(status("OPTIONS", "/mcp/acme/crm"), 405);
        for p in
            ["/mcp/", "/mcp/acme", "/mcp/acme/", "/mcp/acme/crm/x", "/mcp/a%20b/crm", "/mcp/acme/../crm", "/mcp//crm"]
        {
            assert_eq!(status("POST", p), 404, "{p}");
        }
        assert_eq!(shape_of("/mcp/acme/crm"), Shape::JsonRpc);
    }

    #[test]
    fn shapes() {
        assert_eq!(shape_of("/anthropic/v1/messages"), Shape::Anthropic);
        assert_eq!(shape_of("/openai/v1/x"), Shape::OpenAi);
        assert_eq!(shape_of("/admin/tenants/x"), Shape::OpenAi);
    }
}
