//! Request dispatch: route → auth → tenant → rewrite → upstream → stream
//! back, with one log line per request.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Env, Request, Response};

use super::meter;
use super::stream::{GuardOptions, SharedMeter};
use super::upstream::{self, Body, Outbound};
use super::{env, error_response, header_pairs, kv};
use crate::crypto::{ct_eq, sha256_hex};
use crate::http::auth;
use crate::http::error::GatewayError;
use crate::http::headers::{client_response_headers, get, upstream_request_headers};
use crate::http::log::RequestLog;
use crate::http::route::{classify, shape_of, Rewrite, Route};
use crate::provider::{anthropic, openai, Provider};
use crate::stream::scrub::Scrubber;
use crate::stream::sse::{error_event, Interruption, SseKind};
use crate::stream::usage::{BodyKind, Usage, UsageMeter};
use crate::tenant::storage::{self, GatewayKeyRecord};
use crate::tenant::McpAuth;

const DEFAULT_TIMEOUT_MS: u64 = 600_000;
const DEFAULT_IDLE_MS: u64 = 300_000;
pub const REQUEST_ID_HEADER: &str = "mcpgate-request-id";

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn new_request_id() -> String {
    let bytes: [u8; 8] = crate::crypto::random_bytes().unwrap_or([0; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn emit(log: &RequestLog, started: f64) {
    let mut log = log.clone();
    log.duration_ms = (now_ms() - started).max(0.0) as u64;
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
        outcome: "completed",
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
    started: f64,
) -> Result<Handled, GatewayError> {
    let method = req.method().to_string();
    match classify(&method, path)? {
        Route::Health => {
            log.route = "healthz".into();
            let h = worker::Headers::new();
            let _ = h.set("content-type", "application/json");
            Ok(Handled::Plain(
                Response::builder().with_status(200).with_headers(h).fixed(br#"{"status":"ok"}"#.to_vec()),
            ))
        }
        Route::Admin { route, method } => {
            log.route = "admin".into();
            let token = env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            auth::check_admin(&header_pairs(req.headers()), &token)?;
            super::admin::handle(req, env, route, method).await.map(Handled::Plain)
        }
        Route::Console(asset) => {
            // The console is part of the admin API: off when ADMIN_TOKEN is unset.
            log.route = "admin.console".into();
            env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            super::console::serve(env, asset).await.map(Handled::Plain)
        }
        Route::Provider { provider, upstream_path, rewrite } => {
            log.provider = Some(provider.name());
            log.route = format!(
                "{}.{}",
                provider.name(),
                match rewrite {
                    Some(Rewrite::Responses) => "responses",
                    Some(Rewrite::Messages) => "messages",
                    None => "passthrough",
                }
            );
            proxy(req, env, ctx, provider, &upstream_path, rewrite, log, started).await
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

fn provider_label(p: Provider) -> &'static str {
    match p {
        Provider::OpenAi => "the OpenAI API",
        Provider::Anthropic => "the Anthropic API",
    }
}

#[allow(clippy::too_many_lines, clippy::too_many_arguments)]
async fn proxy(
    req: Request,
    env: &Env,
    ctx: &Context,
    provider: Provider,
    upstream_path: &str,
    rewrite: Option<Rewrite>,
    log: &mut RequestLog,
    started: f64,
) -> Result<Handled, GatewayError> {
    let client_headers = header_pairs(req.headers());
    let key = auth::gateway_key(&client_headers)?;
    let digest = sha256_hex(key.expose().as_bytes());
    let store = kv::store(env)?;
    let record: GatewayKeyRecord =
        kv::get_json(&store, &storage::gateway_key(&digest)).await?.ok_or_else(auth::unknown_key)?;
    if !ct_eq(record.sha256.as_bytes(), digest.as_bytes()) {
        return Err(auth::unknown_key());
    }
    log.tenant = Some(record.tenant_id.clone());
    if !storage::has_provider_key(&record.tenant, provider) {
        return Err(GatewayError::NoProviderKey(provider));
    }
    if let Some(limit) = record.tenant.rate_limit_rpm {
        meter::admit_request(env, &record.tenant_id, limit).await?;
    }
    let max = env::max_body_bytes(env);
    let declared = get(&client_headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(GatewayError::PayloadTooLarge { limit: max });
    }
    log.bytes_in = declared.unwrap_or(0);

    let master = env::master_key(env)?;
    let mut tenant = storage::open_tenant(
        &master,
        &record.tenant_id,
        &record.tenant,
        provider == Provider::OpenAi,
        provider == Provider::Anthropic,
        rewrite.is_some(),
    )
    .map_err(|_| super::internal("a tenant secret failed to decrypt; check MASTER_KEY"))?;
    // Relay-mode servers: the provider gets the relay URL and a capability token
    // (the relay resolves their credentials, OAuth included, when it is used).
    let mut relayed = match rewrite {
        Some(_) => super::relay::provider_policy(env, &req.inner().url(), &record.tenant_id, &tenant.mcp, &master)?,
        None => None,
    };
    let provider_key = match provider {
        Provider::OpenAi => tenant.openai_key.as_ref(),
        Provider::Anthropic => tenant.anthropic_key.as_ref(),
    }
    .ok_or(GatewayError::NoProviderKey(provider))?;

    let mut beta = None;
    let mut injected = Vec::new();
    let body = match rewrite {
        Some(kind) => {
            let bytes = super::stream::read_limited(req.inner().body(), max).await?;
            log.bytes_in = bytes.len() as u64;
            let mcp = match relayed.as_mut() {
                Some(p) => p,
                None => &mut tenant.mcp,
            };
            super::oauth::resolve_tokens(env, &master, &record, kind, &bytes, mcp).await?;
            let mcp = &*mcp;
            let rewritten = match kind {
                Rewrite::Responses => {
                    let r = openai::rewrite_responses(&bytes, mcp)?;
                    injected = r.injected;
                    r.body
                }
                Rewrite::Messages => {
                    let r = anthropic::rewrite_messages(&bytes, get(&client_headers, "anthropic-beta"), mcp)?;
                    beta = r.beta;
                    injected = r.injected;
                    r.body
                }
            };
            Body::Bytes(rewritten.unwrap_or(bytes))
        }
        None => match req.inner().body() {
            // A declared length was checked above: the body streams through untouched.
            Some(stream)
                if declared.is_some() && !matches!(req.method(), worker::Method::Get | worker::Method::Head) =>
            {
                Body::Stream(stream)
            }
            // Chunked uploads without a length (rare: the SDKs always send one) are
            // read up to the limit so an oversized one gets 413, not a cut-off upload.
            Some(stream) if !matches!(req.method(), worker::Method::Get | worker::Method::Head) => {
                let bytes = super::stream::read_limited(Some(stream), max).await?;
                log.bytes_in = bytes.len() as u64;
                Body::Bytes(bytes)
            }
            _ => Body::None,
        },
    };
    log.mcp_servers.clone_from(&injected);
    let mcp = relayed.as_ref().unwrap_or(&tenant.mcp);

    let raw_url = req.inner().url();
    let query = raw_url.find('?').map_or("", |i| &raw_url[i..]);
    let url = format!("{}{upstream_path}{query}", env::base_url(env, provider));
    let headers = upstream_request_headers(&client_headers, provider, provider_key, beta.as_deref());
    let what = provider_label(provider);
    let upstream = upstream::send(Outbound {
        method: req.method().as_ref(),
        url: &url,
        headers,
        body,
        timeout_ms: env::upstream_timeout_ms(env).unwrap_or(DEFAULT_TIMEOUT_MS),
        what,
    })
    .await?;

    let status = upstream.status_code();
    log.upstream_status = Some(status);
    log.status = status;
    let up_headers = header_pairs(upstream.headers());
    let out_headers = client_response_headers(&up_headers);
    let sse = SseKind::of(provider, upstream_path, get(&up_headers, "content-type"));
    let secrets: Vec<&str> = injected
        .iter()
        .filter_map(|name| mcp.servers.get(name))
        .flat_map(|s| match &s.auth {
            McpAuth::None | McpAuth::OAuth2(_) => Vec::new(),
            McpAuth::Bearer(t) => vec![t.expose()],
            McpAuth::Headers(h) => h.iter().map(|(_, v)| v.expose()).collect(),
        })
        .collect();
    let scrubber = Scrubber::new(secrets);
    let (_, body) = upstream.into_parts();
    let metered = (200..300).contains(&status) && is_metered(provider, req.method(), upstream_path);
    let tenant_id = record.tenant_id.clone();

    if sse.is_none() && scrubber.is_none() && !metered {
        log.bytes_out = get(&up_headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        meter::add(ctx, env, &tenant_id, &Usage { requests: 1, ..Usage::default() });
        return Ok(Handled::Plain(upstream::respond(status, &out_headers, body, None)));
    }
    let idle_ms = env::stream_idle_ms(env).unwrap_or(DEFAULT_IDLE_MS);
    // Unwatched by SSE framing (scrub or meter only): the kind is unused but must be valid.
    let kind = sse.unwrap_or(match provider {
        Provider::Anthropic => SseKind::Anthropic,
        Provider::OpenAi => SseKind::OpenAiData,
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
        reset_event: error_event(kind, what, Interruption::Reset),
        stall_event: error_event(kind, what, Interruption::Stalled { idle_ms }),
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
            l.outcome = match outcome.as_str() {
                "client_cancelled" => "client_cancelled",
                "upstream_reset" => "upstream_reset",
                "upstream_stalled" => "upstream_stalled",
                _ => "completed",
            };
            if l.outcome.starts_with("upstream") {
                l.error_class = Some("upstream_stream_interrupted");
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
            meter::add(&ctx_done, &env_done, &tenant_id, &usage);
        }),
    };
    Ok(Handled::Logged(upstream::respond(status, &out_headers, body, Some((opts, ctx)))))
}

/// Answers whose usage the provider reports in the body.
fn is_metered(provider: Provider, method: worker::Method, path: &str) -> bool {
    method == worker::Method::Post
        && match provider {
            Provider::OpenAi => path == "/v1/responses" || path == "/v1/chat/completions",
            Provider::Anthropic => path == "/v1/messages",
        }
}
