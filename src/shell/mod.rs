//! The worker-facing shell: the fetch entry point and thin I/O adapters.
//! Only this module tree imports `worker`. Every failure becomes a
//! [`GatewayError`] response here; no `Err` escapes `#[event(fetch)]`.

mod admin;
mod env;
mod gateway;
mod kv;
mod meter;
mod stream;
mod upstream;

use worker::{event, Context, Env, Request, Response};

use crate::error::{GatewayError, Shape};

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
    h.entries().collect()
}

/// Logs an internal failure without secrets: callers pass only our own words.
pub(crate) fn internal(context: &str) -> GatewayError {
    worker::console_error!("{{\"level\":\"error\",\"msg\":\"{}\"}}", context);
    GatewayError::Internal { message: context.to_string() }
}
