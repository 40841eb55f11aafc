//! OAuth on the worker side (docs/oauth.md).
//!
//! - Request path: [`resolve_tokens`] turns each `oauth2` server a request
//!   names into a bearer token before the rewrite: the KV cache first (one
//!   read per server), the credential's Durable Object when the cached token
//!   is missing or within the safety margin.
//! - Admin: connect link, status, disconnect; credential housekeeping when a
//!   tenant is written or deleted.
//! - `GET /oauth/callback`: the authorization server's redirect back.
//!
//! Errors name the server and never carry a token or secret.

mod discovery;
mod http;
pub(crate) mod object;

use worker::{Env, Request, RequestInit, Response};

use crate::crypto::MasterKey;
use crate::crypto::Secret;
use crate::http::error::GatewayError;
use crate::http::route::OAuthAction;
use crate::oauth::credential::{self, Retired};
use crate::oauth::protocol::{Call, CredentialRef, Reply};
use crate::oauth::records::{AccessToken, AccessTokenRecord, Sealer};
use crate::oauth::{object_name, pkce};
use crate::provider::refs::referenced_servers;
use crate::provider::routes::Rewrite;
use crate::shell::{env, kv};
use crate::tenant::storage::{self, GatewayKeyRecord, StoredAuth, StoredTenant, TenantRecord};
use crate::tenant::{McpAuth, McpPolicy, Tenant};
use http::now_ms;

/// Sends one call to a credential's Durable Object.
async fn call_object(stub: &worker::Stub, call: &Call) -> Result<Reply, GatewayError> {
    let body = serde_json::to_string(call).map_err(|_| crate::shell::internal("encoding an OAuth call failed"))?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post).with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    let req = Request::new_with_init("https://oauth-credential.internal/", &init)
        .map_err(|_| crate::shell::internal("building an OAuth call failed"))?;
    let mut resp =
        stub.fetch_with_request(req).await.map_err(|_| crate::shell::internal("the OAuth credential object failed"))?;
    resp.json::<Reply>().await.map_err(|_| crate::shell::internal("the OAuth credential object answered garbage"))
}

fn stub_by_name(env: &Env, tenant: &str, server: &str, credential_id: &str) -> Result<worker::Stub, GatewayError> {
    env.durable_object(env::OAUTH_BINDING)
        .and_then(|ns| ns.id_from_name(&object_name(tenant, server, credential_id))?.get_stub())
        .map_err(|_| crate::shell::internal("Durable Object binding OAUTH_TOKENS is missing"))
}

/// One user's OAuth credential for a per-user `oauth2` server: the server's
/// client with the user's own credential id (own Durable Object, token cache
/// and single-flight refresh per tenant, server and user).
pub(crate) fn user_credential_ref(
    tenant: &str,
    server: &str,
    stored: &StoredTenant,
    user: &crate::tenant::users::UserId,
) -> Option<CredentialRef> {
    user_credential_ref_of_hash(tenant, server, stored, &user.hash())
}

/// [`user_credential_ref`] from the user's hash (what a relay token carries).
pub(crate) fn user_credential_ref_of_hash(
    tenant: &str,
    server: &str,
    stored: &StoredTenant,
    user_hash: &str,
) -> Option<CredentialRef> {
    let mut c = credential_ref(tenant, server, stored)?;
    c.auth.credential_id = crate::tenant::users::user_credential_id_of_hash(&c.auth.credential_id, user_hash);
    Some(c)
}

fn credential_ref(tenant: &str, server: &str, stored: &StoredTenant) -> Option<CredentialRef> {
    let s = stored.mcp_servers.get(server)?;
    match &s.auth {
        StoredAuth::OAuth2(o) => Some(CredentialRef {
            tenant: tenant.to_string(),
            server: server.to_string(),
            mcp_url: s.url.clone(),
            auth: (**o).clone(),
        }),
        StoredAuth::None | StoredAuth::Bearer { .. } | StoredAuth::Headers { .. } => None,
    }
}

