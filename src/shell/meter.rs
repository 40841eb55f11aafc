//! Per-tenant usage counters and rate limits in a Durable Object
//! (`TENANT_METER`, one object per tenant id): KV cannot count, a Durable
//! Object serializes its own events. The decisions are in `crate::stream::usage`.
//! Requests acting for a user are counted for that user too, under keys
//! built from the user's hash (`crate::tenant::usage_query`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde::Deserialize;
use worker::{durable_object, Context, DurableObject, Env, Method, Request, RequestInit, Response, State};

use crate::http::error::GatewayError;
use crate::stream::usage::{admit, day_of, is_day, Admit, Usage, Window};
use crate::tenant::usage_query::{day_key, day_prefix};
use crate::tenant::users::is_user_hash;

pub const BINDING: &str = "TENANT_METER";

#[durable_object]
pub struct TenantMeter {
    state: State,
    /// Rate windows live in memory: an evicted object starts a fresh window,
    /// which can only admit more, never wrongly reject.
    window: Cell<Window>,
}

#[derive(Deserialize)]
struct Record {
    day: String,
    usage: Usage,
    /// The part of `usage` that acted for users, by user hash.
    #[serde(default)]
    users: BTreeMap<String, Usage>,
}

/// Adds `usage` to the counter under `key`.
async fn add_at(storage: &worker::Storage, key: &str, usage: &Usage) -> worker::Result<()> {
    let mut total: Usage = storage.get(key).await?.unwrap_or_default();
    total.add(usage);
    storage.put(key, &total).await
}

fn query(req: &Request, name: &str) -> Option<String> {
    crate::http::route::query_param(&req.inner().url(), name)
}

impl DurableObject for TenantMeter {
    fn new(state: State, _env: Env) -> Self {
        Self { state, window: Cell::new(Window::default()) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/admit") => {
                let limit = query(&req, "limit").and_then(|v| v.parse::<u32>().ok()).unwrap_or(u32::MAX);
                let now = super::clock::now_ms();
                match admit(self.window.get(), limit, now) {
                    Admit::Yes(w) => {
                        self.window.set(w);
                        Response::from_json(&serde_json::json!({"ok": true}))
                    }
                    Admit::No { retry_after_s } => {
                        Response::from_json(&serde_json::json!({"ok": false, "retry_after_s": retry_after_s}))
                    }
                }
            }
            (Method::Post, "/record") => {
                let rec: Record = req.json().await?;
                if !is_day(&rec.day) || !rec.users.keys().all(|h| is_user_hash(h)) {
                    return Response::error("bad day or user", 400);
                }
                let storage = self.state.storage();
                add_at(&storage, &day_key(None, &rec.day), &rec.usage).await?;
                for (hash, usage) in &rec.users {
                    add_at(&storage, &day_key(Some(hash), &rec.day), usage).await?;
                }
                Ok(Response::empty()?.with_status(204))
            }
            (Method::Get, "/usage") => {
                let from = query(&req, "from").unwrap_or_default();
                let to = query(&req, "to").unwrap_or_default();
                let user = query(&req, "user").filter(|h| is_user_hash(h));
                let prefix = day_prefix(user.as_deref());
                let (start, end) = (format!("{prefix}{from}"), format!("{prefix}{to}~"));
                let opts = worker::ListOptions::new().start(&start).end(&end).prefix(&prefix);
                let map = self.state.storage().list_with_options(opts).await?;
                let mut days = Vec::new();
                for entry in map.entries() {
                    let pair: js_sys::Array = entry?.into();
                    let key = pair.get(0).as_string().unwrap_or_default();
                    let usage: Usage = serde_wasm_bindgen::from_value(pair.get(1)).unwrap_or_default();
                    days.push((key.trim_start_matches(prefix.as_str()).to_string(), usage));
                }
                Response::from_json(&days)
            }
            _ => Response::error("not found", 404),
        }
    }
}

fn stub(env: &Env, tenant: &str) -> Result<worker::Stub, GatewayError> {
    env.durable_object(BINDING)
        .and_then(|ns| ns.id_from_name(tenant).and_then(|id| id.get_stub()))
        .map_err(|_| super::internal("Durable Object binding TENANT_METER is missing"))
}

