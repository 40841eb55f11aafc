//! Every KV key the gateway uses and every record stored under one.
//! No other module formats a key. `docs/storage-schema.md` documents each
//! prefix; a test keeps the two in step.
//!
//! Secrets are stored only as envelopes from [`crate::crypto`]; gateway keys
//! only as SHA-256 hex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::REDACTED;
use crate::crypto::{Aad, CryptoError, MasterKey};
use crate::oauth::records::{open_oauth, redacted_oauth, seal_oauth, StoredOAuth};
use crate::provider::Provider;
use crate::tenant::{Approval, AzureOpenAi, McpAuth, McpMode, McpPolicy, McpServer, Tenant, UnknownRoutes};

/// Record version written today.
pub const RECORD_VERSION: u32 = 1;

/// Prefixes, in the order the storage document lists them.
pub const PREFIXES: [&str; 4] = [TENANT_PREFIX, GATEWAY_KEY_PREFIX, OAUTH_TOKEN_PREFIX, USER_PREFIX];
const TENANT_PREFIX: &str = "tenant:";
const GATEWAY_KEY_PREFIX: &str = "gk:";
const OAUTH_TOKEN_PREFIX: &str = "oat:";
const USER_PREFIX: &str = "uc:";

/// `uc:{tenant_id}:{sha256_hex(user id)}` → [`crate::tenant::users_store::UserRecord`]:
/// one user's static credentials for every per-user server (one read on the
/// request path however many of them a request names); its KV metadata
/// `{"user": id}` lets [`user_list_prefix`] list a tenant's users.
#[must_use]
pub fn user_key(tenant_id: &str, user_hash: &str) -> String {
    format!("{USER_PREFIX}{tenant_id}:{user_hash}")
}

/// The prefix listing every `uc:` record of a tenant.
#[must_use]
pub fn user_list_prefix(tenant_id: &str) -> String {
    format!("{USER_PREFIX}{tenant_id}:")
}

/// `tenant:{tenant_id}` → [`TenantRecord`].
#[must_use]
pub fn tenant_key(tenant_id: &str) -> String {
    format!("{TENANT_PREFIX}{tenant_id}")
}

/// The prefix listing every tenant record (for maintenance walks).
#[must_use]
pub const fn tenant_list_prefix() -> &'static str {
    TENANT_PREFIX
}

/// The tenant id of a key listed under [`tenant_list_prefix`].
#[must_use]
pub fn tenant_id_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(TENANT_PREFIX).filter(|t| crate::tenant::is_valid_name(t))
}

/// `gk:{sha256_hex(gateway key)}` → [`GatewayKeyRecord`].
#[must_use]
pub fn gateway_key(sha256_hex: &str) -> String {
    format!("{GATEWAY_KEY_PREFIX}{sha256_hex}")
}

/// `oat:{tenant_id}:{server}:{credential_id}` → [`crate::oauth::records::AccessTokenRecord`]:
/// the cached access token of an `oauth2` server (TTL: until it expires, ≥ 60 s).
#[must_use]
pub fn oauth_token_key(tenant_id: &str, server: &str, credential_id: &str) -> String {
    format!("{OAUTH_TOKEN_PREFIX}{tenant_id}:{server}:{credential_id}")
}

