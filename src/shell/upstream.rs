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
    fetch(&request, Via::Internet, out.timeout_ms, out.what).await
}

/// The one fetch with a deadline for every upstream (providers, MCP servers
/// by URL or service binding, OAuth endpoints): the request carries an abort
/// signal that fires when no response headers arrived within `timeout_ms`,
/// so a timed-out call never keeps running. 502 when the upstream cannot be
/// reached, 504 on the deadline.
pub async fn fetch(request: &Request, via: Via<'_>, timeout_ms: u64, what: &str) -> Result<Response, GatewayError> {
    let controller = AbortController::default();
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    let request = web_sys::Request::new_with_request_and_init(request.inner(), &init)
        .map(Request::from)
        .map_err(|_| super::internal("building the upstream request failed"))?;
    let timer = std::pin::pin!(Delay::from(std::time::Duration::from_millis(timeout_ms)));
    // `None`: the deadline came first.
    let sent = match via {
        Via::Internet => {
            let fetch = Fetch::Request(request);
            let sending = std::pin::pin!(fetch.send());
            match select(sending, timer).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            }
        }
        Via::Service(fetcher) => {
            let sending = std::pin::pin!(fetcher.fetch_request(request));
            match select(sending, timer).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            }
        }
    };
    match sent {
        Some(Ok(resp)) => Ok(resp),
        Some(Err(_)) => Err(GatewayError::UpstreamUnreachable { what: what.to_string() }),
        None => {
            controller.abort();
            Err(GatewayError::UpstreamTimeout { what: what.to_string() })
        }
    }
}

/// The whole body of an answer; the outcome instead when the provider broke
/// off or sent nothing for `idle_ms`.
pub async fn read_whole(mut resp: Response, idle_ms: u64) -> Result<Vec<u8>, crate::http::log::Outcome> {
    let timer = std::pin::pin!(Delay::from(std::time::Duration::from_millis(idle_ms)));
    let reading = std::pin::pin!(resp.bytes());
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
