//! Outbound fetch to a provider, and the streamed answer back.
//!
//! The response body is the fetched `ReadableStream` itself (bytes flow from
//! provider to client inside the runtime, never through wasm) unless the
//! gateway must watch it, in which case `stream::guard` wraps it.

use futures_util::future::{select, Either};
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response, ResponseBody,
    ResponseBuilder,
};

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

/// Sends the request; 502 if the upstream cannot be reached, 504 if it
/// sends no headers within the timeout (the fetch is then aborted).
pub async fn send(out: Outbound<'_>) -> Result<Response, GatewayError> {
    let mut init = RequestInit::new();
    init.with_method(Method::from(out.method.to_string()))
        .with_headers(to_headers(&out.headers)?)
        .with_redirect(RequestRedirect::Manual);
    match out.body {
        Body::None => {}
        Body::Bytes(b) => {
            init.with_body(Some(JsValue::from(js_sys::Uint8Array::from(b.as_slice()))));
        }
        Body::Stream(s) => {
            init.with_body(Some(JsValue::from(s)));
        }
    }
    let request =
        Request::new_with_init(out.url, &init).map_err(|_| super::internal("building the upstream request failed"))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = std::pin::pin!(fetch.send_with_signal(&signal));
    let timer = std::pin::pin!(Delay::from(std::time::Duration::from_millis(out.timeout_ms)));
    match select(sending, timer).await {
        Either::Left((Ok(resp), _)) => Ok(resp),
        Either::Left((Err(_), _)) => Err(GatewayError::UpstreamUnreachable { what: out.what.to_string() }),
        Either::Right(((), _)) => {
            controller.abort();
            Err(GatewayError::UpstreamTimeout { what: out.what.to_string() })
        }
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
