//! Request dispatch, and the provider pipeline as named stages:
//! authenticate (one KV read) → admit (rate limit) → open (secrets) →
//! read (bounded, decoded) → police (rewrite, refuse) → forward → answer
//! (streamed back, scrubbed and metered), with one log line per request.

use worker::{Context, Env, Request, Response};

use super::clock::now_ms;
use super::meter;
use super::upstream::{self, Body, Outbound};
use super::{env, error_response, header_pairs, kv};
use crate::crypto::{ct_eq, sha256_hex, MasterKey, Secret};
use crate::http::auth;
use crate::http::encoding;
use crate::http::error::GatewayError;
use crate::http::headers::{get, upstream_request_headers};
use crate::http::log::RequestLog;
use crate::http::route::{classify, shape_of, Method, Route};
use crate::provider::routes::{Rewrite, Treatment};
use crate::provider::{anthropic, batches, gemini, openai, Provider};
use crate::tenant::storage::{self, GatewayKeyRecord, Opening};
use crate::tenant::{McpAuth, McpPolicy, Tenant, UnknownRoutes};

const DEFAULT_TIMEOUT_MS: u64 = 600_000;
pub(super) const DEFAULT_IDLE_MS: u64 = 300_000;
pub const REQUEST_ID_HEADER: &str = "mcpgate-request-id";