async fn call(
    env: &Env,
    tenant: &str,
    method: Method,
    path_query: &str,
    body: Option<String>,
) -> Result<Response, GatewayError> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(b) = body {
        init.with_body(Some(wasm_bindgen::JsValue::from_str(&b)));
    }
    let req = Request::new_with_init(&format!("https://meter{path_query}"), &init)
        .map_err(|_| super::internal("building a meter request failed"))?;
    stub(env, tenant)?.fetch_with_request(req).await.map_err(|_| super::internal("the usage meter did not answer"))
}

/// Admits one request under the tenant's per-minute limit.
pub async fn admit_request(env: &Env, tenant: &str, limit: u32) -> Result<(), GatewayError> {
    let mut resp = call(env, tenant, Method::Post, &format!("/admit?limit={limit}"), None).await?;
    let v: serde_json::Value = resp.json().await.map_err(|_| super::internal("the usage meter answered garbage"))?;
    if v["ok"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(GatewayError::RateLimited { retry_after_s: v["retry_after_s"].as_u64().unwrap_or(60).clamp(1, 60) })
    }
}

/// One (tenant, day)'s usage not yet sent: the total, and per user hash.
#[derive(Default)]
struct Pending {
    total: Usage,
    users: BTreeMap<String, Usage>,
}

thread_local! {
    /// Usage not yet sent to the tenants' meters, per (tenant, day).
    static PENDING: RefCell<BTreeMap<(String, String), Pending>> = const { RefCell::new(BTreeMap::new()) };
    static FLUSH_SCHEDULED: Cell<bool> = const { Cell::new(false) };
}

const DEFAULT_FLUSH_MS: u64 = 1000;

/// Adds one request's usage to today's counters without delaying the
/// response: usage is batched per isolate and sent to each tenant's meter
/// at most once per `USAGE_FLUSH_MS` (default 1 s) from a `waitUntil` task,
/// so a busy isolate makes one meter call per tenant per second, not one per
/// request. A request acting for a user (`user_hash`) counts for the user too.
pub fn add(ctx: &Context, env: &Env, tenant: &str, user_hash: Option<&str>, usage: &Usage) {
    let day = day_of(super::clock::now_ms());
    PENDING.with_borrow_mut(|p| {
        let pending = p.entry((tenant.to_string(), day)).or_default();
        pending.total.add(usage);
        if let Some(h) = user_hash {
            pending.users.entry(h.to_string()).or_default().add(usage);
        }
    });
    if !FLUSH_SCHEDULED.replace(true) {
        let delay = super::env::usage_flush_ms(env).unwrap_or(DEFAULT_FLUSH_MS);
        ctx.wait_until(flush_after(env.clone(), delay));
    }
}

async fn flush_after(env: Env, delay_ms: u64) {
    if delay_ms > 0 {
        worker::Delay::from(std::time::Duration::from_millis(delay_ms)).await;
    }
    FLUSH_SCHEDULED.set(false);
    let batch = PENDING.with_borrow_mut(std::mem::take);
    for ((tenant, day), pending) in batch {
        let body = serde_json::json!({"day": day, "usage": pending.total, "users": pending.users}).to_string();
        if call(&env, &tenant, Method::Post, "/record", Some(body)).await.is_err() {
            worker::console_error!("{{\"level\":\"error\",\"msg\":\"usage record failed\",\"tenant\":\"{tenant}\"}}");
        }
    }
}

/// Days `from..=to` (inclusive, `YYYY-MM-DD`) with the usage of the tenant,
/// or of one user (by hash).
pub async fn usage(
    env: &Env,
    tenant: &str,
    user_hash: Option<&str>,
    from: &str,
    to: &str,
) -> Result<Vec<(String, Usage)>, GatewayError> {
    let user = user_hash.map_or_else(String::new, |h| format!("&user={h}"));
    let mut resp = call(env, tenant, Method::Get, &format!("/usage?from={from}&to={to}{user}"), None).await?;
    resp.json().await.map_err(|_| super::internal("the usage meter answered garbage"))
}