async fn call_for(env: &Env, cred: &CredentialRef, call: &Call) -> Result<Reply, GatewayError> {
    let stub = stub_by_name(env, &cred.tenant, &cred.server, &cred.auth.credential_id)?;
    call_object(&stub, call).await
}

fn reply_error(server: &str, reply: Reply) -> GatewayError {
    match reply {
        Reply::Reconnect { reason } => GatewayError::McpOAuthReconnect { server: server.to_string(), reason },
        Reply::Unavailable { reason } => GatewayError::McpOAuthUnavailable { server: server.to_string(), reason },
        Reply::Failed { status: 400, message } => GatewayError::bad_request(message),
        Reply::Failed { status: 502, message } => {
            GatewayError::McpOAuthUnavailable { server: server.to_string(), reason: message }
        }
        Reply::Failed { message, .. } => crate::shell::internal(&format!("OAuth credential object: {message}")),
        Reply::ExchangeFailed { server, reason } => GatewayError::McpOAuthUnavailable { server, reason },
        Reply::Token { .. }
        | Reply::Authorize { .. }
        | Reply::Connected { .. }
        | Reply::Status { .. }
        | Reply::Sealing { .. }
        | Reply::Done => crate::shell::internal("the OAuth credential object answered out of turn"),
    }
}

/// Replaces every `oauth2` server the request body names in `policy` by a
/// bearer token, or fails with the documented 424 / 502 naming the server.
/// Servers the request does not name are left alone (and cost nothing).
pub async fn resolve_tokens(
    env: &Env,
    master: &MasterKey,
    record: &GatewayKeyRecord,
    rewrite: Rewrite,
    body: &[u8],
    policy: &mut McpPolicy,
) -> Result<(), GatewayError> {
    if !crate::oauth::has_oauth_servers(policy) {
        return Ok(());
    }
    resolve_servers(env, master, record, &referenced_servers(rewrite, body), policy).await
}

/// Replaces the `oauth2` servers among `labels` in `policy` by bearer tokens
/// (any code path that hands a server's credentials on, e.g. a relay, must
/// call this first); other labels are ignored. Fails like [`resolve_tokens`].
pub async fn resolve_servers(
    env: &Env,
    master: &MasterKey,
    record: &GatewayKeyRecord,
    labels: &[String],
    policy: &mut McpPolicy,
) -> Result<(), GatewayError> {
    let labels = crate::oauth::oauth_servers_in(policy, labels);
    if labels.is_empty() {
        return Ok(());
    }
    for label in &labels {
        if let Some(token) = access_token(env, master, &record.tenant_id, &record.tenant, label).await? {
            if let Some(server) = policy.servers.get_mut(label) {
                server.auth = McpAuth::Bearer(token);
            }
        }
    }
    Ok(())
}

/// The access token of one `oauth2` server (`None` if it is not one): the KV
/// cache first, the credential's Durable Object when the cached token is
/// missing or within the safety margin. Also used by the MCP relay.
pub async fn access_token(
    env: &Env,
    master: &MasterKey,
    tenant: &str,
    stored: &StoredTenant,
    label: &str,
) -> Result<Option<Secret>, GatewayError> {
    let Some(cred) = credential_ref(tenant, label, stored) else { return Ok(None) };
    token_of(env, master, tenant, label, &cred).await.map(Some)
}

/// The access token of one credential: the KV cache first, its Durable Object when needed.
pub(crate) async fn token_of(
    env: &Env,
    master: &MasterKey,
    tenant: &str,
    label: &str,
    cred: &CredentialRef,
) -> Result<Secret, GatewayError> {
    let store = kv::store(env)?;
    let s = Sealer { key: master, tenant, server: label, credential_id: &cred.auth.credential_id };
    let key = storage::oauth_token_key(tenant, label, &cred.auth.credential_id);
    let cached: Option<AccessTokenRecord> = kv::get_json(&store, &key).await.ok().flatten();
    let token = match cached.and_then(|r| AccessToken::from_record(&r, &s, now_ms())) {
        Some(t) => t.token,
        None => match call_for(env, cred, &Call::Token { cred: cred.clone() }).await? {
            Reply::Token { access_token, .. } => Secret::new(access_token),
            other => return Err(reply_error(label, other)),
        },
    };
    Ok(token)
}

