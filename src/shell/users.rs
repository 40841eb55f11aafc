//! Per-user credentials, I/O: the admin calls under
//! `/admin/tenants/{id}/users/…` and the request path's one read of the
//! user's `uc:` record. Decisions live in `tenant::users*`.

use std::collections::BTreeMap;

use serde_json::json;
use worker::{kv::KvStore, Env, Request, Response};

use super::kv;
use crate::crypto::MasterKey;
use crate::http::error::GatewayError;
use crate::http::headers::get;
use crate::http::route::UserOp;
use crate::oauth::credential::Retired;
use crate::oauth::state::NOT_CONNECTED;
use crate::provider::refs::referenced_servers;
use crate::provider::routes::Rewrite;
use crate::tenant::storage::{self, GatewayKeyRecord, StoredTenant, TenantRecord};
use crate::tenant::users::{self, KeyScope, PerUser, UserCredentialKind, UserId, USER_HEADER};
use crate::tenant::users_input::parse_user_credential;
use crate::tenant::users_store::{plan_delete_user, UserMeta, UserRecord};
use crate::tenant::McpPolicy;

const MAX_BODY: u64 = 64 * 1024;
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let headers = worker::Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", "no-store");
    Response::builder().with_status(status).with_headers(headers).fixed(body.to_string().into_bytes())
}

/// The user a provider request acts for.
///
/// # Errors
/// As [`users::request_user`].
pub fn request_user(
    record: &GatewayKeyRecord,
    client_headers: &[(String, String)],
) -> Result<Option<UserId>, GatewayError> {
    let scope = KeyScope::of(record.user.as_deref(), record.act_as_users);
    users::request_user(&scope, get(client_headers, USER_HEADER))
}

async fn read_user(store: &KvStore, tenant: &str, user: &UserId) -> Result<Option<UserRecord>, GatewayError> {
    kv::get_json(store, &storage::user_key(tenant, &user.hash())).await
}

async fn write_user(store: &KvStore, tenant: &str, user: &UserId, record: &UserRecord) -> Result<(), GatewayError> {
    let value = serde_json::to_string(record).map_err(|_| super::internal("encoding a user record failed"))?;
    store
        .put(&storage::user_key(tenant, &user.hash()), value)
        .and_then(|p| p.metadata(UserMeta { user: user.as_str().to_string() }))
        .map_err(|_| super::internal("KV write failed"))?
        .execute()
        .await
        .map_err(|_| super::internal("KV write failed"))
}

/// Makes sure a user exists in the tenant's listing (a user key was issued).
pub async fn ensure_user(store: &KvStore, tenant: &str, user: &UserId, now: &str) -> Result<(), GatewayError> {
    if read_user(store, tenant, user).await?.is_none() {
        write_user(store, tenant, user, &UserRecord::new(user, now)).await?;
    }
    Ok(())
}

fn per_user_server(record: &TenantRecord, tenant: &str, server: &str) -> Result<PerUser, GatewayError> {
    let s = record.tenant.mcp_servers.get(server).ok_or_else(|| GatewayError::NotFound {
        message: format!("Tenant '{tenant}' has no MCP server '{server}'."),
    })?;
    s.per_user.ok_or_else(|| {
        GatewayError::bad_param("server", format!("MCP server '{server}' is not per user (\"per_user\": true)."))
    })
}

