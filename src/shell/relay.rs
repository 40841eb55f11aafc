//! The MCP relay's I/O (README: "MCP relay"): the `/mcp/{tenant}/{server}`
//! endpoint, and the minting of capability tokens on the provider path.
//! Decisions live in `crate::relay`; this file reads, fetches and streams.
//!
//! Order at the endpoint: token (no KV read for a bad one) → tenant record
//! (one KV read) → policy check of the POST body → the MCP server, by URL or
//! through a service binding → its answer, streamed back (SSE filtered
//! event by event when tools are restricted). Never logs a token or credential.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::ReadableStream;
use worker::{Context, Env, Request, RequestInit, RequestRedirect, Response, ResponseBody, ResponseBuilder};

use super::upstream::{self, Via};
use super::{env, header_pairs, kv, meter};
use crate::http::error::GatewayError;
use crate::http::headers::get;
use crate::http::log::{RelayLog, RequestLog};
use crate::http::route::RelayMethod;
use crate::relay::filter::{
    filter_json_body, filter_sse_event, refusal, refusal_events, AnswerKind, Filtered, MAX_ANSWER_BYTES,
};
use crate::relay::headers::{capability_token, credential_headers, downstream_headers, upstream_headers};
use crate::relay::policy::{inspect_post, PostDecision, ToolPolicy};
use crate::relay::token::{TokenError, TokenKey};
use crate::relay::{relay_policy, Minter, UserBinding};
use crate::stream::usage::Usage;
use crate::tenant::storage::{self, TenantRecord};
use crate::tenant::{McpAuth, McpMode, McpPolicy};

const DEFAULT_TIMEOUT_MS: u64 = 600_000;

#[wasm_bindgen(module = "/src/shell/js/relay_filter.js")]
extern "C" {
    #[wasm_bindgen(js_name = filterSse)]
    fn filter_sse(body: &ReadableStream, filter: JsValue, max_event: f64) -> ReadableStream;
}

/// The tool filter as a JS object for `relay_filter.js`; one SSE event in,
/// the filtered event out (`undefined` when unchanged). Once it refuses an
/// event, `refused` is set and its answer is the error events that end the stream.
#[wasm_bindgen]
pub struct SseToolFilter {
    policy: ToolPolicy,
    ids: Vec<serde_json::Value>,
    server: String,
    refused: bool,
}

#[wasm_bindgen]
impl SseToolFilter {
    pub fn event(&mut self, event: &[u8]) -> Option<Vec<u8>> {
        match filter_sse_event(event, &self.policy) {
            Filtered::Unchanged => None,
            Filtered::Rewritten(b) => Some(b),
            Filtered::Refused => Some(self.refuse()),
        }
    }

    /// The error events that end a refused stream.
    pub fn refuse(&mut self) -> Vec<u8> {
        self.refused = true;
        refusal_events(&self.ids, &self.server)
    }

    #[wasm_bindgen(getter)]
    pub fn refused(&self) -> bool {
        self.refused
    }
}

use super::clock::now_secs;

/// The provider path's policy with relay servers pointed at the relay and
/// given fresh capability tokens (bound to `users.user` for per-user
/// servers); `None` when the tenant relays nothing.
pub fn provider_policy(
    env: &Env,
    request_url: &str,
    tenant_id: &str,
    policy: &McpPolicy,
    users: UserBinding<'_>,
) -> Result<Option<McpPolicy>, GatewayError> {
    if !policy.servers.values().any(|s| s.mode == McpMode::Relay) {
        return Ok(None);
    }
    let base = env::public_base(env, request_url)?;
    let key = TokenKey::from_master(users.master);
    let ttl = env::relay_ttl_secs(env);
    let minter = Minter { key: &key, tenant: tenant_id, base_url: &base, now: now_secs(), ttl, users };
    relay_policy(policy, &minter, &mut || crate::crypto::random_bytes::<16>().ok()).map_err(|e| match e {
        GatewayError::Internal { .. } => super::internal("random source failed"),
        other => other,
    })
}

fn not_relayed(server: &str) -> GatewayError {
    GatewayError::NotFound { message: format!("MCP server '{server}' is not relayed by this gateway.") }
}

fn json_answer(status: u16, body: Vec<u8>) -> Response {
    build(status, &[("content-type".to_string(), "application/json".to_string())]).fixed(body)
}

