//! `OAuthCredential`: the Durable Object of one OAuth credential (binding
//! `OAUTH_TOKENS`, named `{tenant}/{server}/{credential_id}`).
//!
//! It is the only writer of the credential's token state and serializes
//! every token request: a refresh runs inside `blockConcurrencyWhile`, so
//! concurrent callers wait for it and then get the token it stored, and the
//! authorization server sees one call no matter how many requests found the
//! token expired. The new state (rotated refresh token included) is persisted
//! before the new access token is handed to anyone; then the KV cache, the
//! read path of requests, is updated. Every secret in storage is sealed
//! (`oauth::records::Sealer`). Logs carry ids and our own words only.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{durable_object, DurableObject, Env, Request, Response, State, Storage};

use super::discovery::{discover, register};
use super::http::{now_ms, post_token};
use crate::crypto::Secret;
use crate::crypto::{random_bytes, MasterKey};
use crate::oauth::metadata::{authorization_url, check_response_iss, is_fetchable, AuthorizationRequest};
use crate::oauth::pkce;
use crate::oauth::protocol::{Call, CredentialRef, Reply};
use crate::oauth::records::{open_oauth, AccessToken, Sealer};
use crate::oauth::rotation::{count_state, reseal_state};
use crate::oauth::state::{
    configured_client, CredentialState, PendingConnect, Plan, Registration, StoredClient, PENDING_TTL_MS,
};
use crate::oauth::token::{build_request, Client, GrantRequest};
use crate::tenant::storage;

/// The storage key of [`CredentialState`] (documented in docs/storage-schema.md).
const STATE_KEY: &str = "state";

type Cache = Rc<RefCell<Option<CredentialState>>>;

#[durable_object(fetch)]
pub struct OAuthCredential {
    state: State,
    env: Env,
    cache: Cache,
}

impl DurableObject for OAuthCredential {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, cache: Rc::new(RefCell::new(None)) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        // Text + serde_json rather than `Request::json` (serde-wasm-bindgen): one deserializer less in the bundle.
        let call = req.text().await.ok().and_then(|t| serde_json::from_str::<Call>(&t).ok());
        let reply = match call {
            Some(call) => self.handle(call).await,
            None => failed(500, "malformed internal call"),
        };
        Response::from_json(&reply)
    }
}

fn failed(status: u16, message: &str) -> Reply {
    Reply::Failed { status, message: message.to_string() }
}

/// One log line per OAuth event: ids, our own words and a duration; never a token or secret.
fn log_timed(event: &str, tenant: &str, server: &str, detail: &str, ms: Option<u64>) {
    let line = serde_json::json!({
        "level": "info", "msg": "oauth", "event": event, "tenant": tenant, "server": server, "detail": detail, "ms": ms,
    });
    worker::console_log!("{line}");
}

fn log(event: &str, tenant: &str, server: &str, detail: &str) {
    log_timed(event, tenant, server, detail, None);
}

async fn load(storage: &Storage, cache: &Cache) -> CredentialState {
    if let Some(st) = cache.borrow().as_ref() {
        return st.clone();
    }
    let stored: Option<String> = storage.get(STATE_KEY).await.ok().flatten();
    let st = stored.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    *cache.borrow_mut() = Some(CredentialState::clone(&st));
    st
}

async fn save(storage: &Storage, cache: &Cache, st: &CredentialState) -> bool {
    let Ok(json) = serde_json::to_string(st) else { return false };
    let ok = storage.put(STATE_KEY, json).await.is_ok();
    // On failure the next call reloads from storage rather than trusting memory.
    *cache.borrow_mut() = ok.then(|| st.clone());
    ok
}

/// Writes the KV read-path copy of a new access token (best effort: the object stays the source of truth).
async fn publish(env: &Env, s: &Sealer<'_>, token: &AccessToken) {
    let (Ok(kv), Ok(record)) = (crate::shell::kv::store(env), token.to_record(s)) else { return };
    let key = storage::oauth_token_key(s.tenant, s.server, s.credential_id);
    let Ok(value) = serde_json::to_string(&record) else { return };
    if let Ok(put) = kv.put(&key, value) {
        let _ = put.expiration_ttl(token.kv_ttl_secs(now_ms())).execute().await;
    }
}