/// The tenant's config as stored: secrets sealed.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StoredTenant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xai_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groq_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini_key: Option<String>,
    /// Azure `OpenAI`: the endpoint in clear, the key sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_openai: Option<StoredAzure>,
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, StoredServer>,
    #[serde(default)]
    pub allow_unmanaged_mcp_servers: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "UnknownRoutes::is_default")]
    pub unknown_routes: UnknownRoutes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAzure {
    pub endpoint: String,
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredServer {
    pub url: String,
    pub auth: StoredAuth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    pub require_approval: Approval,
    /// Absent means direct (records written before relays existed).
    #[serde(default, skip_serializing_if = "is_direct")]
    pub mode: McpMode,
    /// Workers service binding name (relay only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Present on per-user servers (closed sets, read strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<crate::tenant::users::PerUser>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_direct(mode: &McpMode) -> bool {
    *mode == McpMode::Direct
}

impl StoredServer {
    #[must_use]
    pub const fn mode(&self) -> McpMode {
        self.mode
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredAuth {
    None,
    Bearer {
        token: String,
    },
    /// `[name, envelope]` pairs, in the admin's order.
    Headers {
        headers: Vec<(String, String)>,
    },
    /// Client secret and refresh token sealed; tokens live with the credential's Durable Object.
    #[serde(rename = "oauth2")]
    OAuth2(Box<StoredOAuth>),
}

/// One gateway key of a tenant, as listed by the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    pub id: String,
    pub sha256: String,
    pub created_at: String,
    /// A user's key: the user it acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A tenant-wide key that may name a user in `mcpgate-user`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub act_as_users: bool,
}

/// `tenant:{id}`: the source of truth for a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantRecord {
    pub v: u32,
    pub tenant: StoredTenant,
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    pub updated_at: String,
}

/// `gk:{sha256}`: everything a request needs, in one read. Holds a copy of
/// the tenant config, rewritten whenever the tenant changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayKeyRecord {
    pub v: u32,
    pub tenant_id: String,
    pub key_id: String,
    pub sha256: String,
    pub tenant: StoredTenant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub act_as_users: bool,
}

/// AAD field path of a provider key (`providers.{config_key}.api_key`).
fn field_provider(p: Provider) -> &'static str {
    match p {
        Provider::OpenAi => "providers.openai.api_key",
        Provider::Anthropic => "providers.anthropic.api_key",
        Provider::Xai => "providers.xai.api_key",
        Provider::Groq => "providers.groq.api_key",
        Provider::Gemini => "providers.gemini.api_key",
        Provider::AzureOpenAi => "providers.azure_openai.api_key",
    }
}
fn field_token(server: &str) -> String {
    format!("mcp_servers.{server}.auth.token")
}
fn field_header(server: &str, header: &str) -> String {
    format!("mcp_servers.{server}.auth.headers.{header}")
}

/// Seals every secret of `tenant` under `key`, bound to `tenant_id`.
///
/// # Errors
/// [`CryptoError::Rng`] if no nonce can be drawn.
pub fn seal_tenant(key: &MasterKey, tenant_id: &str, tenant: &Tenant) -> Result<StoredTenant, CryptoError> {
    let seal = |field: &str, s: &crate::crypto::Secret| key.seal(&Aad::new(tenant_id, field), s);
    let mut out = StoredTenant {
        openai_key: tenant.openai_key.as_ref().map(|s| seal(field_provider(Provider::OpenAi), s)).transpose()?,
        anthropic_key: tenant
            .anthropic_key
            .as_ref()
            .map(|s| seal(field_provider(Provider::Anthropic), s))
            .transpose()?,
        xai_key: tenant.xai_key.as_ref().map(|s| seal(field_provider(Provider::Xai), s)).transpose()?,
        groq_key: tenant.groq_key.as_ref().map(|s| seal(field_provider(Provider::Groq), s)).transpose()?,
        gemini_key: tenant.gemini_key.as_ref().map(|s| seal(field_provider(Provider::Gemini), s)).transpose()?,
        azure_openai: tenant
            .azure_openai
            .as_ref()
            .map(|a| {
                Ok::<_, CryptoError>(StoredAzure {
                    endpoint: a.endpoint.clone(),
                    api_key: seal(field_provider(Provider::AzureOpenAi), &a.api_key)?,
                })
            })
            .transpose()?,
        mcp_servers: BTreeMap::new(),
        allow_unmanaged_mcp_servers: tenant.mcp.allow_unmanaged,
        rate_limit_rpm: tenant.rate_limit_rpm,
        unknown_routes: tenant.unknown_routes,
    };
    for (name, server) in &tenant.mcp.servers {
        let auth = match &server.auth {
            McpAuth::None => StoredAuth::None,
            McpAuth::Bearer(t) => StoredAuth::Bearer { token: seal(&field_token(name), t)? },
            McpAuth::Headers(h) => StoredAuth::Headers {
                headers: h.iter().map(|(n, v)| Ok((n.clone(), seal(&field_header(name, n), v)?))).collect::<Result<
                    _,
                    CryptoError,
                >>(
                )?,
            },
            McpAuth::OAuth2(c) => StoredAuth::OAuth2(Box::new(seal_oauth(key, tenant_id, name, c)?)),
        };
        out.mcp_servers.insert(
            name.clone(),
            StoredServer {
                url: server.url.clone(),
                auth,
                allowed_tools: server.allowed_tools.clone(),
                require_approval: server.require_approval,
                mode: server.mode,
                service: server.service.clone(),
                per_user: tenant.per_user.get(name).copied(),
            },
        );
    }
    Ok(out)
}