/// Handles `/mcp/{tenant}/{server}`. Forwarded `tools/call`s are counted in
/// the tenant's usage (`relay_calls`, per server); relay requests are not
/// subject to the tenant's provider rate limit (they are the provider's
/// calls on behalf of a request that was already admitted).
pub async fn handle(
    req: Request,
    env: &Env,
    ctx: &Context,
    tenant: &str,
    server: &str,
    method: RelayMethod,
    log: &mut RequestLog,
) -> Result<Response, GatewayError> {
    let client = header_pairs(req.headers());
    let mut rlog = RelayLog { server: server.to_string(), decision: "token_rejected", ..RelayLog::default() };
    log.mcp_servers = vec![server.to_string()];

    let master = env::master_key(env)?;
    let verified = TokenKey::from_master(&master).verify(capability_token(&client), tenant, server, now_secs());
    let cap = match verified {
        Ok(cap) => cap,
        Err(e) => {
            rlog.token_error = Some(e.class());
            log.relay = Some(rlog);
            return Err(GatewayError::InvalidCapability { message: e.message(), missing: e == TokenError::Missing });
        }
    };
    rlog.token_id = Some(cap.id.clone());
    rlog.decision = "forwarded";
    log.relay = Some(rlog.clone());

    let store = kv::store(env)?;
    let record: TenantRecord =
        kv::get_json(&store, &storage::tenant_key(tenant)).await?.ok_or_else(|| not_relayed(server))?;
    let stored = record.tenant.mcp_servers.get(server).filter(|s| s.mode() == McpMode::Relay);
    let stored = stored.ok_or_else(|| not_relayed(server))?;
    // A per-user server's token names its user; nothing else can be fetched with it.
    let user = match crate::relay::user::bound_user(&master, &cap, stored.per_user.is_some()) {
        Ok(u) => u,
        Err(e) => {
            let mut rlog = rlog;
            rlog.decision = "token_rejected";
            rlog.token_error = Some(e.class());
            log.relay = Some(rlog);
            return Err(GatewayError::InvalidCapability { message: e.message(), missing: false });
        }
    };
    log.user_hash = user.as_ref().map(|h| h[..16].to_string());
    let mut target = storage::open_server(&master, tenant, server, stored)
        .map_err(|_| super::internal("an MCP credential failed to decrypt; check MASTER_KEY"))?;
    match (&user, stored.per_user) {
        (Some(hash), Some(per_user)) => {
            target.auth = super::users::relay_credential(env, &master, tenant, &record, server, per_user, hash).await?;
        }
        _ => {
            if let McpAuth::OAuth2(_) = target.auth {
                // A fresh access token; 424/502 (JSON-RPC shaped) when it cannot be had.
                let token = super::oauth::access_token(env, &master, tenant, &record.tenant, server).await?;
                target.auth = token.map_or(McpAuth::None, McpAuth::Bearer);
            }
        }
    }
    let policy = ToolPolicy::new(cap.tools.as_deref(), target.allowed_tools.as_deref());

    let mut lists_tools = false;
    let mut tool_calls = 0;
    let mut request_ids = Vec::new();
    let mut batch = false;
    let body = if method == RelayMethod::Post {
        let max = env::max_body_bytes(env);
        if get(&client, "content-length").and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > max) {
            return Err(GatewayError::PayloadTooLarge { limit: max });
        }
        let bytes = super::stream::read_limited(req.inner().body(), max).await?;
        log.bytes_in = bytes.len() as u64;
        let decision = inspect_post(&bytes, get(&client, "mcp-method"), get(&client, "mcp-name"), &policy, server);
        match decision {
            PostDecision::Forward(summary) => {
                lists_tools = summary.lists_tools;
                tool_calls = summary.tool_calls;
                batch = summary.method.as_deref() == Some("batch");
                request_ids.clone_from(&summary.request_ids);
                rlog.mcp_method = summary.method;
                rlog.tool = summary.tool;
                log.relay = Some(rlog.clone());
                Some(bytes)
            }
            PostDecision::Answer { status, body, summary, reason } => {
                rlog.mcp_method = summary.method;
                rlog.tool = summary.tool;
                rlog.decision = reason;
                log.relay = Some(rlog);
                log.bytes_out = body.len() as u64;
                return Ok(json_answer(status, body));
            }
        }
    } else {
        None
    };

    let what = format!("MCP server '{server}'");
    let headers = upstream_headers(&client, credential_headers(&target.auth));
    let timeout_ms = env::upstream_timeout_ms(env).unwrap_or(DEFAULT_TIMEOUT_MS);
    let upstream = send(env, &target.url, target.service.as_deref(), method, headers, body, timeout_ms, &what).await?;

    let status = upstream.status_code();
    log.upstream_status = Some(status);
    if tool_calls > 0 {
        let usage = Usage { relay_calls: [(server.to_string(), tool_calls)].into(), ..Usage::default() };
        meter::add(ctx, env, tenant, user.as_deref(), &usage);
    }
    if matches!(status, 401 | 403) {
        log.error_class = Some("mcp_server_rejected_credential");
    }
    let up_headers = header_pairs(upstream.headers());
    let out_headers = downstream_headers(&up_headers);
    let content_type = get(&up_headers, "content-type").unwrap_or("").trim_start().to_ascii_lowercase();
    let restricted = policy.is_restricted();
    let kind = AnswerKind::of(status, &content_type);
    let (_, body) = upstream.into_parts();
    if restricted && lists_tools && matches!(kind, AnswerKind::Json | AnswerKind::Unexpected) {
        // Read while bounded: a hostile server's endless answer is cut off at the limit.
        let bytes = match (kind, body) {
            (AnswerKind::Unexpected, _) => None,
            (_, ResponseBody::Stream(s)) => super::stream::read_limited(Some(s), MAX_ANSWER_BYTES as u64).await.ok(),
            (_, ResponseBody::Body(b)) => Some(b),
            (_, ResponseBody::Empty) => Some(Vec::new()),
        };
        let filtered = bytes.as_deref().map_or(Filtered::Refused, |b| filter_json_body(b, &policy));
        let (status, headers, out) = match filtered {
            Filtered::Unchanged => (status, out_headers, bytes.unwrap_or_default()),
            Filtered::Rewritten(b) => (status, out_headers, b),
            Filtered::Refused => {
                log.error_class = Some("mcp_answer_refused");
                let json = vec![("content-type".to_string(), "application/json".to_string())];
                (200, json, refusal(&request_ids, batch, server))
            }
        };
        log.bytes_out = out.len() as u64;
        return Ok(build(status, &headers).fixed(out));
    }
    Ok(match body {
        ResponseBody::Stream(s) if restricted && kind == AnswerKind::EventStream => {
            let filter = SseToolFilter { policy, ids: request_ids, server: server.to_string(), refused: false };
            #[allow(clippy::cast_precision_loss)]
            let max = MAX_ANSWER_BYTES as f64;
            build(status, &out_headers).stream(filter_sse(&s, JsValue::from(filter), max))
        }
        ResponseBody::Stream(s) => build(status, &out_headers).stream(s),
        ResponseBody::Body(b) => build(status, &out_headers).fixed(b),
        ResponseBody::Empty => build(status, &out_headers).empty(),
    })
}