fn json(status: u16, body: &serde_json::Value) -> Response {
    let headers = worker::Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", "no-store");
    Response::builder().with_status(status).with_headers(headers).fixed(body.to_string().into_bytes())
}

/// `POST .../oauth/connect`, `GET .../oauth`, `DELETE .../oauth`.
pub async fn admin(
    req: &Request,
    env: &Env,
    tenant: &str,
    server: &str,
    action: OAuthAction,
) -> Result<Response, GatewayError> {
    let store = kv::store(env)?;
    let record: TenantRecord = kv::get_json(&store, &storage::tenant_key(tenant))
        .await?
        .ok_or_else(|| GatewayError::NotFound { message: format!("Tenant '{tenant}' does not exist.") })?;
    let cred = match record.tenant.mcp_servers.get(server) {
        None => {
            return Err(GatewayError::NotFound { message: format!("Tenant '{tenant}' has no MCP server '{server}'.") })
        }
        Some(s) if s.per_user.is_some() => {
            return Err(GatewayError::bad_param(
                "server",
                format!("MCP server '{server}' is per user: use /admin/tenants/{tenant}/users/{{user}}/mcp_servers/{server}/oauth."),
            ))
        }
        Some(_) => credential_ref(tenant, server, &record.tenant).ok_or_else(|| {
            GatewayError::bad_param("server", format!("MCP server '{server}' does not use oauth2 credentials."))
        })?,
    };
    admin_for(req, env, tenant, server, cred, action).await
}

/// The OAuth admin calls on one credential (a tenant's, or one user's).
pub(crate) async fn admin_for(
    req: &Request,
    env: &Env,
    tenant: &str,
    server: &str,
    cred: CredentialRef,
    action: OAuthAction,
) -> Result<Response, GatewayError> {
    match action {
        OAuthAction::Connect => {
            if cred.auth.grant == "client_credentials" {
                return Err(GatewayError::bad_param(
                    "server",
                    format!("MCP server '{server}' uses the client_credentials grant, which needs no connect flow."),
                ));
            }
            let base = env::public_base(env, &req.inner().url())?;
            let redirect_uri = format!("{base}/oauth/callback");
            match call_for(env, &cred, &Call::Connect { cred: cred.clone(), redirect_uri }).await? {
                Reply::Authorize { authorization_url, redirect_uri, expires_at_ms } => Ok(json(
                    200,
                    &serde_json::json!({
                        "tenant_id": tenant,
                        "server": server,
                        "authorization_url": authorization_url,
                        "redirect_uri": redirect_uri,
                        "expires_at": crate::oauth::status::iso8601(expires_at_ms),
                    }),
                )),
                other => Err(reply_error(server, other)),
            }
        }
        OAuthAction::Status => match call_for(env, &cred, &Call::Status { cred: cred.clone() }).await? {
            Reply::Status { view } => Ok(json(200, &view)),
            other => Err(reply_error(server, other)),
        },
        OAuthAction::Disconnect => {
            forget(env, tenant, &[Retired { server: server.to_string(), credential_id: cred.auth.credential_id }])
                .await;
            Ok(Response::builder().with_status(204).empty())
        }
    }
}