fn token_reply(t: &AccessToken, refreshed: bool) -> Reply {
    Reply::Token {
        access_token: t.token.expose().to_string(),
        expires_at_ms: t.expires_at_ms,
        lifetime_ms: t.lifetime_ms,
        refreshed,
    }
}

/// Owned inputs of work that runs inside `blockConcurrencyWhile` (it must be `'static`).
struct Ctx {
    storage: Storage,
    env: Env,
    cache: Cache,
}

impl OAuthCredential {
    fn ctx(&self) -> Ctx {
        Ctx { storage: self.state.storage(), env: self.env.clone(), cache: Rc::clone(&self.cache) }
    }

    async fn handle(&self, call: Call) -> Reply {
        let Ok(key) = crate::shell::env::master_key(&self.env) else { return failed(500, "MASTER_KEY is not usable") };
        match call {
            Call::Token { cred } => {
                let s = sealer(&key, &cred);
                if let Some(t) = self.cache.borrow().as_ref().and_then(|st| st.fresh_token(&s, now_ms())) {
                    return token_reply(&t, false);
                }
                let ctx = self.ctx();
                self.state
                    .block_concurrency_while(async move { Ok(refresh(ctx, cred).await) })
                    .await
                    .unwrap_or_else(|_| failed(500, "token refresh was interrupted"))
            }
            Call::Connect { cred, redirect_uri } => {
                let id = self.state.id().to_string();
                connect(self.ctx(), &key, cred, &redirect_uri, &id).await
            }
            Call::Finish { state, code, error, iss } => {
                let ctx = self.ctx();
                self.state
                    .block_concurrency_while(async move { Ok(finish(ctx, state, code, error, iss).await) })
                    .await
                    .unwrap_or_else(|_| failed(500, "the code exchange was interrupted"))
            }
            Call::Status { cred } => {
                let st = load(&self.state.storage(), &self.cache).await;
                let Ok(cfg) = open_oauth(&key, &cred.tenant, &cred.server, &cred.auth) else {
                    return failed(500, "the stored OAuth config does not open");
                };
                let view = crate::oauth::status::status_view(&cred.tenant, &cred.server, &cfg, &st, now_ms());
                Reply::Status { view }
            }
            Call::Reseal { cred, write } => {
                let ctx = self.ctx();
                self.state
                    .block_concurrency_while(async move { Ok(reseal(ctx, cred, write).await) })
                    .await
                    .unwrap_or_else(|_| failed(500, "re-sealing was interrupted"))
            }
            Call::Forget => {
                let _ = self.state.storage().delete_all().await;
                *self.cache.borrow_mut() = Some(CredentialState::default());
                Reply::Done
            }
        }
    }
}