fn build(status: u16, headers: &[(String, String)]) -> ResponseBuilder {
    ResponseBuilder::new().with_status(status).with_headers(super::new_headers(headers).unwrap_or_default())
}

/// Sends the request to the MCP server, by URL or through a service binding;
/// 502 if it cannot be reached, 504 if it sends no headers in time.
#[allow(clippy::too_many_arguments)]
async fn send(
    env: &Env,
    url: &str,
    service: Option<&str>,
    method: RelayMethod,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: u64,
    what: &str,
) -> Result<Response, GatewayError> {
    let verb = match method {
        RelayMethod::Post => worker::Method::Post,
        RelayMethod::Delete => worker::Method::Delete,
        RelayMethod::Get => worker::Method::Get,
    };
    let mut init = RequestInit::new();
    init.with_method(verb).with_headers(super::upstream::to_headers(&headers)?).with_redirect(RequestRedirect::Manual);
    if let Some(b) = body {
        init.with_body(Some(JsValue::from(js_sys::Uint8Array::from(b.as_slice()))));
    }
    let request =
        Request::new_with_init(url, &init).map_err(|_| super::internal("building the MCP server request failed"))?;
    match service {
        Some(binding) => {
            let fetcher =
                env.service(binding).map_err(|_| super::internal("an MCP server's service binding is missing"))?;
            upstream::fetch(&request, Via::Service(&fetcher), timeout_ms, what).await
        }
        None => upstream::fetch(&request, Via::Internet, timeout_ms, what).await,
    }
}