/// `/admin/tenants/{id}/users/{user}/…`.
pub async fn admin(
    req: &Request,
    env: &Env,
    record: TenantRecord,
    tenant: &str,
    user: &str,
    op: UserOp,
    now: &str,
) -> Result<Response, GatewayError> {
    let store = kv::store(env)?;
    let user = UserId::parse(user, "user")?;
    match op {
        UserOp::Get => {
            let rec = read_user(&store, tenant, &user)
                .await?
                .ok_or_else(|| GatewayError::NotFound { message: format!("Tenant '{tenant}' has no such user.") })?;
            let keys: Vec<_> = record
                .keys
                .iter()
                .filter(|k| k.user.as_deref() == Some(user.as_str()))
                .map(|k| json!({"id": k.id, "created_at": k.created_at}))
                .collect();
            let mut view = rec.view(tenant);
            view["keys"] = json!(keys);
            Ok(json_response(200, &view))
        }
        UserOp::PutCredential { server } => {
            let per_user = per_user_server(&record, tenant, &server)?;
            if per_user.credential == UserCredentialKind::OAuth2 {
                return Err(GatewayError::bad_param(
                    "server",
                    format!(
                        "MCP server '{server}' uses oauth2: connect it with POST …/mcp_servers/{server}/oauth/connect."
                    ),
                ));
            }
            let body = super::stream::read_limited(req.inner().body(), MAX_BODY).await?;
            let cred = parse_user_credential(&body, per_user.credential)?;
            let master = super::env::master_key(env)?;
            let mut rec = read_user(&store, tenant, &user).await?.unwrap_or_else(|| UserRecord::new(&user, now));
            rec.set(&master, tenant, &user, &server, &cred, now)
                .map_err(|_| super::internal("sealing a user credential failed"))?;
            write_user(&store, tenant, &user, &rec).await?;
            Ok(json_response(200, &rec.view(tenant)))
        }
        UserOp::DeleteCredential { server } => {
            per_user_server(&record, tenant, &server)?;
            if let Some(mut rec) = read_user(&store, tenant, &user).await? {
                if rec.credentials.remove(&server).is_some() {
                    now.clone_into(&mut rec.updated_at);
                    write_user(&store, tenant, &user, &rec).await?;
                }
            }
            Ok(Response::builder().with_status(204).empty())
        }
        UserOp::OAuth { server, action } => {
            let per_user = per_user_server(&record, tenant, &server)?;
            let cred = (per_user.credential == UserCredentialKind::OAuth2)
                .then(|| super::oauth::user_credential_ref(tenant, &server, &record.tenant, &user))
                .flatten()
                .ok_or_else(|| {
                    GatewayError::bad_param("server", format!("MCP server '{server}' does not use oauth2 credentials."))
                })?;
            super::oauth::admin_for(req, env, tenant, &server, cred, action).await
        }
        UserOp::Delete => {
            let oauth = user_oauth_credentials(&record.tenant, tenant, &user);
            kv::apply(&store, plan_delete_user(tenant, record, &user, now)).await?;
            super::oauth::forget(env, tenant, &oauth).await;
            Ok(Response::builder().with_status(204).empty())
        }
    }
}

/// Every OAuth credential a user may hold in the tenant.
fn user_oauth_credentials(stored: &StoredTenant, tenant: &str, user: &UserId) -> Vec<Retired> {
    stored
        .mcp_servers
        .iter()
        .filter(|(_, s)| s.per_user.is_some_and(|p| p.credential == UserCredentialKind::OAuth2))
        .filter_map(|(name, _)| super::oauth::user_credential_ref(tenant, name, stored, user))
        .map(|c| Retired { server: c.server, credential_id: c.auth.credential_id })
        .collect()
}

/// `GET /admin/tenants/{id}/users?limit=&cursor=`: one KV list page.
pub async fn list(req: &Request, env: &Env, tenant: &str) -> Result<Response, GatewayError> {
    let store = kv::store(env)?;
    let url = req.inner().url();
    let limit = match crate::http::route::query_param(&url, "limit") {
        None => DEFAULT_PAGE,
        Some(v) => v.parse::<u64>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
            GatewayError::bad_param("limit", format!("'limit' must be a whole number from 1 to {MAX_PAGE}."))
        })?,
    };
    let mut list = store.list().prefix(storage::user_list_prefix(tenant)).limit(limit);
    if let Some(c) = crate::http::route::query_param(&url, "cursor") {
        list = list.cursor(c);
    }
    let page = list.execute().await.map_err(|_| GatewayError::bad_param("cursor", "This cursor is not valid."))?;
    let users: Vec<_> = page
        .keys
        .iter()
        .filter_map(|k| k.metadata.clone().and_then(|m| serde_json::from_value::<UserMeta>(m).ok()))
        .map(|m| m.user)
        .collect();
    let cursor = if page.list_complete { None } else { page.cursor };
    Ok(json_response(200, &json!({"tenant_id": tenant, "users": users, "cursor": cursor})))
}

