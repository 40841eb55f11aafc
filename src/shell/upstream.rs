//! Outbound fetch to a provider, and the streamed answer back.
//!
//! The response body is the fetched `ReadableStream` itself (bytes flow from
//! provider to client inside the runtime, never through wasm) unless the
//! gateway must watch it, in which case `stream::guard` wraps it.

use futures_util::future::{select, Either};
use wasm_bindgen::{JsCast, JsValue};
use worker::{Delay, Headers, Request, Response, ResponseBody, ResponseBuilder};

use super::stream::{guard, GuardOptions};
use crate::http::error::GatewayError;

/// What goes up as the request body.
pub enum Body {
    None,
    Bytes(Vec<u8>),
    Stream(web_sys::ReadableStream),
}

pub struct Outbound<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Longest wait for the response headers.
    pub timeout_ms: u64,
    /// How errors name the upstream ("the OpenAI API").
    pub what: &'a str,
}

pub fn to_headers(pairs: &[(String, String)]) -> Result<Headers, GatewayError> {
    super::new_headers(pairs).map_err(|_| GatewayError::bad_request("A request header has an invalid name or value."))
}

/// How a request reaches its upstream.
pub enum Via<'a> {
    /// The internet (`fetch`).
    Internet,
    /// A Workers service binding (private MCP servers).
    Service(&'a worker::Fetcher),
}

/// Sends the request; 502 if the upstream cannot be reached, 504 if it
/// sends no headers within the timeout (the fetch is then aborted).
pub async fn send(out: Outbound<'_>) -> Result<Response, GatewayError> {
    let init = web_sys::RequestInit::new();
    init.set_method(out.method);
    init.set_headers(to_headers(&out.headers)?.as_ref());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    match out.body {
        Body::None => {}
        Body::Bytes(b) => init.set_body(&js_sys::Uint8Array::from(b.as_slice())),
        Body::Stream(s) => init.set_body(&s),
    }
    within(&JsValue::NULL, &JsValue::from_str(out.url), init, out.timeout_ms, out.what).await
}

/// The one fetch with a deadline for every upstream (providers, MCP servers
/// by URL or service binding, OAuth endpoints): the request carries an abort
/// signal that fires when no response headers arrived within `timeout_ms`,
/// so a timed-out call never keeps running. 502 when the upstream cannot be
/// reached, 504 on the deadline.
pub async fn fetch(request: &Request, via: Via<'_>, timeout_ms: u64, what: &str) -> Result<Response, GatewayError> {
    let target = match via {
        Via::Internet => JsValue::NULL,
        Via::Service(fetcher) => JsValue::from(fetcher.clone().into_rpc::<js_sys::Object>()),
    };
    within(&target, request.inner(), web_sys::RequestInit::new(), timeout_ms, what).await
}

async fn within(
    target: &JsValue,
    input: &JsValue,
    init: web_sys::RequestInit,
    timeout_ms: u64,
    what: &str,
) -> Result<Response, GatewayError> {
    #[allow(clippy::cast_precision_loss)]
    let sent = wasm_bindgen_futures::JsFuture::from(fetch_within(target, input, &init, timeout_ms as f64)).await;
    match sent {
        Ok(resp) => resp
            .dyn_into::<web_sys::Response>()
            .map(Response::from)
            .map_err(|_| GatewayError::UpstreamUnreachable { what: what.to_string() }),
        Err(e) if e.as_string().as_deref() == Some("timeout") => {
            Err(GatewayError::UpstreamTimeout { what: what.to_string() })
        }
        Err(_) => Err(GatewayError::UpstreamUnreachable { what: what.to_string() }),
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/js/fetch.js")]
extern "C" {
    #[wasm_bindgen(js_name = fetchWithin)]
    fn fetch_within(target: &JsValue, input: &JsValue, init: &web_sys::RequestInit, ms: f64) -> js_sys::Promise;
}

/// The whole body of an answer; the outcome instead when the provider broke
/// off or sent nothing for `idle_ms`.
/// Its declared length (the runtime enforces it) must have been checked by the caller.
pub async fn read_whole(resp: Response, idle_ms: u64) -> Result<Vec<u8>, crate::http::log::Outcome> {
    let (_, body) = resp.into_parts();
    let stream = match body {
        ResponseBody::Stream(s) => s,
        ResponseBody::Body(b) => return Ok(b),
        ResponseBody::Empty => return Ok(Vec::new()),
    };
    let timer = std::pin::pin!(Delay::from(std::time::Duration::from_millis(idle_ms)));
    // Read in the runtime in one go, then copied into wasm once.
    let reading = std::pin::pin!(super::stream::read_whole(stream));
    match select(reading, timer).await {
        Either::Left((Ok(bytes), _)) => Ok(bytes),
        Either::Left((Err(_), _)) => Err(crate::http::log::Outcome::UpstreamReset),
        Either::Right(_) => Err(crate::http::log::Outcome::UpstreamStalled),
    }
}

/// Builds the client response around the upstream body, guarded when asked.
pub fn respond(
    status: u16,
    headers: &[(String, String)],
    body: ResponseBody,
    guard_opts: Option<(GuardOptions, &worker::Context)>,
) -> Response {
    let h = super::new_headers(headers).unwrap_or_default();
    let builder = ResponseBuilder::new().with_status(status).with_headers(h);
    match (body, guard_opts) {
        (ResponseBody::Stream(s), Some((opts, ctx))) => {
            let (stream, finished) = guard(&s, opts);
            if let Some(p) = finished {
                ctx.wait_until(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
                });
            }
            builder.stream(stream)
        }
        (ResponseBody::Stream(s), None) => builder.stream(s),
        (ResponseBody::Body(b), _) => builder.fixed(b),
        (ResponseBody::Empty, _) => builder.empty(),
    }
}