/// Which secrets of a tenant to open. Every MCP credential always (the
/// rewriters inject them and every answer is scrubbed of them); provider
/// keys as needed: the request path needs one, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// One provider's key.
    Provider(Provider),
    /// No provider key.
    McpOnly,
    /// Every secret (re-sealing).
    Everything,
}

/// Opens a stored tenant: the provider keys `open` names and every MCP credential.
///
/// # Errors
/// [`CryptoError::Open`] if any envelope fails (wrong `MASTER_KEY`, tampering).
pub fn open_tenant(
    key: &MasterKey,
    tenant_id: &str,
    stored: &StoredTenant,
    open: Opening,
) -> Result<Tenant, CryptoError> {
    let mut tenant = Tenant::default();
    let wants = |p: Provider| match open {
        Opening::Provider(one) => one == p,
        Opening::McpOnly => false,
        Opening::Everything => true,
    };
    for provider in Provider::ALL.into_iter().filter(|p| wants(*p)) {
        let open = |env: &str| key.open(&Aad::new(tenant_id, field_provider(provider)), env);
        match provider {
            Provider::OpenAi => tenant.openai_key = stored.openai_key.as_deref().map(open).transpose()?,
            Provider::Anthropic => tenant.anthropic_key = stored.anthropic_key.as_deref().map(open).transpose()?,
            Provider::Xai => tenant.xai_key = stored.xai_key.as_deref().map(open).transpose()?,
            Provider::Groq => tenant.groq_key = stored.groq_key.as_deref().map(open).transpose()?,
            Provider::Gemini => tenant.gemini_key = stored.gemini_key.as_deref().map(open).transpose()?,
            Provider::AzureOpenAi => {
                tenant.azure_openai = stored
                    .azure_openai
                    .as_ref()
                    .map(|a| {
                        Ok::<_, CryptoError>(AzureOpenAi { endpoint: a.endpoint.clone(), api_key: open(&a.api_key)? })
                    })
                    .transpose()?;
            }
        }
    }
    let mut servers = BTreeMap::new();
    for (name, s) in &stored.mcp_servers {
        servers.insert(name.clone(), open_server(key, tenant_id, name, s)?);
        if let Some(p) = s.per_user {
            tenant.per_user.insert(name.clone(), p);
        }
    }
    tenant.mcp = McpPolicy { servers, allow_unmanaged: stored.allow_unmanaged_mcp_servers };
    tenant.rate_limit_rpm = stored.rate_limit_rpm;
    tenant.unknown_routes = stored.unknown_routes;
    Ok(tenant)
}

