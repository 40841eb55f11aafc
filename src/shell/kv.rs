//! Thin adapter over the `GATEWAY_KV` binding. Keys come from `tenant::storage` only.

use serde::de::DeserializeOwned;
use worker::{kv::KvStore, Env};

use crate::http::error::GatewayError;
use crate::tenant::storage::KvOp;

pub fn store(env: &Env) -> Result<KvStore, GatewayError> {
    env.kv(super::env::KV_BINDING).map_err(|_| super::internal("KV binding GATEWAY_KV is missing"))
}

pub async fn get_json<T: DeserializeOwned>(kv: &KvStore, key: &str) -> Result<Option<T>, GatewayError> {
    let text = kv.get(key).text().await.map_err(|_| super::internal("KV read failed"))?;
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t).map(Some).map_err(|_| super::internal("KV record does not parse")),
    }
}

pub async fn apply(kv: &KvStore, ops: Vec<KvOp>) -> Result<(), GatewayError> {
    for op in ops {
        match op {
            KvOp::Put { key, value } => kv
                .put(&key, value)
                .map_err(|_| super::internal("KV write failed"))?
                .execute()
                .await
                .map_err(|_| super::internal("KV write failed"))?,
            KvOp::Delete { key } => kv.delete(&key).await.map_err(|_| super::internal("KV delete failed"))?,
        }
    }
    Ok(())
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

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/js/kv_list.js")]
extern "C" {
    #[wasm_bindgen(js_name = listKeys)]
    fn list_keys(env: &wasm_bindgen::JsValue, binding: &str, prefix: &str, limit: u32, cursor: &str)
        -> js_sys::Promise;
}
