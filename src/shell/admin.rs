//! Admin API I/O (README "Admin API", docs/openapi.json). Decisions live in
//! `tenant::input`, `tenant::keep`, `tenant::listing` and `tenant::storage`; this
//! file reads, writes and answers.

use serde_json::json;
use worker::{Env, Request, Response};

use super::kv;
use crate::crypto::{new_gateway_key, sha256_hex};
use crate::http::error::GatewayError;
use crate::http::route::{query_param, AdminOp};
use crate::stream::usage::Usage;
use crate::tenant::input::parse_tenant;
use crate::tenant::keep;
use crate::tenant::listing;
use crate::tenant::storage::{self, KeyEntry, TenantRecord};
use crate::tenant::users::KeyScope;

/// Admin bodies are small; anything larger is a mistake.
pub const MAX_ADMIN_BODY: usize = 1024 * 1024;

fn now() -> String {
    super::clock::now_iso()
}

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let headers = worker::Headers::new();
    let _ = headers.set("content-type", "application/json");
    Response::builder().with_status(status).with_headers(headers).fixed(body.to_string().into_bytes())
}

fn no_content() -> Response {
    Response::builder().with_status(204).empty()
}

fn tenant_not_found(id: &str) -> GatewayError {
    GatewayError::NotFound { message: format!("Tenant '{id}' does not exist.") }
}

pub async fn handle(req: Request, env: &Env, op: AdminOp) -> Result<Response, GatewayError> {
    // Tenant writes run one at a time in the tenant's writer object, which calls `apply`.
    if let Some(tenant) = op.serialized_tenant() {
        let tenant = tenant.to_string();
        return super::writer::forward(req, env, &tenant).await;
    }
    apply(req, env, op).await
}

