//! Outbound HTTP of the OAuth flows: token endpoint, metadata documents,
//! client registration, the MCP server's challenge. Short timeouts (a token
//! refresh runs while the credential's Durable Object holds other requests),
//! no redirects followed. Bodies are read chunk by chunk and abandoned as
//! soon as they pass [`MAX_BODY`] (a declared `content-length` over it is
//! refused before reading) or the deadline passes: a hostile server cannot
//! make the gateway buffer or wait without bound. Nothing here logs a URL's
//! query, a header value or a body.

use crate::oauth::token::{parse_token_response, TokenFailure, TokenRequest, TokenSet};
use crate::shell::upstream::{self, Body, Outbound};

/// Longest wait for any OAuth-related answer, headers and body together.
const TIMEOUT_MS: u64 = 10_000;
/// Largest OAuth document or token response read.
const MAX_BODY: usize = 256 * 1024;

/// A whole answer.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends a request and reads the answer; `None` if unreachable, timed out or too large.
pub async fn fetch(method: &str, url: &str, headers: Vec<(String, String)>, body: Option<Vec<u8>>) -> Option<Fetched> {
    let started = now_ms();
    let resp = upstream::send(Outbound {
        method,
        url,
        headers,
        body: body.map_or(Body::None, Body::Bytes),
        timeout_ms: TIMEOUT_MS,
        what: "the OAuth server",
    })
    .await
    .ok()?;
    let status = resp.status_code();
    let headers = crate::shell::header_pairs(resp.headers());
    let declared = crate::http::headers::get(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return None;
    }
    let body = match resp.body() {
        worker::ResponseBody::Empty => Vec::new(),
        worker::ResponseBody::Body(b) if b.len() <= MAX_BODY => b.clone(),
        worker::ResponseBody::Body(_) => return None,
        worker::ResponseBody::Stream(s) => {
            let left = TIMEOUT_MS.saturating_sub(now_ms().saturating_sub(started)).max(1);
            let reading = std::pin::pin!(crate::shell::stream::read_limited(Some(s.clone()), MAX_BODY as u64));
            let timer = std::pin::pin!(worker::Delay::from(std::time::Duration::from_millis(left)));
            match futures_util::future::select(reading, timer).await {
                futures_util::future::Either::Left((Ok(b), _)) => b,
                // Over the limit, unreadable, or too slow: the rest is never read.
                futures_util::future::Either::Left((Err(_), _)) | futures_util::future::Either::Right(_) => {
                    return None
                }
            }
        }
    };
    Some(Fetched { status, headers, body })
}

/// `GET` a JSON document; the body of a 2xx answer.
pub async fn get_document(url: &str) -> Option<Vec<u8>> {
    let got = fetch("GET", url, vec![("accept".into(), "application/json".into())], None).await?;
    (200..300).contains(&got.status).then_some(got.body)
}

/// Sends a token request and classifies the answer.
pub async fn post_token(req: &TokenRequest) -> Result<TokenSet, TokenFailure> {
    let got = fetch("POST", &req.url, req.headers.clone(), Some(req.body.clone().into_bytes()))
        .await
        .ok_or(TokenFailure::Unreachable)?;
    parse_token_response(got.status, &got.body)
}

/// Milliseconds since the Unix epoch.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