fn new_request_id() -> String {
    let bytes: [u8; 8] = crate::crypto::random_bytes().unwrap_or([0; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn emit(log: &RequestLog, started: u64) {
    let mut log = log.clone();
    log.duration_ms = now_ms().saturating_sub(started);
    worker::console_log!("{}", log.to_line());
}

/// Handles one request; never fails (errors become responses in the route's shape).
pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Response {
    let started = now_ms();
    let path = req.path();
    let shape = shape_of(&path);
    let mut log = RequestLog {
        request_id: new_request_id(),
        method: req.method().to_string(),
        route: "unknown".into(),
        bytes_in: req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        ..RequestLog::default()
    };
    let result = dispatch(req, env, ctx, &path, &mut log, started).await;
    let mut resp = match result {
        Ok(Handled::Logged(resp)) => resp,
        Ok(Handled::Plain(resp)) => {
            log.status = resp.status_code();
            if let worker::ResponseBody::Body(b) = resp.body() {
                log.bytes_out = b.len() as u64;
            }
            emit(&log, started);
            resp
        }
        Err(e) => {
            log.status = e.wire().status;
            log.error_class = Some(e.class());
            let resp = error_response(&e, shape);
            if let worker::ResponseBody::Body(b) = resp.body() {
                log.bytes_out = b.len() as u64;
            }
            emit(&log, started);
            resp
        }
    };
    let _ = resp.headers_mut().set(REQUEST_ID_HEADER, &log.request_id);
    resp
}

pub(super) enum Handled {
    /// The log line is written later (when the guarded stream ends).
    Logged(Response),
    /// Log now.
    Plain(Response),
}

/// A route's handling as its own future behind a pointer: each route's
/// state machine is then a function of its own, which the runtime compiles
/// when that route is first used, instead of one function holding every
/// route that the first request of an isolate must compile whole.
type Routed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Handled, GatewayError>> + 'a>>;

async fn dispatch(
    req: Request,
    env: &Env,
    ctx: &Context,
    path: &str,
    log: &mut RequestLog,
    started: u64,
) -> Result<Handled, GatewayError> {
    route(req, env, ctx, path, log, started)?.await
}

fn route<'a>(
    req: Request,
    env: &'a Env,
    ctx: &'a Context,
    path: &'a str,
    log: &'a mut RequestLog,
    started: u64,
) -> Result<Routed<'a>, GatewayError> {
    Ok(match classify(req.method().as_ref(), path)? {
        Route::Health => {
            log.route = "healthz".into();
            let h = worker::Headers::new();
            let _ = h.set("content-type", "application/json");
            let ok = Response::builder().with_status(200).with_headers(h).fixed(br#"{"status":"ok"}"#.to_vec());
            Box::pin(std::future::ready(Ok(Handled::Plain(ok))))
        }
        Route::Admin(op) => {
            log.route = "admin".into();
            let token = env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            auth::check_admin(&header_pairs(req.headers()), &token)?;
            Box::pin(async move { super::admin::handle(req, env, op).await.map(Handled::Plain) })
        }
        Route::Console(asset) => {
            // The console is part of the admin API: off when ADMIN_TOKEN is unset.
            log.route = "admin.console".into();
            env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            Box::pin(async move { super::console::serve(env, asset).await.map(Handled::Plain) })
        }
        Route::Provider { provider, method, upstream_path, treatment } => {
            log.provider = Some(provider.name());
            log.route = format!("{}.{}", provider.name(), treatment.label());
            let route = ProviderRoute { provider, method, upstream_path, treatment };
            Box::pin(async move { proxy(req, env, ctx, &route, log, started).await })
        }
        Route::OAuthCallback => {
            log.route = "oauth.callback".into();
            Box::pin(async move { super::oauth::callback(&req, env).await.map(Handled::Plain) })
        }
        Route::Relay { tenant, server, method } => {
            log.route = "relay".into();
            log.tenant = Some(tenant.clone());
            Box::pin(async move {
                super::relay::handle(req, env, ctx, &tenant, &server, method, log).await.map(Handled::Plain)
            })
        }
    })
}

pub(super) struct ProviderRoute {
    pub provider: Provider,
    pub method: Method,
    pub upstream_path: String,
    pub treatment: Treatment,
}

/// One provider request on its way through the stages.
pub(super) struct Call<'a> {
    pub env: &'a Env,
    pub req: &'a Request,
    pub route: &'a ProviderRoute,
    pub client_headers: &'a [(String, String)],
    pub record: &'a GatewayKeyRecord,
    /// The user the request acts for (per-user MCP servers).
    pub user: Option<&'a crate::tenant::users::UserId>,
}

/// What goes upstream once the body has been policed.
struct Policed {
    body: Body,
    /// A new `anthropic-beta` value (an MCP connector flag added).
    beta: Option<String>,
    /// Managed servers whose credentials were injected.
    injected: Vec<String>,
    /// Every credential this request could carry or the tenant holds: the
    /// answer is scrubbed of all of them.
    secrets: Vec<Secret>,
    /// Per-user servers left out (their user has no credential, `on_missing: omit`).
    omitted: Vec<String>,
}

async fn proxy(
    req: Request,
    env: &Env,
    ctx: &Context,
    route: &ProviderRoute,
    log: &mut RequestLog,
    started: u64,
) -> Result<Handled, GatewayError> {
    let client_headers = header_pairs(req.headers());
    let record = authenticate(env, &client_headers, route.provider).await?;
    log.tenant = Some(record.tenant_id.clone());
    let user = super::users::request_user(&record, &client_headers)?;
    log.user_hash = user.as_ref().map(crate::tenant::users::UserId::log_hash);
    if !storage::has_provider_key(&record.tenant, route.provider) {
        return Err(GatewayError::NoProviderKey(route.provider));
    }
    if let Some(limit) = record.tenant.rate_limit_rpm {
        meter::admit_request(env, &record.tenant_id, limit).await?;
    }
    let master = env::master_key(env)?;
    let tenant = storage::open_tenant(&master, &record.tenant_id, &record.tenant, Opening::Provider(route.provider))
        .map_err(|_| super::internal("a tenant secret failed to decrypt; check MASTER_KEY"))?;
    let provider_key =
        tenant.provider_key(route.provider).cloned().ok_or(GatewayError::NoProviderKey(route.provider))?;
    let base_url =
        tenant.provider_endpoint(route.provider).map_or_else(|| env::base_url(env, route.provider), str::to_string);
    refuse_unpoliced(route, &tenant)?;
    let body = read(&req, env, route, &client_headers, log).await?;
    let call = Call { env, req: &req, route, client_headers: &client_headers, record: &record, user: user.as_ref() };
    let policed = police(&call, &master, tenant, body).await?;
    log.mcp_servers.clone_from(&policed.injected);

    let raw_url = req.inner().url();
    let query = raw_url.find('?').map_or("", |i| &raw_url[i..]);
    let url = format!("{base_url}{}{query}", route.upstream_path);
    let what = route.provider.label();
    let upstream = upstream::send(Outbound {
        method: req.method().as_ref(),
        url: &url,
        headers: upstream_request_headers(&client_headers, route.provider, &provider_key, policed.beta.as_deref()),
        body: policed.body,
        timeout_ms: env::upstream_timeout_ms(env).unwrap_or(DEFAULT_TIMEOUT_MS),
        what,
    })
    .await?;
    let mut handled = super::answer::answer(&call, ctx, upstream, &policed.secrets, log, started).await?;
    if !policed.omitted.is_empty() {
        let (Handled::Logged(resp) | Handled::Plain(resp)) = &mut handled;
        let _ = resp.headers_mut().set(crate::tenant::users::OMITTED_HEADER, &policed.omitted.join(","));
    }
    Ok(handled)
}

/// The gateway key's record: one KV read yields the tenant's whole config.
async fn authenticate(
    env: &Env,
    client_headers: &[(String, String)],
    provider: Provider,
) -> Result<GatewayKeyRecord, GatewayError> {
    let key = auth::gateway_key_or(client_headers, provider.spec().client_key_header)?;
    let digest = sha256_hex(key.expose().as_bytes());
    let record: GatewayKeyRecord =
        kv::read_json(env, &storage::gateway_key(&digest)).await?.ok_or_else(auth::unknown_key)?;
    if !ct_eq(record.sha256.as_bytes(), digest.as_bytes()) {
        return Err(auth::unknown_key());
    }
    Ok(record)
}

/// Refuses, before any body is read, what the tenant's policy cannot allow.
fn refuse_unpoliced(route: &ProviderRoute, tenant: &Tenant) -> Result<(), GatewayError> {
    match route.treatment {
        Treatment::Realtime if !tenant.mcp.allow_unmanaged => Err(GatewayError::RouteRefused {
            message: "OpenAI Realtime sessions and their keys act at the provider, out of the gateway's sight, so \
                      they could name MCP servers this tenant does not manage; Realtime is refused for tenants that \
                      allow only managed MCP servers."
                .into(),
        }),
        Treatment::Unknown if tenant.unknown_routes == UnknownRoutes::Refuse => Err(GatewayError::RouteRefused {
            message: format!(
                "The gateway does not know {} {} and cannot tell whether its body carries MCP configuration, so it \
                 refuses it. A tenant may set \"unknown_routes\": \"pass\".",
                method_name(route.method),
                route.upstream_path
            ),
        }),
        Treatment::Rewrite(_) | Treatment::Pass | Treatment::Realtime | Treatment::Unknown => Ok(()),
    }
}

const fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Other => "this method on",
    }
}

