//! Pure routing: method + path → [`Route`]. Unknown paths and wrong methods
//! become the gateway's JSON errors, never the runtime's plain text. Every
//! route carries its method, so a handler never re-decides it.

use crate::http::error::{GatewayError, Shape};
use crate::http::path::canonical;
use crate::provider::routes::{treatment, Treatment};
use crate::provider::Provider;
use crate::tenant::is_valid_name;

/// One admin operation: route and method together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    /// `GET /admin/tenants?limit=&cursor=`: one page of tenant ids.
    ListTenants,
    /// `GET /admin/openapi.json`: the OpenAPI document of the admin API.
    OpenApi,
    /// `PUT /admin/tenants/{id}`.
    PutTenant { tenant: String },
    /// `GET /admin/tenants/{id}`.
    GetTenant { tenant: String },
    /// `DELETE /admin/tenants/{id}`.
    DeleteTenant { tenant: String },
    /// `POST /admin/tenants/{id}/keys`.
    CreateKey { tenant: String },
    /// `GET /admin/tenants/{id}/keys`.
    ListKeys { tenant: String },
    /// `DELETE /admin/tenants/{id}/keys/{key_id}`.
    DeleteKey { tenant: String, key_id: String },
    /// `GET /admin/tenants/{id}/usage?from=&to=`.
    Usage { tenant: String },
    /// `.../mcp_servers/{name}/oauth[/connect]`.
    OAuth { tenant: String, server: String, action: OAuthAction },
    /// `/admin/maintenance/reseal?cursor=&limit=`: POST re-seals a page of
    /// tenants under the current master key (`write`), GET counts without writing.
    Reseal { write: bool },
    /// `GET /admin/tenants/{id}/users?cursor=&limit=`.
    ListUsers { tenant: String },
    /// `/admin/tenants/{id}/users/{user}[/…]` (the user id already validated).
    User { tenant: String, user: String, op: UserOp },
}

/// What an admin call does about one user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOp {
    /// `GET …/users/{user}`: which servers have a credential.
    Get,
    /// `DELETE …/users/{user}`: every credential, token and key of the user.
    Delete,
    /// `PUT …/users/{user}/mcp_servers/{s}/credential`.
    PutCredential { server: String },
    /// `DELETE …/users/{user}/mcp_servers/{s}/credential`.
    DeleteCredential { server: String },
    /// `…/users/{user}/mcp_servers/{s}/oauth[/connect]`.
    OAuth { server: String, action: OAuthAction },
}

impl AdminOp {
    /// The tenant the operation is about, if it is about one.
    #[must_use]
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::PutTenant { tenant }
            | Self::GetTenant { tenant }
            | Self::DeleteTenant { tenant }
            | Self::CreateKey { tenant }
            | Self::ListKeys { tenant }
            | Self::DeleteKey { tenant, .. }
            | Self::Usage { tenant }
            | Self::OAuth { tenant, .. }
            | Self::ListUsers { tenant }
            | Self::User { tenant, .. } => Some(tenant),
            Self::ListTenants | Self::OpenApi | Self::Reseal { .. } => None,
        }
    }

    /// The tenant whose records this operation writes, when it is a write
    /// that must run one at a time with the tenant's other writes.
    #[must_use]
    pub fn serialized_tenant(&self) -> Option<&str> {
        match self {
            Self::PutTenant { tenant }
            | Self::DeleteTenant { tenant }
            | Self::CreateKey { tenant }
            | Self::DeleteKey { tenant, .. }
            | Self::User {
                tenant,
                op: UserOp::Delete | UserOp::PutCredential { .. } | UserOp::DeleteCredential { .. },
                ..
            } => Some(tenant),
            Self::GetTenant { .. }
            | Self::ListKeys { .. }
            | Self::Usage { .. }
            | Self::OAuth { .. }
            | Self::ListUsers { .. }
            | Self::User { op: UserOp::Get | UserOp::OAuth { .. }, .. }
            | Self::ListTenants
            | Self::OpenApi
            | Self::Reseal { .. } => None,
        }
    }
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
    /// The asset for a request path, if it is one of the console's files
    /// (matched exactly, before canonicalization: `/admin/` ends in a slash).
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

