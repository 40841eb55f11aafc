//! The admin console and the OpenAPI document: static files from the
//! `ASSETS` binding (Workers static assets), served with the console's
//! headers. The worker runs first for every request, so these files are
//! reachable only through the routes the worker knows.

use worker::{Env, Response};

use crate::http::console::{console_headers, content_type};
use crate::http::error::GatewayError;
use crate::http::route::ConsoleAsset;

const ASSETS_BINDING: &str = "ASSETS";
const OPENAPI_PATH: &str = "/admin/openapi.json";

/// `GET /admin/`, `/admin/console.js`, `/admin/console.css`.
pub async fn serve(env: &Env, asset: ConsoleAsset) -> Result<Response, GatewayError> {
    fetch_asset(env, asset.asset_path()).await
}

/// `GET /admin/openapi.json` (admin token checked by the caller).
pub async fn openapi(env: &Env) -> Result<Response, GatewayError> {
    fetch_asset(env, OPENAPI_PATH).await
}

async fn fetch_asset(env: &Env, path: &str) -> Result<Response, GatewayError> {
    let assets = env.assets(ASSETS_BINDING).map_err(|_| super::internal("ASSETS binding is missing"))?;
    // The assets binding resolves the path only; the host is a placeholder.
    let mut resp = assets
        .fetch(format!("https://assets.invalid{path}"), None)
        .await
        .map_err(|_| super::internal("reading a static asset failed"))?;
    if resp.status_code() != 200 {
        return Err(super::internal("a console asset is missing (was the console built?)"));
    }
    let body = resp.bytes().await.map_err(|_| super::internal("reading a static asset failed"))?;
    let headers = worker::Headers::new();
    let _ = headers.set("content-type", content_type(path));
    for (k, v) in console_headers() {
        let _ = headers.set(k, v);
    }
    Ok(Response::builder().with_status(200).with_headers(headers).fixed(body))
}
