//! `TenantWriter`: the Durable Object that serializes every write of one
//! tenant (binding `TENANT_WRITER`, one object per tenant id).
//!
//! KV has no compare-and-swap, and a tenant write is a read-modify-write of
//! the tenant record plus a rewrite of every `gk:` copy of it. Two writers
//! racing (a key creation and a `PUT`, say) could drop a new key from the
//! tenant record while its `gk:` record lives on: unlisted, unrevocable,
//! surviving tenant deletion. So `PUT`/`DELETE /admin/tenants/{id}`, key
//! creation and revocation, and the re-seal pass are forwarded here and run
//! one at a time inside `blockConcurrencyWhile`; the object is the only
//! writer of the tenant's records. Reads (the request path, admin GETs) go
//! to KV directly and are unaffected.
//!
//! The object keeps no storage of its own: KV stays the source of truth, and
//! the object reads the record afresh for every write, from the same
//! location as its own earlier writes (KV is read-your-writes there).

use worker::{durable_object, DurableObject, Env, Request, RequestInit, Response, State};

use crate::http::error::{GatewayError, Shape};
use crate::http::route::{classify, query_param, Route};

/// Durable Object namespace of tenant writers.
pub const WRITER_BINDING: &str = "TENANT_WRITER";
/// The object's own path for a re-seal pass (not routable from outside:
/// only the worker reaches the object, through its binding).
const RESEAL_PATH: &str = "/reseal";

#[durable_object(fetch)]
pub struct TenantWriter {
    state: State,
    env: Env,
}

impl DurableObject for TenantWriter {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let env = self.env.clone();
        let out = self.state.block_concurrency_while(async move { Ok(serve(req, env).await) }).await;
        Ok(out.unwrap_or_else(|_| {
            super::error_response(&super::internal("a tenant write was interrupted"), Shape::OpenAi)
        }))
    }
}

/// One serialized write: an admin write forwarded as is, or a re-seal pass.
async fn serve(req: Request, env: Env) -> Response {
    let url = req.inner().url();
    let path = req.path();
    let result = if path == RESEAL_PATH {
        reseal_here(&env, &url).await
    } else {
        match classify(&req.inner().method(), &path) {
            Ok(Route::Admin(op)) if op.serialized_tenant().is_some() => super::admin::apply(req, &env, op).await,
            Ok(_) => Err(super::internal("the tenant writer got a request that is not an admin write")),
            Err(e) => Err(e),
        }
    };
    result.unwrap_or_else(|e| super::error_response(&e, Shape::OpenAi))
}

async fn reseal_here(env: &Env, url: &str) -> Result<Response, GatewayError> {
    let tenant = query_param(url, "tenant").ok_or_else(|| super::internal("re-seal call without a tenant"))?;
    let write = query_param(url, "write").as_deref() == Some("1");
    let master = super::env::master_key(env)?;
    let report = super::maintenance::reseal_tenant_records(env, &master, &tenant, write).await?;
    let body = serde_json::to_vec(&report).map_err(|_| super::internal("encoding a re-seal report failed"))?;
    Ok(Response::builder().with_status(200).fixed(body))
}

fn stub(env: &Env, tenant: &str) -> Result<worker::Stub, GatewayError> {
    env.durable_object(WRITER_BINDING)
        .and_then(|ns| ns.id_from_name(tenant)?.get_stub())
        .map_err(|_| super::internal("Durable Object binding TENANT_WRITER is missing"))
}

/// Hands an admin write to the tenant's writer. Its answer is rebuilt here
/// (a fetched response's headers are immutable) and a failure becomes the
/// `GatewayError` it was, so it is answered and logged like any other.
pub async fn forward(req: Request, env: &Env, tenant: &str) -> Result<Response, GatewayError> {
    // A declared oversize body is refused here, before any of it is sent on.
    let limit = super::admin::MAX_ADMIN_BODY as u64;
    if let Ok(Some(len)) = req.headers().get("content-length") {
        if len.trim().parse::<u64>().is_ok_and(|n| n > limit) {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
    }
    let mut resp =
        stub(env, tenant)?.fetch_with_request(req).await.map_err(|_| super::internal("the tenant writer failed"))?;
    let status = resp.status_code();
    let body = resp.bytes().await.map_err(|_| super::internal("the tenant writer's answer could not be read"))?;
    if let Some(e) = crate::http::forwarded::error_of_answer(status, &body, limit) {
        return Err(e);
    }
    let headers = worker::Headers::new();
    if let Ok(Some(ct)) = resp.headers().get("content-type") {
        let _ = headers.set("content-type", &ct);
    }
    let out = Response::builder().with_status(status).with_headers(headers);
    Ok(if body.is_empty() { out.empty() } else { out.fixed(body) })
}

/// Runs a re-seal pass of one tenant in its writer (so it cannot race an admin write).
pub async fn reseal(env: &Env, tenant: &str, write: bool) -> Result<super::maintenance::TenantReport, GatewayError> {
    let mut init = RequestInit::new();
    init.with_method(if write { worker::Method::Post } else { worker::Method::Get });
    let url = format!("https://tenant-writer.internal{RESEAL_PATH}?tenant={tenant}&write={}", u8::from(write));
    let req = Request::new_with_init(&url, &init).map_err(|_| super::internal("building a re-seal call failed"))?;
    let mut resp =
        stub(env, tenant)?.fetch_with_request(req).await.map_err(|_| super::internal("the tenant writer failed"))?;
    let text = resp.text().await.map_err(|_| super::internal("the tenant writer answered garbage"))?;
    if resp.status_code() != 200 {
        // The writer's error body is our own JSON error; keep its message.
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| "the tenant writer failed".into());
        return Err(GatewayError::Internal { message: msg });
    }
    serde_json::from_str(&text).map_err(|_| super::internal("the tenant writer answered garbage"))
}