/// Gives each per-user server the request names its user's credential:
/// static ones from the user's one `uc:` record (one KV read, only when such
/// a server is named), OAuth ones from the user's own credential. Returns
/// the servers left out (`on_missing: omit`); fails with 424 otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn resolve(
    env: &Env,
    master: &MasterKey,
    record: &GatewayKeyRecord,
    per_user: &BTreeMap<String, PerUser>,
    user: Option<&UserId>,
    rewrite: Rewrite,
    body: &[u8],
    mcp: &mut McpPolicy,
) -> Result<Vec<String>, GatewayError> {
    if per_user.is_empty() {
        return Ok(Vec::new());
    }
    let plan = users::plan(per_user, &referenced_servers(rewrite, body));
    if plan.from_record.is_empty() && plan.oauth.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = &record.tenant_id;
    let mut missing = Vec::new();
    match user {
        None => missing.extend(plan.from_record.iter().chain(&plan.oauth).cloned()),
        Some(user) => {
            if !plan.from_record.is_empty() {
                let rec: Option<UserRecord> = kv::read_json(env, &storage::user_key(tenant, &user.hash())).await?;
                for name in &plan.from_record {
                    let cred = match &rec {
                        None => None,
                        Some(r) => r
                            .open(master, tenant, user, name)
                            .map_err(|_| super::internal("a user credential failed to decrypt; check MASTER_KEY"))?,
                    };
                    match (cred, mcp.servers.get_mut(name)) {
                        (Some(c), Some(server)) => server.auth = c.into_auth(),
                        _ => missing.push(name.clone()),
                    }
                }
            }
            for name in &plan.oauth {
                let cred = super::oauth::user_credential_ref(tenant, name, &record.tenant, user)
                    .ok_or_else(|| super::internal("a per-user oauth2 server has no OAuth client"))?;
                match super::oauth::token_of(env, master, tenant, name, &cred).await {
                    Ok(token) => {
                        if let Some(server) = mcp.servers.get_mut(name) {
                            server.auth = crate::tenant::McpAuth::Bearer(token);
                        }
                    }
                    Err(GatewayError::McpOAuthReconnect { reason, .. }) if reason == NOT_CONNECTED => {
                        missing.push(name.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let omitted = users::handle_missing(per_user, &missing, user.is_some())?;
    if let Some(first) = omitted.first().filter(|_| !crate::provider::omit::supported(rewrite)) {
        return Err(GatewayError::McpUserConnectRequired { server: first.clone(), no_user: user.is_none() });
    }
    for name in &omitted {
        mcp.servers.remove(name);
    }
    Ok(omitted)
}

/// The credential of the user a relay token names (by hash) for the
/// per-user server `server`: their static credential from their `uc:`
/// record, or their own OAuth access token. One read, as on the provider path.
///
/// # Errors
/// 424 `mcp_user_connect_required` when the user has none (deleted,
/// disconnected); the OAuth errors of [`super::oauth::token_of`].
pub async fn relay_credential(
    env: &Env,
    master: &MasterKey,
    tenant: &str,
    record: &TenantRecord,
    server: &str,
    per_user: PerUser,
    user_hash: &str,
) -> Result<crate::tenant::McpAuth, GatewayError> {
    let missing = || GatewayError::McpUserConnectRequired { server: server.to_string(), no_user: false };
    match per_user.credential {
        UserCredentialKind::Bearer | UserCredentialKind::Headers => {
            let store = kv::store(env)?;
            let rec: Option<UserRecord> = kv::get_json(&store, &storage::user_key(tenant, user_hash)).await?;
            let rec = rec.ok_or_else(missing)?;
            // The record names its user; it must be the one the token names.
            let user = UserId::parse(&rec.user, "user")
                .ok()
                .filter(|u| u.hash() == user_hash)
                .ok_or_else(|| super::internal("a user record does not match its key"))?;
            let cred = rec
                .open(master, tenant, &user, server)
                .map_err(|_| super::internal("a user credential failed to decrypt; check MASTER_KEY"))?;
            cred.map(users::UserCredential::into_auth).ok_or_else(missing)
        }
        UserCredentialKind::OAuth2 => {
            let cred = super::oauth::user_credential_ref_of_hash(tenant, server, &record.tenant, user_hash)
                .ok_or_else(|| super::internal("a per-user oauth2 server has no OAuth client"))?;
            match super::oauth::token_of(env, master, tenant, server, &cred).await {
                Ok(token) => Ok(crate::tenant::McpAuth::Bearer(token)),
                Err(GatewayError::McpOAuthReconnect { reason, .. }) if reason == NOT_CONNECTED => Err(missing()),
                Err(e) => Err(e),
            }
        }
    }
}
