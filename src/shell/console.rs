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
    let mut pairs = vec![("content-type".to_string(), content_type(path).to_string())];
    pairs.extend(console_headers().iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
    let headers = super::new_headers(&pairs).map_err(|_| super::internal("console headers are invalid"))?;
    let answer = wasm_bindgen_futures::JsFuture::from(serve_asset(env.as_ref(), ASSETS_BINDING, path, &headers.0))
        .await
        .map_err(|_| super::internal("reading a static asset failed (is the ASSETS binding configured?)"))?;
    if answer.is_null() {
        return Err(super::internal("a console asset is missing (was the console built?)"));
    }
    Ok(Response::from(web_sys::Response::from(answer)))
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/js/assets.js")]
extern "C" {
    #[wasm_bindgen(js_name = serveAsset)]
    fn serve_asset(
        env: &wasm_bindgen::JsValue,
        binding: &str,
        path: &str,
        headers: &web_sys::Headers,
    ) -> js_sys::Promise;
}