/// Opens one stored MCP server of a tenant (the relay needs one, not all).
///
/// # Errors
/// [`CryptoError::Open`] if an envelope fails.
pub fn open_server(key: &MasterKey, tenant_id: &str, name: &str, s: &StoredServer) -> Result<McpServer, CryptoError> {
    let open = |field: &str, env: &str| key.open(&Aad::new(tenant_id, field), env);
    let auth = match &s.auth {
        StoredAuth::None => McpAuth::None,
        StoredAuth::Bearer { token } => McpAuth::Bearer(open(&field_token(name), token)?),
        StoredAuth::Headers { headers } => McpAuth::Headers(
            headers
                .iter()
                .map(|(n, e)| Ok((n.clone(), open(&field_header(name, n), e)?)))
                .collect::<Result<_, CryptoError>>()?,
        ),
        StoredAuth::OAuth2(o) => McpAuth::OAuth2(Box::new(open_oauth(key, tenant_id, name, o)?)),
    };
    let require_approval = s.require_approval;
    Ok(McpServer {
        url: s.url.clone(),
        auth,
        allowed_tools: s.allowed_tools.clone(),
        require_approval,
        mode: s.mode(),
        service: s.service.clone(),
    })
}

/// Whether the stored tenant has a key for the provider, without decrypting it.
#[must_use]
pub fn has_provider_key(stored: &StoredTenant, provider: Provider) -> bool {
    match provider {
        Provider::OpenAi => stored.openai_key.is_some(),
        Provider::Anthropic => stored.anthropic_key.is_some(),
        Provider::Xai => stored.xai_key.is_some(),
        Provider::Groq => stored.groq_key.is_some(),
        Provider::Gemini => stored.gemini_key.is_some(),
        Provider::AzureOpenAi => stored.azure_openai.is_some(),
    }
}

/// The admin view of a tenant: the input shape, every secret `"[redacted]"`.
#[must_use]
pub fn redacted_view(tenant_id: &str, stored: &StoredTenant) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut providers = Map::new();
    if stored.openai_key.is_some() {
        providers.insert("openai".into(), json!({ "api_key": REDACTED }));
    }
    for p in [Provider::Anthropic, Provider::Xai, Provider::Groq, Provider::Gemini] {
        if has_provider_key(stored, p) {
            providers.insert(p.spec().config_key.into(), json!({ "api_key": REDACTED }));
        }
    }
    if let Some(a) = &stored.azure_openai {
        providers.insert(
            Provider::AzureOpenAi.spec().config_key.into(),
            json!({ "endpoint": a.endpoint, "api_key": REDACTED }),
        );
    }
    let mut servers = Map::new();
    for (name, s) in &stored.mcp_servers {
        let auth = match &s.auth {
            StoredAuth::None => json!({"type": "none"}),
            StoredAuth::Bearer { .. } => json!({"type": "bearer", "token": REDACTED}),
            StoredAuth::Headers { headers } => {
                let h: Map<String, Value> = headers.iter().map(|(n, _)| (n.clone(), Value::from(REDACTED))).collect();
                json!({"type": "headers", "headers": h})
            }
            StoredAuth::OAuth2(o) => redacted_oauth(o),
        };
        let mut server = Map::new();
        server.insert("url".into(), Value::from(s.url.clone()));
        server.insert("auth".into(), auth);
        if let Some(t) = &s.allowed_tools {
            server.insert("allowed_tools".into(), json!(t));
        }
        server.insert("require_approval".into(), Value::from(s.require_approval.as_str()));
        server.insert("mode".into(), Value::from(s.mode().as_str()));
        if let Some(service) = &s.service {
            server.insert("service".into(), Value::from(service.clone()));
        }
        if let Some(p) = &s.per_user {
            server.insert("per_user".into(), Value::from(true));
            server.insert("on_missing".into(), Value::from(p.on_missing.as_str()));
            if let Some(auth) = server.get_mut("auth").and_then(Value::as_object_mut) {
                if p.credential != crate::tenant::users::UserCredentialKind::OAuth2 {
                    auth.clear();
                    auth.insert("type".into(), Value::from(p.credential.as_str()));
                }
            }
        }
        servers.insert(name.clone(), Value::Object(server));
    }
    json!({
        "id": tenant_id,
        "providers": providers,
        "mcp_servers": servers,
        "allow_unmanaged_mcp_servers": stored.allow_unmanaged_mcp_servers,
        "rate_limit": stored.rate_limit_rpm.map(|n| json!({"requests_per_minute": n})),
        "unknown_routes": stored.unknown_routes,
    })
}

