//! `/admin/maintenance/reseal`: master-key rotation without downtime.
//!
//! `POST ?cursor=&limit=` re-seals a page of tenants under the current
//! `MASTER_KEY`: each tenant record, every `gk:` copy of it and the Durable
//! Object state of each of its OAuth credentials. `GET` with the same
//! parameters counts, per key, what is sealed where, writing nothing. Both
//! answer with the next `cursor` (null when the walk is done), so a caller
//! loops until then; a page can be repeated safely. Plaintext never leaves
//! the worker: records are opened and sealed in memory.

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Env, Request, Response};

use super::{env, kv};
use crate::crypto::MasterKey;
use crate::http::error::GatewayError;
use crate::http::route::query_param;
use crate::tenant::reseal::{envelopes, reseal_tenant, SealCount};
use crate::tenant::storage::{self, GatewayKeyRecord, TenantRecord};

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

/// What one tenant's pass found and did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TenantReport {
    /// Envelopes by key before the pass: tenant record, key copies, OAuth state.
    pub before: SealCount,
    pub tenant_records: u64,
    pub gateway_key_records: u64,
    pub oauth_states: u64,
}

/// Counts and (with `write`) re-seals one tenant's records. A tenant that no
/// longer exists yields an empty report. Callers serialize this with every
/// other write of the tenant.
pub async fn reseal_tenant_records(
    env: &Env,
    master: &MasterKey,
    tenant: &str,
    write: bool,
) -> Result<TenantReport, GatewayError> {
    let store = kv::store(env)?;
    let Some(mut record): Option<TenantRecord> = kv::get_json(&store, &storage::tenant_key(tenant)).await? else {
        return Ok(TenantReport::default());
    };
    let mut report = TenantReport::default();
    report.before.merge(&SealCount::of(master, envelopes(&record.tenant)));
    let mut copies_stale = false;
    for k in &record.keys {
        let copy: Option<GatewayKeyRecord> = kv::get_json(&store, &storage::gateway_key(&k.sha256)).await?;
        if let Some(copy) = copy {
            let c = SealCount::of(master, envelopes(&copy.tenant));
            copies_stale |= c.not_current() > 0;
            report.before.merge(&c);
        }
    }
    let (oauth, oauth_rewritten) = super::oauth::reseal_credentials(env, tenant, &record.tenant, write).await?;
    report.before.merge(&oauth);
    report.oauth_states = oauth_rewritten;
    if !write {
        return Ok(report);
    }
    let resealed = reseal_tenant(master, tenant, &record.tenant).map_err(|_| GatewayError::Internal {
        message: "a secret of this tenant opens under neither MASTER_KEY nor MASTER_KEY_PREVIOUS".into(),
    })?;
    let changed = resealed.is_some();
    if let Some(new) = resealed {
        record.tenant = new;
    }
    if changed || copies_stale {
        kv::apply(&store, storage::plan_rewrite(tenant, &record)).await?;
        report.tenant_records = u64::from(changed);
        report.gateway_key_records = record.keys.len() as u64;
    }
    Ok(report)
}

/// Our own words for a failure (internal errors included: they name no secret).
fn reason(e: &GatewayError) -> String {
    match e {
        GatewayError::Internal { message } => message.clone(),
        other => other.message(),
    }
}

fn page_params(url: &str) -> Result<(Option<String>, u64), GatewayError> {
    let cursor = query_param(url, "cursor").filter(|c| !c.is_empty());
    let limit = match query_param(url, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.trim().parse::<u64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            GatewayError::bad_param("limit", format!("'limit' must be a whole number from 1 to {MAX_LIMIT}."))
        })?,
    };
    Ok((cursor, limit))
}

/// `GET`/`POST /admin/maintenance/reseal`.
pub async fn handle(req: &Request, env: &Env, write: bool) -> Result<Response, GatewayError> {
    let (cursor, limit) = page_params(&req.inner().url())?;
    let master = env::master_key(env)?;
    let store = kv::store(env)?;
    let mut list = store.list().prefix(storage::tenant_list_prefix().to_string()).limit(limit);
    if let Some(c) = cursor {
        list = list.cursor(c);
    }
    let page = list
        .execute()
        .await
        .map_err(|_| GatewayError::bad_param("cursor", "'cursor' is not a cursor this endpoint returned."))?;
    let mut sealed = SealCount::default();
    let (mut tenants, mut records, mut keys, mut states) = (0u64, 0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    for key in &page.keys {
        let Some(tenant) = storage::tenant_id_of_key(&key.name) else { continue };
        tenants += 1;
        match super::writer::reseal(env, tenant, write).await {
            Ok(r) => {
                sealed.merge(&r.before);
                records += r.tenant_records;
                keys += r.gateway_key_records;
                states += r.oauth_states;
            }
            Err(e) => errors.push(json!({"tenant_id": tenant, "message": reason(&e)})),
        }
    }
    let next = if page.list_complete { None } else { page.cursor.filter(|c| !c.is_empty()) };
    let mut body = json!({
        "key_id": master.key_id(),
        "previous_key_id": master.previous_key_id(),
        "tenants": tenants,
        "sealed": sealed,
        "not_current": sealed.not_current(),
        "errors": errors,
        "cursor": next,
        "done": next.is_none(),
    });
    if write {
        body["resealed"] = json!({"tenant_records": records, "gateway_key_records": keys, "oauth_states": states});
    }
    let headers = worker::Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", "no-store");
    Ok(Response::builder().with_status(200).with_headers(headers).fixed(body.to_string().into_bytes()))
}