const fn grant_name(g: &GrantRequest<'_>) -> &'static str {
    match g {
        GrantRequest::RefreshToken(_) => "refresh_token",
        GrantRequest::ClientCredentials => "client_credentials",
        GrantRequest::AuthorizationCode { .. } => "authorization_code",
    }
}

fn sealer<'a>(key: &'a MasterKey, cred: &'a CredentialRef) -> Sealer<'a> {
    Sealer { key, tenant: &cred.tenant, server: &cred.server, credential_id: &cred.auth.credential_id }
}

/// Uses the stored token if fresh, else asks the token endpoint once.
async fn refresh(ctx: Ctx, cred: CredentialRef) -> Reply {
    let Ok(key) = crate::shell::env::master_key(&ctx.env) else { return failed(500, "MASTER_KEY is not usable") };
    let Ok(cfg) = open_oauth(&key, &cred.tenant, &cred.server, &cred.auth) else {
        return failed(500, "the stored OAuth config does not open");
    };
    let s = sealer(&key, &cred);
    let mut st = load(&ctx.storage, &ctx.cache).await;
    let plan = match st.plan(&cfg, &s, now_ms()) {
        Ok(p) => p,
        Err(_) => return failed(500, "stored OAuth state does not open"),
    };
    let (client, refresh_token) = match plan {
        Plan::Use(t) => return token_reply(&t, false),
        Plan::Reconnect(reason) => return Reply::Reconnect { reason },
        Plan::Request { client, refresh_token } => (client, refresh_token),
    };
    let grant = refresh_token.as_ref().map_or(GrantRequest::ClientCredentials, GrantRequest::RefreshToken);
    let req = build_request(&client, &grant, st.scope(&cfg), st.resource(&cfg));
    let started = now_ms();
    let answer = post_token(&req).await;
    let now = now_ms();
    match answer {
        Ok(set) => {
            let Ok(token) = st.apply_tokens(&s, now, set, refresh_token.as_ref()) else {
                return failed(500, "sealing the new tokens failed");
            };
            // Persist (rotated refresh token included) before anyone uses the new access token.
            if !save(&ctx.storage, &ctx.cache, &st).await {
                log("refresh_not_persisted", &cred.tenant, &cred.server, "storage write failed");
                return failed(500, "storing the new tokens failed");
            }
            publish(&ctx.env, &s, &token).await;
            log_timed(
                "token_issued",
                &cred.tenant,
                &cred.server,
                grant_name(&grant),
                Some(now_ms().saturating_sub(started)),
            );
            token_reply(&token, true)
        }
        Err(f) => {
            st.apply_failure(&cfg, now, &f);
            save(&ctx.storage, &ctx.cache, &st).await;
            log_timed(
                "token_request_failed",
                &cred.tenant,
                &cred.server,
                f.kind(),
                Some(now_ms().saturating_sub(started)),
            );
            if f.needs_reconnect() {
                Reply::Reconnect { reason: f.describe() }
            } else {
                Reply::Unavailable { reason: f.describe() }
            }
        }
    }
}

/// Counts (and with `write` re-seals) the stored state under the current
/// master key; republishes the KV copy of a fresh access token so it too is
/// under the current key. Serialized with refreshes, so no token is lost.
async fn reseal(ctx: Ctx, cred: CredentialRef, write: bool) -> Reply {
    let Ok(key) = crate::shell::env::master_key(&ctx.env) else { return failed(500, "MASTER_KEY is not usable") };
    let s = sealer(&key, &cred);
    let mut st = load(&ctx.storage, &ctx.cache).await;
    let before = count_state(&st, &s);
    if !write || before.not_current() == 0 {
        return Reply::Sealing { before, resealed: false };
    }
    match reseal_state(&mut st, &s) {
        Err(_) => failed(500, "stored OAuth state opens under neither MASTER_KEY nor MASTER_KEY_PREVIOUS"),
        Ok(changed) => {
            if changed && !save(&ctx.storage, &ctx.cache, &st).await {
                return failed(500, "storing the re-sealed OAuth state failed");
            }
            if let Some(t) = st.fresh_token(&s, now_ms()) {
                publish(&ctx.env, &s, &t).await;
            }
            log("resealed", &cred.tenant, &cred.server, "");
            Reply::Sealing { before, resealed: changed }
        }
    }
}

/// Starts the connect flow: discovery, client (configured, reused or registered), PKCE and `state`.
async fn connect(ctx: Ctx, key: &MasterKey, cred: CredentialRef, redirect_uri: &str, object_id: &str) -> Reply {
    let Ok(cfg) = open_oauth(key, &cred.tenant, &cred.server, &cred.auth) else {
        return failed(500, "the stored OAuth config does not open");
    };
    // Trust rule: a client secret goes only to a token endpoint the tenant
    // configured (token_url) or to that of an authorization server it named
    // (issuer), never to one the MCP server's metadata points at.
    if cfg.client_secret.is_some() && cfg.token_url.is_none() && cfg.issuer.is_none() {
        return failed(
            400,
            &format!(
                "MCP server '{}' has a client_secret but neither token_url nor issuer: the gateway sends a client \
                 secret only to a token endpoint the tenant configured, never to one the MCP server names. Set \
                 token_url or issuer.",
                cred.server
            ),
        );
    }
    let allow_insecure = crate::shell::env::parse_options(&ctx.env).allow_insecure_urls;
    let found = match discover(&cred.mcp_url, cfg.issuer.as_deref(), |u| is_fetchable(u, allow_insecure)).await {
        Ok(d) => d,
        Err(why) => return Reply::Unavailable { reason: format!("discovery failed: {why}") },
    };
    let s = sealer(key, &cred);
    let scope = cfg.scope.clone().or(found.scope.clone());
    let resource = cfg.resource.clone().or(found.resource.clone()).unwrap_or_else(|| cred.mcp_url.clone());
    let token_url = cfg.token_url.clone().unwrap_or_else(|| found.server.token_endpoint.clone());
    let earlier = load(&ctx.storage, &ctx.cache).await.registration;
    let mut registered = None;
    let client = match (configured_client(&cfg), &cfg.client_id) {
        (Some(c), _) => c,
        (None, Some(id)) => {
            Client { token_url, client_id: id.clone(), secret: cfg.client_secret.clone(), auth: cfg.client_auth }
        }
        (None, None) => {
            let reusable = earlier
                .as_ref()
                .filter(|r| r.issuer == found.server.issuer && r.redirect_uri == redirect_uri)
                .and_then(|r| r.client.open(&s).ok());
            match reusable {
                Some(c) => c,
                None => {
                    let Some(endpoint) =
                        found.server.registration_endpoint.as_deref().filter(|u| is_fetchable(u, allow_insecure))
                    else {
                        return failed(
                            400,
                            "its authorization server does not offer dynamic client registration; configure client_id",
                        );
                    };
                    let reg = match register(endpoint, redirect_uri, scope.as_deref()).await {
                        Ok(r) => r,
                        Err(why) => return Reply::Unavailable { reason: format!("client registration failed: {why}") },
                    };
                    let c = Client {
                        token_url,
                        client_id: reg.client_id,
                        secret: reg.client_secret,
                        auth: reg.client_auth,
                    };
                    let Ok(stored) = StoredClient::seal(&c, &s) else { return failed(500, "sealing failed") };
                    registered = Some(Registration {
                        issuer: found.server.issuer.clone(),
                        redirect_uri: redirect_uri.to_string(),
                        client: stored,
                    });
                    c
                }
            }
        }
    };
    let (Ok(v_rand), Ok(s_rand)) = (random_bytes::<32>(), random_bytes::<32>()) else {
        return failed(500, "random source failed");
    };
    let verifier = pkce::verifier(&v_rand);
    let state = pkce::new_state(object_id, &s_rand);
    let url = authorization_url(&AuthorizationRequest {
        endpoint: &found.server.authorization_endpoint,
        client_id: &client.client_id,
        redirect_uri,
        code_challenge: &pkce::challenge_s256(&verifier),
        state: &state,
        scope: scope.as_deref(),
        resource: Some(&resource),
    });
    let Ok(url) = url else { return Reply::Unavailable { reason: "its authorization_endpoint is not a URL".into() } };
    let (Ok(code_verifier), Ok(client)) =
        (s.seal("code_verifier", &Secret::new(verifier)), StoredClient::seal(&client, &s))
    else {
        return failed(500, "sealing failed");
    };
    let expires_at_ms = now_ms() + PENDING_TTL_MS;
    // Reloaded after the awaits above, so a refresh that ran meanwhile is not overwritten.
    let mut st = load(&ctx.storage, &ctx.cache).await;
    if registered.is_some() {
        st.registration = registered;
    }
    st.set_pending(
        &state,
        PendingConnect {
            tenant: cred.tenant.clone(),
            server: cred.server.clone(),
            credential_id: cred.auth.credential_id.clone(),
            state_sha256: String::new(),
            code_verifier,
            redirect_uri: redirect_uri.to_string(),
            client,
            scope,
            resource: Some(resource),
            issuer: Some(found.server.issuer.clone()),
            iss_required: found.server.iss_parameter_supported,
            expires_at_ms,
        },
    );
    if !save(&ctx.storage, &ctx.cache, &st).await {
        return failed(500, "storing the pending authorization failed");
    }
    log("authorization_link_created", &cred.tenant, &cred.server, "");
    Reply::Authorize { authorization_url: url, redirect_uri: redirect_uri.to_string(), expires_at_ms }
}

/// Completes the connect flow: checks `state`, exchanges the code, stores the tokens.
async fn finish(ctx: Ctx, state: String, code: Option<String>, error: Option<String>, iss: Option<String>) -> Reply {
    let Ok(key) = crate::shell::env::master_key(&ctx.env) else { return failed(500, "MASTER_KEY is not usable") };
    let mut st = load(&ctx.storage, &ctx.cache).await;
    let pending = match st.take_pending(&state, now_ms()) {
        Ok(p) => p,
        Err(why) => return failed(400, why),
    };
    save(&ctx.storage, &ctx.cache, &st).await;
    // RFC 9207, before anything else: a response from another issuer (a
    // mix-up) must not have its code sent anywhere. The link is spent.
    if let Err(why) = check_response_iss(iss.as_deref(), pending.issuer.as_deref(), pending.iss_required) {
        log("authorization_issuer_mismatch", &pending.tenant, &pending.server, "");
        return failed(
            400,
            &format!(
                "Refused the authorization response for MCP server '{}': {why}. Create a new authorization link.",
                pending.server
            ),
        );
    }
    let s =
        Sealer { key: &key, tenant: &pending.tenant, server: &pending.server, credential_id: &pending.credential_id };
    let code = match (code, error) {
        (Some(c), None) if !c.is_empty() && c.len() <= 4096 => c,
        (_, Some(e)) => {
            let e = if e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && e.len() <= 64 {
                e
            } else {
                "an error".into()
            };
            log("authorization_denied", &pending.tenant, &pending.server, &e);
            return failed(
                400,
                &format!("The authorization server did not authorize MCP server '{}': {e}.", pending.server),
            );
        }
        _ => return failed(400, "The callback carries no authorization code."),
    };
    let (Ok(client), Ok(verifier)) = (pending.client.open(&s), s.open("code_verifier", &pending.code_verifier)) else {
        return failed(500, "stored OAuth state does not open");
    };
    let grant =
        GrantRequest::AuthorizationCode { code: &code, verifier: &verifier, redirect_uri: &pending.redirect_uri };
    let req = build_request(&client, &grant, pending.scope.as_deref(), pending.resource.as_deref());
    match post_token(&req).await {
        Ok(set) => {
            let Ok(token) = st.apply_connected(&s, now_ms(), set, &pending) else {
                return failed(500, "sealing failed");
            };
            if !save(&ctx.storage, &ctx.cache, &st).await {
                return failed(500, "storing the new tokens failed");
            }
            publish(&ctx.env, &s, &token).await;
            log("connected", &pending.tenant, &pending.server, "");
            Reply::Connected { tenant: pending.tenant, server: pending.server }
        }
        Err(f) => {
            st.last_error =
                Some(crate::oauth::state::LastError { at_ms: now_ms(), kind: f.kind().into(), message: f.describe() });
            save(&ctx.storage, &ctx.cache, &st).await;
            log("code_exchange_failed", &pending.tenant, &pending.server, f.kind());
            if f.needs_reconnect() {
                let msg = format!(
                    "Exchanging the authorization code for MCP server '{}' failed: {}. Create a new authorization link.",
                    pending.server,
                    f.describe()
                );
                return failed(400, &msg);
            }
            Reply::ExchangeFailed { server: pending.server, reason: f.describe() }
        }
    }
}
