//! The provider's answer on its way back to the client: passed through
//! untouched when nothing must watch it; read whole, metered and scrubbed in
//! one pass when it is a JSON answer of known, bounded length; otherwise
//! streamed through the guard (SSE framing and error events, scrubbing,
//! metering). Each way writes the request's one log line and meters it once.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Response};

use super::gateway::{emit, Call, Handled, DEFAULT_IDLE_MS};
use super::meter;
use super::stream::{GuardOptions, SharedMeter};
use super::upstream;
use super::{env, header_pairs};
use crate::crypto::Secret;
use crate::http::error::GatewayError;
use crate::http::headers::{client_response_headers, get};
use crate::http::log::{Outcome, RequestLog};
use crate::provider::routes::reports_usage;
use crate::stream::scrub::Scrubber;
use crate::stream::sse::{error_event, Interruption, SseKind};
use crate::stream::usage::{BodyKind, Usage, UsageMeter};

/// A JSON answer up to this size, with its length declared, is read whole
/// and scrubbed and metered in one pass instead of streamed through the guard
/// (no stream, no per-chunk calls into wasm, no completion callback).
const BUFFERED_JSON_MAX: u64 = 4 * 1024 * 1024;

/// What the answer's log line and meter need once it has ended.
struct Accounting {
    tenant_id: String,
    /// Usage counts for the user the request acted for, too.
    user_hash: Option<String>,
    metered: bool,
    started: u64,
}

impl Accounting {
    /// Writes the log line and adds the usage, once the answer has ended.
    fn close(&self, ctx: &Context, env: &worker::Env, log: &mut RequestLog, usage: &Usage) {
        if self.metered {
            log.input_tokens = Some(usage.input_tokens);
            log.output_tokens = Some(usage.output_tokens);
            log.mcp_tool_calls = Some(usage.mcp_calls.values().sum());
        }
        emit(log, self.started);
        meter::add(ctx, env, &self.tenant_id, self.user_hash.as_deref(), usage);
    }
}

fn one_request() -> Usage {
    Usage { requests: 1, ..Usage::default() }
}

