//! Request dispatch, and the provider pipeline as named stages:
//! authenticate (one KV read) → admit (rate limit) → open (secrets) →
//! read (bounded, decoded) → police (rewrite, refuse) → forward → answer
//! (streamed back, scrubbed and metered), with one log line per request.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Env, Request, Response};

use super::clock::now_ms;
use super::meter;
use super::stream::{GuardOptions, SharedMeter};
use super::upstream::{self, Body, Outbound};
use super::{env, error_response, header_pairs, kv};
use crate::crypto::{ct_eq, sha256_hex, MasterKey, Secret};
use crate::http::auth;
use crate::http::encoding;
use crate::http::error::GatewayError;
use crate::http::headers::{client_response_headers, get, upstream_request_headers};
use crate::http::log::{Outcome, RequestLog};
use crate::http::route::{classify, shape_of, Method, Route};
use crate::provider::routes::{reports_usage, Rewrite, Treatment};
use crate::provider::{anthropic, batches, gemini, openai, Provider};
use crate::stream::scrub::Scrubber;
use crate::stream::sse::{error_event, Interruption, SseKind};
use crate::stream::usage::{BodyKind, Usage, UsageMeter};
use crate::tenant::storage::{self, GatewayKeyRecord, Opening};
use crate::tenant::{McpAuth, McpPolicy, Tenant, UnknownRoutes};

const DEFAULT_TIMEOUT_MS: u64 = 600_000;
const DEFAULT_IDLE_MS: u64 = 300_000;
pub const REQUEST_ID_HEADER: &str = "mcpgate-request-id";

