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
mod tests;