/// Performs an admin call. Tenant writes reach it only through `writer::TenantWriter`.
pub async fn apply(mut req: Request, env: &Env, op: AdminOp) -> Result<Response, GatewayError> {
    let store = kv::store(env)?;
    match op {
        AdminOp::Reseal { write } => super::maintenance::handle(&req, env, write).await,
        AdminOp::ListTenants => {
            let url = req.inner().url();
            let q =
                listing::parse_query(query_param(&url, "limit").as_deref(), query_param(&url, "cursor").as_deref())?;
            let (keys, next, complete) = kv::list(env, storage::tenant_list_prefix(), q.limit, q.cursor).await?;
            Ok(json_response(200, &listing::page_view(&keys, next, complete)))
        }
        AdminOp::OpenApi => super::console::openapi(env).await,
        AdminOp::PutTenant { tenant } => {
            let body = read_body(&mut req).await?;
            let mut parsed = parse_tenant(&body, super::env::parse_options(env))?;
            let master = super::env::master_key(env)?;
            let existing: Option<TenantRecord> = kv::get_json(&store, &storage::tenant_key(&tenant)).await?;
            if keep::wants_stored(&parsed) {
                let old = existing
                    .as_ref()
                    .map(|r| storage::open_tenant(&master, &tenant, &r.tenant, storage::Opening::Everything))
                    .transpose()
                    .map_err(|_| super::internal("opening stored tenant secrets failed"))?;
                keep::keep_stored(&mut parsed, old.as_ref())?;
            }
            let retired = super::oauth::assign_credentials(&master, &tenant, &mut parsed, existing.as_ref())?;
            let stored = storage::seal_tenant(&master, &tenant, &parsed)
                .map_err(|_| super::internal("sealing tenant secrets failed"))?;
            let (record, ops) = storage::plan_put_tenant(&tenant, existing, stored, &now());
            kv::apply(&store, ops).await?;
            super::oauth::forget(env, &tenant, &retired).await;
            Ok(json_response(200, &storage::redacted_view(&tenant, &record.tenant)))
        }
        AdminOp::GetTenant { tenant } => {
            let record = load(&store, &tenant).await?;
            Ok(json_response(200, &storage::redacted_view(&tenant, &record.tenant)))
        }
        AdminOp::DeleteTenant { tenant } => {
            let record = load(&store, &tenant).await?;
            kv::apply(&store, storage::plan_delete_tenant(&tenant, &record)).await?;
            // Its users' credential records too: a tenant re-created under the same id
            // must not find them (they are sealed to the tenant id, not to this tenant).
            let prefix = storage::user_list_prefix(&tenant);
            let mut cursor = None;
            loop {
                let (keys, next, complete) = kv::list(env, &prefix, 100, cursor).await?;
                let ops = keys.into_iter().map(|key| storage::KvOp::Delete { key }).collect();
                kv::apply(&store, ops).await?;
                if complete || next.is_none() {
                    break;
                }
                cursor = next;
            }
            super::oauth::forget(env, &tenant, &super::oauth::credentials_of(&record)).await;
            Ok(no_content())
        }
        AdminOp::CreateKey { tenant } => {
            let scope = crate::tenant::users_input::parse_key_request(&read_body(&mut req).await?)?;
            let record = load(&store, &tenant).await?;
            let (id, key) = new_gateway_key().map_err(|_| super::internal("random source failed"))?;
            let created_at = now();
            let (user, act_as_users) = match &scope {
                KeyScope::Tenant => (None, false),
                KeyScope::ActAsUsers => (None, true),
                KeyScope::User(u) => (Some(u.as_str().to_string()), false),
            };
            if let KeyScope::User(u) = &scope {
                super::users::ensure_user(&store, &tenant, u, &created_at).await?;
            }
            let entry = KeyEntry {
                id: id.clone(),
                sha256: sha256_hex(key.expose().as_bytes()),
                created_at: created_at.clone(),
                user: user.clone(),
                act_as_users,
            };
            kv::apply(&store, storage::plan_add_key(&tenant, record, entry, &created_at)).await?;
            let mut body = json!({"id": id, "key": key.expose(), "tenant_id": tenant, "created_at": created_at});
            if let Some(u) = user {
                body["user"] = json!(u);
            }
            if act_as_users {
                body["act_as_users"] = json!(true);
            }
            Ok(json_response(201, &body))
        }
        AdminOp::ListKeys { tenant } => {
            let record = load(&store, &tenant).await?;
            let keys: Vec<_> = record.keys.iter().map(key_view).collect();
            Ok(json_response(200, &json!({"tenant_id": tenant, "keys": keys})))
        }
        AdminOp::Usage { tenant } => {
            load(&store, &tenant).await?;
            let url = req.inner().url();
            let q = crate::tenant::usage_query::parse(&|name| query_param(&url, name), super::clock::now_ms())?;
            let user_hash = q.user.as_ref().map(crate::tenant::users::UserId::hash);
            let (from, to) = (q.from, q.to);
            let days = super::meter::usage(env, &tenant, user_hash.as_deref(), &from, &to).await?;
            let mut total = Usage::default();
            let days: Vec<_> = days
                .into_iter()
                .map(|(date, u)| {
                    total.add(&u);
                    let mut day = json!({"date": date, "requests": u.requests, "input_tokens": u.input_tokens,
                           "output_tokens": u.output_tokens, "mcp_calls": u.mcp_calls});
                    if !u.relay_calls.is_empty() {
                        day["relay_calls"] = json!(u.relay_calls);
                    }
                    day
                })
                .collect();
            let mut body = json!({"tenant_id": tenant, "from": from, "to": to, "days": days, "total": total});
            if let Some(u) = q.user {
                body["user"] = json!(u.as_str());
            }
            Ok(json_response(200, &body))
        }
        AdminOp::OAuth { tenant, server, action } => super::oauth::admin(&req, env, &tenant, &server, action).await,
        AdminOp::ListUsers { tenant } => {
            load(&store, &tenant).await?;
            super::users::list(&req, env, &tenant).await
        }
        AdminOp::User { tenant, user, op } => {
            let record = load(&store, &tenant).await?;
            super::users::admin(&req, env, record, &tenant, &user, op, &now()).await
        }
        AdminOp::DeleteKey { tenant, key_id } => {
            let record = load(&store, &tenant).await?;
            let ops = storage::plan_remove_key(&tenant, record, &key_id, &now()).ok_or_else(|| {
                GatewayError::NotFound { message: format!("Tenant '{tenant}' has no key '{}'.", safe_id(&key_id)) }
            })?;
            kv::apply(&store, ops).await?;
            Ok(no_content())
        }
    }
}

fn key_view(k: &KeyEntry) -> serde_json::Value {
    let mut v = json!({"id": k.id, "created_at": k.created_at});
    if let Some(u) = &k.user {
        v["user"] = json!(u);
    }
    if k.act_as_users {
        v["act_as_users"] = json!(true);
    }
    v
}

/// Echo a key id only if it looks like one of ours.
fn safe_id(id: &str) -> &str {
    if id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        id
    } else {
        "(invalid id)"
    }
}

async fn load(store: &worker::kv::KvStore, tenant: &str) -> Result<TenantRecord, GatewayError> {
    kv::get_json(store, &storage::tenant_key(tenant)).await?.ok_or_else(|| tenant_not_found(tenant))
}

async fn read_body(req: &mut Request) -> Result<Vec<u8>, GatewayError> {
    if let Ok(Some(len)) = req.headers().get("content-length") {
        if len.trim().parse::<usize>().is_ok_and(|n| n > MAX_ADMIN_BODY) {
            return Err(GatewayError::PayloadTooLarge { limit: MAX_ADMIN_BODY as u64 });
        }
    }
    super::stream::read_limited(req.inner().body(), MAX_ADMIN_BODY as u64).await
}