fn new_request_id() -> String {
    let bytes: [u8; 8] = crate::crypto::random_bytes().unwrap_or([0; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn emit(log: &RequestLog, started: u64) {
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

enum Handled {
    /// The log line is written later (when the guarded stream ends).
    Logged(Response),
    /// Log now.
    Plain(Response),
}

async fn dispatch(
    req: Request,
    env: &Env,
    ctx: &Context,
    path: &str,
    log: &mut RequestLog,
    started: u64,
) -> Result<Handled, GatewayError> {
    match classify(req.method().as_ref(), path)? {
        Route::Health => {
            log.route = "healthz".into();
            let h = worker::Headers::new();
            let _ = h.set("content-type", "application/json");
            Ok(Handled::Plain(
                Response::builder().with_status(200).with_headers(h).fixed(br#"{"status":"ok"}"#.to_vec()),
            ))
        }
        Route::Admin(op) => {
            log.route = "admin".into();
            let token = env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            auth::check_admin(&header_pairs(req.headers()), &token)?;
            super::admin::handle(req, env, op).await.map(Handled::Plain)
        }
        Route::Console(asset) => {
            // The console is part of the admin API: off when ADMIN_TOKEN is unset.
            log.route = "admin.console".into();
            env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            super::console::serve(env, asset).await.map(Handled::Plain)
        }
        Route::Provider { provider, method, upstream_path, treatment } => {
            log.provider = Some(provider.name());
            log.route = format!("{}.{}", provider.name(), treatment.label());
            let route = ProviderRoute { provider, method, upstream_path, treatment };
            proxy(req, env, ctx, &route, log, started).await
        }
        Route::OAuthCallback => {
            log.route = "oauth.callback".into();
            super::oauth::callback(&req, env).await.map(Handled::Plain)
        }
        Route::Relay { tenant, server, method } => {
            log.route = "relay".into();
            log.tenant = Some(tenant.clone());
            super::relay::handle(req, env, ctx, &tenant, &server, method, log).await.map(Handled::Plain)
        }
    }
}

struct ProviderRoute {
    provider: Provider,
    method: Method,
    upstream_path: String,
    treatment: Treatment,
}

/// One provider request on its way through the stages.
struct Call<'a> {
    env: &'a Env,
    req: &'a Request,
    route: &'a ProviderRoute,
    client_headers: &'a [(String, String)],
    record: &'a GatewayKeyRecord,
    /// The user the request acts for (per-user MCP servers).
    user: Option<&'a crate::tenant::users::UserId>,
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
    let mut handled = answer(&call, ctx, upstream, &policed.secrets, log, started).await?;
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
    let bytes = super::body::read_decoded(req.inner().body(), &codings, max).await?;
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

/// A JSON answer up to this size, with its length declared, is read whole
/// and scrubbed and metered in one pass instead of streamed through the guard.
const BUFFERED_JSON_MAX: u64 = 4 * 1024 * 1024;

/// Streams the provider's answer back: untouched when nothing must watch it,
/// read whole when it is a JSON answer of known, bounded length, otherwise
/// through the guard (SSE error events, scrubbing, metering).
async fn answer(
    call: &Call<'_>,
    ctx: &Context,
    upstream: Response,
    secrets: &[Secret],
    log: &mut RequestLog,
    started: u64,
) -> Result<Handled, GatewayError> {
    let Call { env, req, route, record, user, .. } = *call;
    // Usage counts for the user the request acted for, too.
    let user_hash = user.map(crate::tenant::users::UserId::hash);
    let status = upstream.status_code();
    log.upstream_status = Some(status);
    log.status = status;
    let up_headers = header_pairs(upstream.headers());
    let out_headers = client_response_headers(&up_headers);
    let sse = SseKind::of(route.provider, &route.upstream_path, get(&up_headers, "content-type"));
    let scrubber = Scrubber::for_body(secrets.iter().map(Secret::expose), sse);
    let out_headers = match &scrubber {
        Some(s) => s.scrub_headers(&out_headers),
        None => out_headers,
    };
    let metered = (200..300).contains(&status) && reports_usage(route.provider, route.method, &route.upstream_path);
    let tenant_id = record.tenant_id.clone();
    let declared = get(&up_headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if sse.is_none() && (scrubber.is_some() || metered) && declared.is_some_and(|n| n <= BUFFERED_JSON_MAX) {
        let idle_ms = env::stream_idle_ms(env).unwrap_or(DEFAULT_IDLE_MS);
        let read = upstream::read_whole(upstream, BUFFERED_JSON_MAX, idle_ms).await;
        let (bytes, outcome) = match read {
            Ok(bytes) => (bytes, Outcome::Completed),
            Err(outcome) => {
                log.outcome = outcome;
                return Err(GatewayError::UpstreamUnreachable { what: route.provider.label().to_string() });
            }
        };
        let usage = if metered {
            let mut m = UsageMeter::new(BodyKind::Json);
            m.push(&bytes);
            m.finish()
        } else {
            Usage { requests: 1, ..Usage::default() }
        };
        let body = match scrubber {
            Some(mut s) => {
                let mut out = s.push(&bytes);
                out.extend(s.finish());
                out
            }
            None => bytes,
        };
        log.outcome = outcome;
        log.bytes_out = body.len() as u64;
        if metered {
            log.input_tokens = Some(usage.input_tokens);
            log.output_tokens = Some(usage.output_tokens);
            log.mcp_tool_calls = Some(usage.mcp_calls.values().sum());
        }
        emit(log, started);
        meter::add(ctx, env, &tenant_id, user_hash.as_deref(), &usage);
        // The body's length is set by the runtime (scrubbing may change it).
        let headers: Vec<_> = out_headers.into_iter().filter(|(n, _)| n != "content-length").collect();
        return Ok(Handled::Logged(upstream::respond(status, &headers, worker::ResponseBody::Body(body), None)));
    }
    let (_, body) = upstream.into_parts();

    if sse.is_none() && scrubber.is_none() && !metered {
        log.bytes_out = get(&up_headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        meter::add(ctx, env, &tenant_id, user_hash.as_deref(), &Usage { requests: 1, ..Usage::default() });
        return Ok(Handled::Plain(upstream::respond(status, &out_headers, body, None)));
    }
    let idle_ms = env::stream_idle_ms(env).unwrap_or(DEFAULT_IDLE_MS);
    let what = route.provider.label();
    // Only an event stream ends with an error event; a JSON answer never sends one.
    let (reset_event, stall_event) = sse.map_or_else(Default::default, |kind| {
        (error_event(kind, what, Interruption::Reset), error_event(kind, what, Interruption::Stalled { idle_ms }))
    });
    let body_kind = if sse.is_some() { BodyKind::Sse } else { BodyKind::Json };
    let usage_meter: Option<SharedMeter> = metered.then(|| Rc::new(RefCell::new(Some(UsageMeter::new(body_kind)))));
    let meter_for_done = usage_meter.clone();
    let log_cell = RefCell::new(log.clone());
    let js_ctx: &worker::worker_sys::Context = ctx.as_ref();
    let js_ctx: &wasm_bindgen::JsValue = js_ctx.as_ref();
    let ctx_done = Context::new(wasm_bindgen::JsCast::unchecked_into(js_ctx.clone()));
    let env_done = env.clone();
    let opts = GuardOptions {
        sse: sse.is_some(),
        idle_ms,
        reset_event,
        stall_event,
        scrubber,
        meter: usage_meter,
        client_signal: js_sys::Reflect::get(req.inner(), &wasm_bindgen::JsValue::from_str("signal"))
            .unwrap_or_default(),
        done: Box::new(move |outcome: String, bytes_out: f64| {
            let mut l = log_cell.borrow_mut();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                l.bytes_out = bytes_out as u64;
            }
            l.outcome = Outcome::from_guard(&outcome);
            if let Some(class) = l.outcome.error_class() {
                l.error_class = Some(class);
            }
            let usage = meter_for_done
                .and_then(|m| m.borrow_mut().take())
                .map_or_else(|| Usage { requests: 1, ..Usage::default() }, UsageMeter::finish);
            if metered {
                l.input_tokens = Some(usage.input_tokens);
                l.output_tokens = Some(usage.output_tokens);
                l.mcp_tool_calls = Some(usage.mcp_calls.values().sum());
            }
            emit(&l, started);
            meter::add(&ctx_done, &env_done, &tenant_id, user_hash.as_deref(), &usage);
        }),
    };
    Ok(Handled::Logged(upstream::respond(status, &out_headers, body, Some((opts, ctx)))))
}
