//! Request dispatch: route → auth → tenant → rewrite → upstream.

use worker::{Context, Env, Request, Response};

use super::upstream::{self, Body, Outbound};
use super::{env, header_pairs, kv};
use crate::auth;
use crate::crypto::{ct_eq, sha256_hex};
use crate::error::GatewayError;
use crate::headers::{get, upstream_request_headers};
use crate::kv_schema::{self, GatewayKeyRecord};
use crate::providers::{anthropic, openai, Provider};
use crate::route::{classify, Rewrite, Route};

const DEFAULT_TIMEOUT_MS: u64 = 600_000;

pub async fn handle(req: Request, env: &Env, _ctx: &Context) -> Result<Response, GatewayError> {
    let method = req.method().to_string();
    let path = req.path();
    match classify(&method, &path)? {
        Route::Health => {
            let h = worker::Headers::new();
            let _ = h.set("content-type", "application/json");
            Ok(Response::builder()
                .with_status(200)
                .with_headers(h)
                .fixed(br#"{"status":"ok"}"#.to_vec()))
        }
        Route::Admin { route, method } => {
            let token = env::admin_token(env).ok_or_else(GatewayError::not_found)?;
            auth::check_admin(&header_pairs(req.headers()), &token)?;
            super::admin::handle(req, env, route, method).await
        }
        Route::Provider {
            provider,
            upstream_path,
            rewrite,
        } => proxy(req, env, provider, &upstream_path, rewrite).await,
    }
}

fn provider_label(p: Provider) -> &'static str {
    match p {
        Provider::OpenAi => "the OpenAI API",
        Provider::Anthropic => "the Anthropic API",
    }
}

async fn proxy(
    mut req: Request,
    env: &Env,
    provider: Provider,
    upstream_path: &str,
    rewrite: Option<Rewrite>,
) -> Result<Response, GatewayError> {
    let client_headers = header_pairs(req.headers());
    let key = auth::gateway_key(&client_headers)?;
    let digest = sha256_hex(key.expose().as_bytes());
    let store = kv::store(env)?;
    let record: GatewayKeyRecord = kv::get_json(&store, &kv_schema::gateway_key(&digest))
        .await?
        .ok_or_else(auth::unknown_key)?;
    if !ct_eq(record.sha256.as_bytes(), digest.as_bytes()) {
        return Err(auth::unknown_key());
    }
    if !kv_schema::has_provider_key(&record.tenant, provider) {
        return Err(GatewayError::NoProviderKey(provider));
    }
    let max = env::max_body_bytes(env);
    if get(&client_headers, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > max)
    {
        return Err(GatewayError::PayloadTooLarge { limit: max });
    }

    let master = env::master_key(env)?;
    let tenant = kv_schema::open_tenant(
        &master,
        &record.tenant_id,
        &record.tenant,
        provider == Provider::OpenAi,
        provider == Provider::Anthropic,
        rewrite.is_some(),
    )
    .map_err(|_| super::internal("a tenant secret failed to decrypt; check MASTER_KEY"))?;
    let provider_key = match provider {
        Provider::OpenAi => tenant.openai_key.as_ref(),
        Provider::Anthropic => tenant.anthropic_key.as_ref(),
    }
    .ok_or(GatewayError::NoProviderKey(provider))?;

    let mut beta = None;
    let body = match rewrite {
        Some(kind) => {
            let bytes = req
                .bytes()
                .await
                .map_err(|_| GatewayError::bad_request("Could not read the request body."))?;
            if bytes.len() as u64 > max {
                return Err(GatewayError::PayloadTooLarge { limit: max });
            }
            let rewritten = match kind {
                Rewrite::Responses => openai::rewrite_responses(&bytes, &tenant.mcp)?.body,
                Rewrite::Messages => {
                    let r = anthropic::rewrite_messages(
                        &bytes,
                        get(&client_headers, "anthropic-beta"),
                        &tenant.mcp,
                    )?;
                    beta = r.beta;
                    r.body
                }
            };
            Body::Bytes(rewritten.unwrap_or(bytes))
        }
        None => match req.inner().body() {
            Some(stream) if method_has_body(&req) => Body::Stream(stream),
            _ => Body::None,
        },
    };

    let raw_url = req.inner().url();
    let query = raw_url.find('?').map_or("", |i| &raw_url[i..]);
    let url = format!("{}{upstream_path}{query}", env::base_url(env, provider));
    let headers =
        upstream_request_headers(&client_headers, provider, provider_key, beta.as_deref());
    upstream::send(Outbound {
        method: req.method().as_ref(),
        url: &url,
        headers,
        body,
        timeout_ms: env::upstream_timeout_ms(env).unwrap_or(DEFAULT_TIMEOUT_MS),
        what: provider_label(provider),
    })
    .await
}

fn method_has_body(req: &Request) -> bool {
    !matches!(req.method(), worker::Method::Get | worker::Method::Head)
}