/// A write the admin API must perform, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Put { key: String, value: String },
    Delete { key: String },
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serializing these plain records cannot fail (string keys, no floats).
    serde_json::to_string(v).unwrap_or_default()
}

fn key_record(tenant_id: &str, entry: &KeyEntry, tenant: &StoredTenant) -> KvOp {
    KvOp::Put {
        key: gateway_key(&entry.sha256),
        value: to_json(&GatewayKeyRecord {
            v: RECORD_VERSION,
            tenant_id: tenant_id.to_string(),
            key_id: entry.id.clone(),
            sha256: entry.sha256.clone(),
            tenant: tenant.clone(),
            user: entry.user.clone(),
            act_as_users: entry.act_as_users,
        }),
    }
}

/// Writes for `PUT /admin/tenants/{id}`: the tenant record, then every key's
/// denormalized copy. Keys survive a replace.
#[must_use]
pub fn plan_put_tenant(
    tenant_id: &str,
    existing: Option<TenantRecord>,
    tenant: StoredTenant,
    now: &str,
) -> (TenantRecord, Vec<KvOp>) {
    let keys = existing.map(|r| r.keys).unwrap_or_default();
    let record = TenantRecord { v: RECORD_VERSION, tenant, keys, updated_at: now.to_string() };
    let mut ops = vec![KvOp::Put { key: tenant_key(tenant_id), value: to_json(&record) }];
    ops.extend(record.keys.iter().map(|k| key_record(tenant_id, k, &record.tenant)));
    (record, ops)
}

/// Writes that store `record` as it is (its secrets re-sealed) and rewrite
/// every key's copy from it; `updated_at` is kept: the config did not change.
#[must_use]
pub fn plan_rewrite(tenant_id: &str, record: &TenantRecord) -> Vec<KvOp> {
    let mut ops = vec![KvOp::Put { key: tenant_key(tenant_id), value: to_json(record) }];
    ops.extend(record.keys.iter().map(|k| key_record(tenant_id, k, &record.tenant)));
    ops
}

/// Writes for `DELETE /admin/tenants/{id}`: key records first, so no key
/// outlives its tenant even if a later write fails.
#[must_use]
pub fn plan_delete_tenant(tenant_id: &str, existing: &TenantRecord) -> Vec<KvOp> {
    let mut ops: Vec<KvOp> = existing.keys.iter().map(|k| KvOp::Delete { key: gateway_key(&k.sha256) }).collect();
    ops.push(KvOp::Delete { key: tenant_key(tenant_id) });
    ops
}

/// Writes for `POST /admin/tenants/{id}/keys`.
#[must_use]
pub fn plan_add_key(tenant_id: &str, mut record: TenantRecord, entry: KeyEntry, now: &str) -> Vec<KvOp> {
    let key_op = key_record(tenant_id, &entry, &record.tenant);
    record.keys.push(entry);
    record.updated_at = now.to_string();
    vec![key_op, KvOp::Put { key: tenant_key(tenant_id), value: to_json(&record) }]
}

/// Writes for `DELETE /admin/tenants/{id}/keys/{key_id}`; `None` if the key is not this tenant's.
#[must_use]
pub fn plan_remove_key(tenant_id: &str, mut record: TenantRecord, key_id: &str, now: &str) -> Option<Vec<KvOp>> {
    let pos = record.keys.iter().position(|k| k.id == key_id)?;
    let entry = record.keys.remove(pos);
    record.updated_at = now.to_string();
    Some(vec![
        KvOp::Delete { key: gateway_key(&entry.sha256) },
        KvOp::Put { key: tenant_key(tenant_id), value: to_json(&record) },
    ])
}

#[cfg(test)]
mod tests;