/// The request body as it will be policed and forwarded: decoded from its
/// `Content-Encoding`, bounded by `MAX_BODY_BYTES`. A plain body on a route
/// that needs no reading streams through untouched.
async fn read(
    req: &Request,
    env: &Env,
    route: &ProviderRoute,
    client_headers: &[(String, String)],
    log: &mut RequestLog,
) -> Result<Body, GatewayError> {
    if !route.method.has_body() {
        return Ok(Body::None);
    }
    let max = env::max_body_bytes(env);
    let codings = encoding::parse(get(client_headers, "content-encoding"))?;
    let declared = get(client_headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) && codings.is_empty() {
        return Err(GatewayError::PayloadTooLarge { limit: max });
    }
    let needs_bytes = matches!(route.treatment, Treatment::Rewrite(_) | Treatment::Realtime);
    if !needs_bytes && codings.is_empty() && declared.is_some() {
        log.bytes_in = declared.unwrap_or(0);
        return Ok(req.inner().body().map_or(Body::None, Body::Stream));
    }
    // Chunked uploads without a length are read up to the limit so an
    // oversized one gets 413, not a cut-off upload.
    let bounded = declared.is_some_and(|n| n <= max);
    let bytes = super::body::read_decoded(req.inner().body(), &codings, max, bounded).await?;
    log.bytes_in = bytes.len() as u64;
    Ok(Body::Bytes(bytes))
}

