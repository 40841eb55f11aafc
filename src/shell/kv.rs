//! Thin adapter over the `GATEWAY_KV` binding. Keys come from `tenant::storage` only.

use serde::de::DeserializeOwned;
use worker::{kv::KvStore, Env};

use crate::http::error::GatewayError;
use crate::tenant::storage::KvOp;

pub fn store(env: &Env) -> Result<KvStore, GatewayError> {
    env.kv(super::env::KV_BINDING).map_err(|_| super::internal("KV binding GATEWAY_KV is missing"))
}

pub async fn get_json<T: DeserializeOwned>(kv: &KvStore, key: &str) -> Result<Option<T>, GatewayError> {
    record(kv.get(key).text().await.map_err(|_| super::internal("KV read failed"))?)
}

/// A stored JSON record, or `None` for a missing key.
fn record<T: DeserializeOwned>(text: Option<String>) -> Result<Option<T>, GatewayError> {
    text.map(|t| serde_json::from_str(&t).map_err(|_| super::internal("KV record does not parse"))).transpose()
}

/// One record by key, read in one call (the request path: no `KvStore`
/// wrapper is built for a single read).
pub async fn read_json<T: DeserializeOwned>(env: &Env, key: &str) -> Result<Option<T>, GatewayError> {
    let v = wasm_bindgen_futures::JsFuture::from(get_text(env.as_ref(), super::env::KV_BINDING, key))
        .await
        .map_err(|_| super::internal("KV read failed"))?;
    record(v.as_string())
}

async fn apply_one(kv: &KvStore, op: KvOp) -> Result<(), GatewayError> {
    match op {
        KvOp::Put { key, value } => kv
            .put(&key, value)
            .map_err(|_| super::internal("KV write failed"))?
            .execute()
            .await
            .map_err(|_| super::internal("KV write failed")),
        KvOp::Delete { key } => kv.delete(&key).await.map_err(|_| super::internal("KV delete failed")),
    }
}

/// Applies a plan. Every plan puts the op that must come last at its end
/// (the tenant record after its keys' records are gone, a key record before
/// the tenant lists it), so all ops but the last run concurrently, then the
/// last one: a tenant with many keys is rewritten in two round trips.
pub async fn apply(kv: &KvStore, mut ops: Vec<KvOp>) -> Result<(), GatewayError> {
    let Some(last) = ops.pop() else { return Ok(()) };
    let first = futures_util::future::join_all(ops.into_iter().map(|op| apply_one(kv, op))).await;
    first.into_iter().collect::<Result<Vec<()>, _>>()?;
    apply_one(kv, last).await
}

/// One page of the keys under `prefix`: `(names, next cursor, list complete)`.
/// A cursor KV rejects is the caller's mistake (400), not an outage.
pub async fn list(
    env: &Env,
    prefix: &str,
    limit: u32,
    cursor: Option<String>,
) -> Result<(Vec<String>, Option<String>, bool), GatewayError> {
    #[derive(serde::Deserialize)]
    struct Page {
        keys: Vec<String>,
        cursor: Option<String>,
        complete: bool,
    }
    let had_cursor = cursor.is_some();
    let promise = list_keys(env.as_ref(), super::env::KV_BINDING, prefix, limit, cursor.as_deref().unwrap_or(""));
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(text) => {
            let page: Page = text
                .as_string()
                .and_then(|t| serde_json::from_str(&t).ok())
                .ok_or_else(|| super::internal("KV list answer does not parse"))?;
            Ok((page.keys, page.cursor, page.complete))
        }
        Err(_) if had_cursor => Err(crate::tenant::listing::bad_cursor()),
        Err(_) => Err(super::internal("KV list failed")),
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/js/kv.js")]
extern "C" {
    #[wasm_bindgen(js_name = getText)]
    fn get_text(env: &wasm_bindgen::JsValue, binding: &str, key: &str) -> js_sys::Promise;

    #[wasm_bindgen(js_name = listKeys)]
    fn list_keys(env: &wasm_bindgen::JsValue, binding: &str, prefix: &str, limit: u32, cursor: &str)
        -> js_sys::Promise;
}