/// Counts (and with `write` re-seals) the Durable Object state of every
/// `oauth2` credential of a stored tenant: the summed count before, and how
/// many states were rewritten.
pub async fn reseal_credentials(
    env: &Env,
    tenant: &str,
    stored: &StoredTenant,
    write: bool,
) -> Result<(crate::tenant::reseal::SealCount, u64), GatewayError> {
    let mut total = crate::tenant::reseal::SealCount::default();
    let mut rewritten = 0;
    for server in stored.mcp_servers.keys() {
        let Some(cred) = credential_ref(tenant, server, stored) else { continue };
        match call_for(env, &cred, &Call::Reseal { cred: cred.clone(), write }).await? {
            Reply::Sealing { before, resealed } => {
                total.merge(&before);
                rewritten += u64::from(resealed);
            }
            other => return Err(reply_error(server, other)),
        }
    }
    Ok((total, rewritten))
}

/// Drops the token state (Durable Object and KV cache) of credentials; best effort.
pub async fn forget(env: &Env, tenant: &str, creds: &[Retired]) {
    let store = kv::store(env).ok();
    for c in creds {
        if let Ok(stub) = stub_by_name(env, tenant, &c.server, &c.credential_id) {
            let _ = call_object(&stub, &Call::Forget).await;
        }
        if let Some(store) = &store {
            let _ = store.delete(&storage::oauth_token_key(tenant, &c.server, &c.credential_id)).await;
        }
    }
}

/// Before a tenant write: gives `oauth2` servers their credential ids (kept
/// when unchanged) and returns the credentials the write retires.
pub fn assign_credentials(
    master: &MasterKey,
    tenant: &str,
    new: &mut Tenant,
    old: Option<&TenantRecord>,
) -> Result<Vec<Retired>, GatewayError> {
    let old = old.and_then(|r| storage::open_tenant(master, tenant, &r.tenant, storage::Opening::McpOnly).ok());
    credential::assign_ids(new, old.as_ref(), crate::oauth::new_credential_id)
        .map_err(|_| crate::shell::internal("random source failed"))
}

/// Every credential of a stored tenant (for deletion).
pub fn credentials_of(record: &TenantRecord) -> Vec<Retired> {
    record
        .tenant
        .mcp_servers
        .iter()
        .filter_map(|(name, s)| match &s.auth {
            StoredAuth::OAuth2(o) => Some(Retired { server: name.clone(), credential_id: o.credential_id.clone() }),
            StoredAuth::None | StoredAuth::Bearer { .. } | StoredAuth::Headers { .. } => None,
        })
        .collect()
}

/// `GET /oauth/callback?state=…&code=…` (or `error=…`).
pub async fn callback(req: &Request, env: &Env) -> Result<Response, GatewayError> {
    let url = req.inner().url();
    let param = |name: &str| crate::http::route::query_param(&url, name);
    let (state, code, error, iss) = (param("state"), param("code"), param("error"), param("iss"));
    let unknown = || GatewayError::bad_param("state", "This authorization link is unknown or was already used.");
    let state = state.ok_or_else(unknown)?;
    let object_id = pkce::object_id_of_state(&state).ok_or_else(unknown)?;
    let stub = env
        .durable_object(env::OAUTH_BINDING)
        .map_err(|_| crate::shell::internal("Durable Object binding OAUTH_TOKENS is missing"))?
        .id_from_string(object_id)
        .and_then(|id| id.get_stub())
        .map_err(|_| unknown())?;
    match call_object(&stub, &Call::Finish { state, code, error, iss }).await? {
        Reply::Connected { tenant, server } => {
            let page = format!(
                "<!doctype html><meta charset=utf-8><title>mcpgate: connected</title>\
                 <p>MCP server <b>{server}</b> of tenant <b>{tenant}</b> is connected. You can close this window.</p>"
            );
            let headers = worker::Headers::new();
            let _ = headers.set("content-type", "text/html; charset=utf-8");
            let _ = headers.set("cache-control", "no-store");
            Ok(Response::builder().with_status(200).with_headers(headers).fixed(page.into_bytes()))
        }
        Reply::Failed { status: 400, message } => Err(GatewayError::bad_param("state", message)),
        Reply::ExchangeFailed { server, reason } => Err(GatewayError::McpOAuthUnavailable { server, reason }),
        other => Err(reply_error("(callback)", other)),
    }
}