/// Completes and polices the body for the route; collects what the answer
/// must be scrubbed of.
async fn police(call: &Call<'_>, master: &MasterKey, tenant: Tenant, body: Body) -> Result<Policed, GatewayError> {
    let Call { env, req, route, client_headers, record, user } = *call;
    let mut secrets = static_secrets(&tenant.mcp);
    let unchanged = |body, secrets| Policed { body, beta: None, injected: Vec::new(), secrets, omitted: Vec::new() };
    let bytes = match (route.treatment, body) {
        (Treatment::Rewrite(kind), Body::Bytes(bytes)) => (kind, bytes),
        (Treatment::Realtime, Body::Bytes(bytes)) => {
            batches::check_realtime(get(client_headers, "content-type"), &bytes, &tenant.mcp)?;
            return Ok(unchanged(Body::Bytes(bytes), secrets));
        }
        (_, body) => return Ok(unchanged(body, secrets)),
    };
    let (kind, bytes) = bytes;
    let mut mcp = tenant.mcp;
    // Per-user servers: the user's credential, or left out, or 424 (before
    // the relay swap and OAuth resolution, which then skip them).
    let omitted = super::users::resolve(env, master, record, &tenant.per_user, user, kind, &bytes, &mut mcp).await?;
    let bytes = if omitted.is_empty() { bytes } else { crate::provider::omit::omit_servers(kind, &bytes, &omitted)? };
    // The user's credentials are scrubbed from the answer (relayed ones too).
    for name in tenant.per_user.keys() {
        secrets.extend(mcp.servers.get(name).into_iter().flat_map(|s| credential_values(&s.auth)));
    }
    // Relay-mode servers: the provider gets the relay URL and a capability token
    // (the relay resolves their credentials, OAuth included, when it is used;
    // a per-user server's token binds the user).
    let users = crate::relay::UserBinding { master, per_user: &tenant.per_user, user };
    if let Some(relayed) = super::relay::provider_policy(env, &req.inner().url(), &record.tenant_id, &mcp, users)? {
        mcp = relayed;
    }
    super::oauth::resolve_tokens(env, master, record, kind, &bytes, &mut mcp).await?;
    let beta_header = get(client_headers, "anthropic-beta");
    let (body, beta, injected) = match kind {
        Rewrite::Responses => {
            let r = openai::rewrite_responses_for(&bytes, &mcp, route.provider.spec())?;
            (r.body, None, r.injected)
        }
        Rewrite::Interactions => {
            let r = gemini::rewrite_interactions(&bytes, &mcp)?;
            (r.body, None, r.injected)
        }
        Rewrite::Messages => {
            let r = anthropic::rewrite_messages(&bytes, beta_header, &mcp)?;
            (r.body, r.beta, r.injected)
        }
        Rewrite::MessageBatches => {
            let r = batches::rewrite_message_batches(&bytes, beta_header, &mcp)?;
            (r.body, r.beta, r.injected)
        }
        Rewrite::FileUpload => {
            batches::check_file_upload(get(client_headers, "content-type"), &bytes, &mcp)?;
            (None, None, Vec::new())
        }
        Rewrite::Upload => {
            batches::check_upload(&bytes)?;
            (None, None, Vec::new())
        }
    };
    // What was injected (OAuth access tokens, capability tokens) is scrubbed too.
    for name in &injected {
        if let Some(server) = mcp.servers.get(name) {
            secrets.extend(credential_values(&server.auth));
        }
    }
    Ok(Policed { body: Body::Bytes(body.unwrap_or(bytes)), beta, injected, secrets, omitted })
}

/// The tenant's stored MCP credentials (bearer tokens, header values).
fn static_secrets(mcp: &McpPolicy) -> Vec<Secret> {
    mcp.servers.values().flat_map(|s| credential_values(&s.auth)).collect()
}

fn credential_values(auth: &McpAuth) -> Vec<Secret> {
    match auth {
        McpAuth::None | McpAuth::OAuth2(_) => Vec::new(),
        McpAuth::Bearer(t) => vec![t.clone()],
        McpAuth::Headers(h) => h.iter().map(|(_, v)| v.clone()).collect(),
    }
}