pub(super) async fn answer(
    call: &Call<'_>,
    ctx: &Context,
    upstream: Response,
    secrets: &[Secret],
    log: &mut RequestLog,
    started: u64,
) -> Result<Handled, GatewayError> {
    let Call { env, route, record, user, .. } = *call;
    let status = upstream.status_code();
    log.upstream_status = Some(status);
    log.status = status;
    let up_headers = header_pairs(upstream.headers());
    let out_headers = client_response_headers(&up_headers);
    let sse = SseKind::of(route.provider, &route.upstream_path, get(&up_headers, "content-type"));
    let scrubber = Scrubber::for_body(secrets.iter().map(Secret::expose), sse);
    let out_headers = match &scrubber {
        Some(s) => s.scrub_headers(&out_headers),
        None => out_headers,
    };
    let acct = Accounting {
        tenant_id: record.tenant_id.clone(),
        user_hash: user.map(crate::tenant::users::UserId::hash),
        metered: (200..300).contains(&status) && reports_usage(route.provider, route.method, &route.upstream_path),
        started,
    };
    let declared = get(&up_headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if sse.is_none() && scrubber.is_none() && !acct.metered {
        log.bytes_out = declared.unwrap_or(0);
        meter::add(ctx, env, &acct.tenant_id, acct.user_hash.as_deref(), &one_request());
        let (_, body) = upstream.into_parts();
        return Ok(Handled::Plain(upstream::respond(status, &out_headers, body, None)));
    }
    if sse.is_none() && declared.is_some_and(|n| n <= BUFFERED_JSON_MAX) {
        return whole(call, ctx, upstream, scrubber, out_headers, &acct, log).await;
    }
    Ok(guarded(call, ctx, upstream, sse, scrubber, &out_headers, acct, log))
}

/// A JSON answer read whole: metered on the provider's bytes, then scrubbed.
async fn whole(
    call: &Call<'_>,
    ctx: &Context,
    upstream: Response,
    scrubber: Option<Scrubber>,
    out_headers: Vec<(String, String)>,
    acct: &Accounting,
    log: &mut RequestLog,
) -> Result<Handled, GatewayError> {
    let status = upstream.status_code();
    let idle_ms = env::stream_idle_ms(call.env).unwrap_or(DEFAULT_IDLE_MS);
    let bytes = match upstream::read_whole(upstream, idle_ms).await {
        Ok(bytes) => bytes,
        Err(outcome) => {
            log.outcome = outcome;
            return Err(GatewayError::UpstreamUnreachable { what: call.route.provider.label().to_string() });
        }
    };
    let usage = if acct.metered {
        let mut m = UsageMeter::new(BodyKind::Json);
        m.push(&bytes);
        m.finish()
    } else {
        one_request()
    };
    let body = match scrubber {
        Some(mut s) => {
            let mut out = s.push(&bytes);
            out.extend(s.finish());
            out
        }
        None => bytes,
    };
    log.outcome = Outcome::Completed;
    log.bytes_out = body.len() as u64;
    acct.close(ctx, call.env, log, &usage);
    // The runtime sets the length of a fixed body (scrubbing may change it).
    let headers: Vec<_> = out_headers.into_iter().filter(|(n, _)| n != "content-length").collect();
    Ok(Handled::Logged(upstream::respond(status, &headers, worker::ResponseBody::Body(body), None)))
}

/// A streamed answer through the guard; the log line and the meter wait for its end.
#[allow(clippy::too_many_arguments)]
fn guarded(
    call: &Call<'_>,
    ctx: &Context,
    upstream: Response,
    sse: Option<SseKind>,
    scrubber: Option<Scrubber>,
    out_headers: &[(String, String)],
    acct: Accounting,
    log: &RequestLog,
) -> Handled {
    let Call { env, req, route, .. } = *call;
    let status = upstream.status_code();
    let (_, body) = upstream.into_parts();
    let idle_ms = env::stream_idle_ms(env).unwrap_or(DEFAULT_IDLE_MS);
    let what = route.provider.label();
    // Only an event stream ends with an error event; a JSON answer never sends one.
    let (reset_event, stall_event) = sse.map_or_else(Default::default, |kind| {
        (error_event(kind, what, Interruption::Reset), error_event(kind, what, Interruption::Stalled { idle_ms }))
    });
    let body_kind = if sse.is_some() { BodyKind::Sse } else { BodyKind::Json };
    let usage_meter: Option<SharedMeter> =
        acct.metered.then(|| Rc::new(RefCell::new(Some(UsageMeter::new(body_kind)))));
    let meter_for_done = usage_meter.clone();
    let log_cell = RefCell::new(log.clone());
    let js_ctx: &worker::worker_sys::Context = ctx.as_ref();
    let js_ctx: &wasm_bindgen::JsValue = js_ctx.as_ref();
    let ctx_done = Context::new(wasm_bindgen::JsCast::unchecked_into(js_ctx.clone()));
    let env_done = env.clone();
    let opts = GuardOptions {
        sse: sse.is_some(),
        idle_ms,
        reset_event,
        stall_event,
        scrubber,
        meter: usage_meter,
        client_signal: js_sys::Reflect::get(req.inner(), &wasm_bindgen::JsValue::from_str("signal"))
            .unwrap_or_default(),
        done: Box::new(move |outcome: String, bytes_out: f64| {
            let mut l = log_cell.borrow_mut();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                l.bytes_out = bytes_out as u64;
            }
            l.outcome = Outcome::from_guard(&outcome);
            if let Some(class) = l.outcome.error_class() {
                l.error_class = Some(class);
            }
            let usage = meter_for_done.and_then(|m| m.borrow_mut().take()).map_or_else(one_request, UsageMeter::finish);
            acct.close(&ctx_done, &env_done, &mut l, &usage);
        }),
    };
    Handled::Logged(upstream::respond(status, out_headers, body, Some((opts, ctx))))
}
