//! The worker-facing shell: the fetch entry point and thin I/O adapters.
//! Only this module tree imports `worker`. Every failure becomes a
//! [`GatewayError`] response here; no `Err` escapes `#[event(fetch)]`.

mod admin;
mod answer;
mod body;
mod clock;
mod console;
mod env;
mod gateway;
mod kv;
mod maintenance;
mod meter;
mod oauth;
mod relay;
mod stream;
mod upstream;
mod users;
mod writer;

use worker::{event, Context, Env, Request, Response};

use crate::http::error::{GatewayError, Shape};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(gateway::handle(req, &env, &ctx).await)
}

/// Renders a gateway error in the route's shape. Internal details were
/// logged by whoever raised it; the client sees only the safe message.
pub(crate) fn error_response(e: &GatewayError, shape: Shape) -> Response {
    let headers = worker::Headers::new();
    for (k, v) in e.headers() {
        let _ = headers.set(k, &v);
    }
    Response::builder().with_status(e.wire().status).with_headers(headers).fixed(e.body(shape))
}

/// Collects a JS `Headers` into lowercase `(name, value)` pairs.
pub(crate) fn header_pairs(h: &worker::Headers) -> Vec<(String, String)> {
    let flat = flatten_headers(&h.0);
    let mut parts = flat.split('\0');
    let mut out = Vec::with_capacity(16);
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        out.push((k.to_string(), v.to_string()));
    }
    out
}

/// A new mutable `Headers` from pairs, in one boundary crossing.
///
/// # Errors
/// If a name or value is invalid (the runtime throws).
pub(crate) fn new_headers(pairs: &[(String, String)]) -> Result<worker::Headers, wasm_bindgen::JsValue> {
    let mut flat = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (k, v) in pairs {
        flat.push_str(k);
        flat.push('\0');
        flat.push_str(v);
        flat.push('\0');
    }
    build_headers(&flat).map(worker::Headers)
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/js/headers.js")]
extern "C" {
    #[wasm_bindgen(js_name = flattenHeaders)]
    fn flatten_headers(h: &web_sys::Headers) -> String;
    #[wasm_bindgen(js_name = buildHeaders, catch)]
    fn build_headers(flat: &str) -> Result<web_sys::Headers, wasm_bindgen::JsValue>;
}

/// Logs an internal failure without secrets: callers pass only our own words.
pub(crate) fn internal(context: &str) -> GatewayError {
    worker::console_error!("{{\"level\":\"error\",\"msg\":\"{}\"}}", context);
    GatewayError::Internal { message: context.to_string() }
}