/// HTTP methods the gateway tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    #[must_use]
    pub fn parse(m: &str) -> Self {
        match m {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    /// Methods whose request body is forwarded.
    #[must_use]
    pub const fn has_body(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

/// The methods the MCP relay forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMethod {
    /// A JSON-RPC message (policed).
    Post,
    /// The standalone SSE stream of a session.
    Get,
    /// Ends a session.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Admin(AdminOp),
    /// Anything under a provider's prefix and one of its roots (`/openai/v1/`,
    /// `/groq/openai/v1/`, …; see `provider::table`). `upstream_path` is the
    /// canonical path after the prefix; the query string is appended by the shell.
    Provider {
        provider: Provider,
        method: Method,
        upstream_path: String,
        treatment: Treatment,
    },
    /// `GET /oauth/callback`: the authorization server's redirect (public).
    OAuthCallback,
    /// `GET /admin/`, `/admin/console.js`, `/admin/console.css`: the admin console.
    Console(ConsoleAsset),
    /// `/mcp/{tenant}/{server}`: the MCP relay.
    Relay {
        tenant: String,
        server: String,
        method: RelayMethod,
    },
}

/// The error shape of a path, for errors raised before or during routing.
#[must_use]
pub fn shape_of(path: &str) -> Shape {
    if let Some((provider, _)) = Provider::of_path(path) {
        Shape::from(provider)
    } else if path.starts_with("/mcp/") {
        Shape::JsonRpc
    } else {
        Shape::OpenAi
    }
}

/// Classifies a request on the canonical form of its path.
///
/// # Errors
/// 404 for unknown or non-canonical paths, 405 for wrong methods, 400 for invalid tenant ids.
pub fn classify(method: &str, path: &str) -> Result<Route, GatewayError> {
    let m = Method::parse(method);
    if let Some(asset) = ConsoleAsset::of(path) {
        return match m {
            Method::Get => Ok(Route::Console(asset)),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    let path = canonical(path).map_err(|_| GatewayError::not_found())?;
    if path == "/healthz" {
        return match m {
            Method::Get => Ok(Route::Health),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    if let Some((provider, rest)) = Provider::of_path(&path) {
        if !provider.spec().roots.iter().any(|root| rest.len() > root.len() && rest.starts_with(root)) {
            return Err(GatewayError::not_found());
        }
        let treatment = treatment(provider, m, rest);
        return Ok(Route::Provider { provider, method: m, upstream_path: rest.to_string(), treatment });
    }
    if path == "/oauth/callback" {
        return match m {
            Method::Get => Ok(Route::OAuthCallback),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    let read_only = match path.as_str() {
        "/admin/tenants" => Some(AdminOp::ListTenants),
        "/admin/openapi.json" => Some(AdminOp::OpenApi),
        _ => None,
    };
    if let Some(op) = read_only {
        return match m {
            Method::Get => Ok(Route::Admin(op)),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET" }),
        };
    }
    if path == "/admin/maintenance/reseal" {
        return match m {
            Method::Get => Ok(Route::Admin(AdminOp::Reseal { write: false })),
            Method::Post => Ok(Route::Admin(AdminOp::Reseal { write: true })),
            _ => Err(GatewayError::MethodNotAllowed { allowed: "GET, POST" }),
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
    let method = match m {
        Method::Get => RelayMethod::Get,
        Method::Post => RelayMethod::Post,
        Method::Delete => RelayMethod::Delete,
        Method::Head | Method::Put | Method::Patch | Method::Options | Method::Other => {
            return Err(GatewayError::MethodNotAllowed { allowed: "GET, POST, DELETE" })
        }
    };
    Ok(Route::Relay { tenant: tenant.to_string(), server: server.to_string(), method })
}

fn classify_admin(m: Method, rest: &str) -> Result<Route, GatewayError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let tenant = (*parts.first().unwrap_or(&"")).to_string();
    let not_allowed = |allowed| Err(GatewayError::MethodNotAllowed { allowed });
    let op = match (parts.as_slice(), m) {
        ([_], Method::Put) => AdminOp::PutTenant { tenant },
        ([_], Method::Get) => AdminOp::GetTenant { tenant },
        ([_], Method::Delete) => AdminOp::DeleteTenant { tenant },
        ([_], _) => return not_allowed("GET, PUT, DELETE"),
        ([_, "keys"], Method::Post) => AdminOp::CreateKey { tenant },
        ([_, "keys"], Method::Get) => AdminOp::ListKeys { tenant },
        ([_, "keys"], _) => return not_allowed("GET, POST"),
        ([_, "keys", key_id], Method::Delete) => AdminOp::DeleteKey { tenant, key_id: (*key_id).to_string() },
        ([_, "keys", _], _) => return not_allowed("DELETE"),
        ([_, "usage"], Method::Get) => AdminOp::Usage { tenant },
        ([_, "usage"], _) => return not_allowed("GET"),
        ([_, "mcp_servers", server, "oauth", tail @ ..], _) if tail.len() <= 1 && is_valid_name(server) => {
            let server = (*server).to_string();
            let action = match (tail, m) {
                (["connect"], Method::Post) => OAuthAction::Connect,
                (["connect"], _) => return not_allowed("POST"),
                ([], Method::Get) => OAuthAction::Status,
                ([], Method::Delete) => OAuthAction::Disconnect,
                ([], _) => return not_allowed("GET, DELETE"),
                _ => return Err(GatewayError::not_found()),
            };
            AdminOp::OAuth { tenant, server, action }
        }
        ([_, "users"], Method::Get) => AdminOp::ListUsers { tenant },
        ([_, "users"], _) => return not_allowed("GET"),
        ([_, "users", user, tail @ ..], _) => {
            if !crate::tenant::users::is_valid_user_id(user) {
                return Err(GatewayError::bad_param(
                    "user",
                    "user ids are 1-128 characters of A-Z, a-z, 0-9, '.', '_', '@', ':' or '-'.",
                ));
            }
            let op = classify_user(m, tail)?;
            AdminOp::User { tenant, user: (*user).to_string(), op }
        }
        _ => return Err(GatewayError::not_found()),
    };
    if !op.tenant().is_some_and(is_valid_name) {
        return Err(GatewayError::bad_param(
            "tenant_id",
            "tenant_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'.",
        ));
    }
    Ok(Route::Admin(op))
}

fn classify_user(m: Method, tail: &[&str]) -> Result<UserOp, GatewayError> {
    let not_allowed = |allowed| Err(GatewayError::MethodNotAllowed { allowed });
    Ok(match (tail, m) {
        ([], Method::Get) => UserOp::Get,
        ([], Method::Delete) => UserOp::Delete,
        ([], _) => return not_allowed("GET, DELETE"),
        (["mcp_servers", server, rest @ ..], _) if is_valid_name(server) => {
            let server = (*server).to_string();
            match (rest, m) {
                (["credential"], Method::Put) => UserOp::PutCredential { server },
                (["credential"], Method::Delete) => UserOp::DeleteCredential { server },
                (["credential"], _) => return not_allowed("PUT, DELETE"),
                (["oauth", "connect"], Method::Post) => UserOp::OAuth { server, action: OAuthAction::Connect },
                (["oauth", "connect"], _) => return not_allowed("POST"),
                (["oauth"], Method::Get) => UserOp::OAuth { server, action: OAuthAction::Status },
                (["oauth"], Method::Delete) => UserOp::OAuth { server, action: OAuthAction::Disconnect },
                (["oauth"], _) => return not_allowed("GET, DELETE"),
                _ => return Err(GatewayError::not_found()),
            }
        }
        _ => return Err(GatewayError::not_found()),
    })
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
    use crate::provider::routes::Rewrite;

    fn status(m: &str, p: &str) -> u16 {
        classify(m, p).map_or_else(|e| e.wire().status, |_| 200)
    }

    fn provider(m: &str, p: &str) -> (String, Treatment) {
        match classify(m, p).unwrap() {
            Route::Provider { upstream_path, treatment, .. } => (upstream_path, treatment),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn provider_routes() {
        assert_eq!(
            classify("POST", "/openai/v1/responses").unwrap(),
            Route::Provider {
                provider: Provider::OpenAi,
                method: Method::Post,
                upstream_path: "/v1/responses".into(),
                treatment: Treatment::Rewrite(Rewrite::Responses)
            }
        );
        assert_eq!(provider("GET", "/openai/v1/responses/resp_1"), ("/v1/responses/resp_1".into(), Treatment::Pass));
        assert_eq!(provider("POST", "/anthropic/v1/messages/count_tokens").1, Treatment::Rewrite(Rewrite::Messages));
        assert_eq!(provider("GET", "/anthropic/v1/messages").1, Treatment::Pass);
        assert_eq!(provider("POST", "/openai/v1/chat/completions").1, Treatment::Pass);
    }

    #[test]
    fn table_providers_route_and_shape() {
        assert_eq!(
            provider("POST", "/azure/openai/responses"),
            ("/openai/responses".into(), Treatment::Rewrite(Rewrite::Responses))
        );
        assert_eq!(provider("POST", "/gemini/v1beta/interactions").1, Treatment::Rewrite(Rewrite::Interactions));
        assert_eq!(provider("POST", "/groq/openai/v1/responses").1, Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(provider("POST", "/xai/v1/respons%65s").1, Treatment::Rewrite(Rewrite::Responses));
        for p in ["/xai/v2/x", "/groq/v1/responses", "/gemini/v2/x", "/azure/v1/responses", "/xai/v1/../admin"] {
            assert_eq!(status("POST", p), 404, "{p}");
        }
        assert_eq!(shape_of("/gemini/v1beta/interactions"), Shape::Google);
        assert_eq!(shape_of("/azure/openai/v1/responses"), Shape::OpenAi);
        assert_eq!(shape_of("/anthropic/v1/messages"), Shape::Anthropic);
    }

    #[test]
    fn every_spelling_of_a_policed_route_is_policed_or_refused() {
        // Decoded to the canonical path, which is what goes upstream.
        assert_eq!(
            provider("POST", "/openai/v1/respons%65s"),
            ("/v1/responses".into(), Treatment::Rewrite(Rewrite::Responses))
        );
        assert_eq!(provider("POST", "/anthropic/v1/%6Dessages").1, Treatment::Rewrite(Rewrite::Messages));
        assert_eq!(provider("POST", "/openai/v1/Responses").1, Treatment::Rewrite(Rewrite::Responses));
        for p in
            ["/openai/v1/responses/", "/anthropic/v1//messages", "/openai//v1/responses", "/openai/v1/responses%2F"]
        {
            assert_eq!(status("POST", p), 404, "{p}");
        }
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
            "/admin/tenants/a/keys/",
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
        assert_eq!(
            classify("DELETE", "/admin/tenants/acme").unwrap(),
            Route::Admin(AdminOp::DeleteTenant { tenant: "acme".into() })
        );
        assert_eq!(
            classify("DELETE", "/admin/tenants/acme/keys/key_1").unwrap(),
            Route::Admin(AdminOp::DeleteKey { tenant: "acme".into(), key_id: "key_1".into() })
        );
    }

    #[test]
    fn oauth_routes() {
        assert_eq!(
            classify("POST", "/admin/tenants/acme/mcp_servers/crm/oauth/connect").unwrap(),
            Route::Admin(AdminOp::OAuth { tenant: "acme".into(), server: "crm".into(), action: OAuthAction::Connect })
        );
        assert!(matches!(
            classify("GET", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
            Route::Admin(AdminOp::OAuth { action: OAuthAction::Status, .. })
        ));
        assert!(matches!(
            classify("DELETE", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
            Route::Admin(AdminOp::OAuth { action: OAuthAction::Disconnect, .. })
        ));
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/connect"), 405);
        assert_eq!(status("PUT", "/admin/tenants/acme/mcp_servers/crm/oauth"), 405);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/x"), 404);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/a%20b/oauth"), 404);
        assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm"), 404);
        assert_eq!(classify("GET", "/oauth/callback").unwrap(), Route::OAuthCallback);
        assert_eq!(status("POST", "/oauth/callback"), 405);
        assert_eq!(
            classify("POST", "/admin/maintenance/reseal").unwrap(),
            Route::Admin(AdminOp::Reseal { write: true })
        );
        assert_eq!(
            classify("GET", "/admin/maintenance/reseal").unwrap(),
            Route::Admin(AdminOp::Reseal { write: false })
        );
        assert_eq!(status("DELETE", "/admin/maintenance/reseal"), 405);
        assert_eq!(status("POST", "/admin/maintenance/other"), 404);
    }

    #[test]
    fn list_openapi_and_console_routes() {
        assert_eq!(classify("GET", "/admin/tenants").unwrap(), Route::Admin(AdminOp::ListTenants));
        assert_eq!(classify("GET", "/admin/openapi.json").unwrap(), Route::Admin(AdminOp::OpenApi));
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
    fn tenant_writes_are_serialized_and_reads_are_not() {
        let op = |m: &str, p: &str| match classify(m, p).unwrap() {
            Route::Admin(op) => op,
            r => panic!("{r:?}"),
        };
        for (m, p) in [
            ("PUT", "/admin/tenants/acme"),
            ("DELETE", "/admin/tenants/acme"),
            ("POST", "/admin/tenants/acme/keys"),
            ("DELETE", "/admin/tenants/acme/keys/key_1"),
        ] {
            assert_eq!(op(m, p).serialized_tenant(), Some("acme"), "{m} {p}");
        }
        for (m, p) in [
            ("GET", "/admin/tenants/acme"),
            ("GET", "/admin/tenants/acme/keys"),
            ("GET", "/admin/tenants/acme/usage"),
            ("POST", "/admin/tenants/acme/mcp_servers/crm/oauth/connect"),
            ("POST", "/admin/maintenance/reseal"),
        ] {
            assert_eq!(op(m, p).serialized_tenant(), None, "{m} {p}");
        }
    }

    #[test]
    fn user_routes() {
        let user = |m: &str, p: &str| match classify(m, p).unwrap() {
            Route::Admin(AdminOp::User { tenant, user, op }) => (tenant, user, op),
            other => panic!("{other:?}"),
        };
        assert_eq!(user("DELETE", "/admin/tenants/acme/users/u-1"), ("acme".into(), "u-1".into(), UserOp::Delete));
        assert_eq!(
            user("PUT", "/admin/tenants/acme/users/alice@example.com/mcp_servers/gh/credential").2,
            UserOp::PutCredential { server: "gh".into() }
        );
        assert_eq!(
            user("DELETE", "/admin/tenants/acme/users/u:1/mcp_servers/gh/credential").2,
            UserOp::DeleteCredential { server: "gh".into() }
        );
        assert_eq!(
            user("POST", "/admin/tenants/acme/users/u-1/mcp_servers/gh/oauth/connect").2,
            UserOp::OAuth { server: "gh".into(), action: OAuthAction::Connect }
        );
        assert_eq!(
            user("GET", "/admin/tenants/acme/users/u-1/mcp_servers/gh/oauth").2,
            UserOp::OAuth { server: "gh".into(), action: OAuthAction::Status }
        );
        assert_eq!(
            classify("GET", "/admin/tenants/acme/users").unwrap(),
            Route::Admin(AdminOp::ListUsers { tenant: "acme".into() })
        );
        assert_eq!(status("POST", "/admin/tenants/acme/users"), 405);
        assert_eq!(status("GET", "/admin/tenants/acme/users/u-1/mcp_servers/gh/credential"), 405);
        assert_eq!(status("PUT", "/admin/tenants/acme/users/u-1"), 405);
        assert_eq!(status("GET", "/admin/tenants/acme/users/bad%20id"), 400);
        assert_eq!(status("GET", "/admin/tenants/acme/users/u-1/other"), 404);
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
            Route::Relay { tenant: "acme".into(), server: "crm".into(), method: RelayMethod::Post }
        );
        assert!(matches!(classify("GET", "/mcp/acme/crm").unwrap(), Route::Relay { method: RelayMethod::Get, .. }));
        assert!(matches!(classify("DELETE", "/mcp/a/b").unwrap(), Route::Relay { method: RelayMethod::Delete, .. }));
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
