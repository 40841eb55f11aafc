//! Thin adapter over the `GATEWAY_KV` binding. Keys come from `kv_schema` only.

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
