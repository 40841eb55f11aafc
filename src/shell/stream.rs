//! Wraps a fetched body in `guard.js` when the gateway must watch it (SSE
//! error events, scrubbing); otherwise the body stream is returned as is.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::ReadableStream;

use std::cell::RefCell;
use std::rc::Rc;

use crate::http::error::GatewayError;
use crate::stream::framer::MAX_EVENT;
use crate::stream::scrub::Scrubber;
use crate::stream::usage::UsageMeter;

#[wasm_bindgen(module = "/src/shell/js/guard.js")]
extern "C" {
    #[wasm_bindgen(js_name = guardBody)]
    fn guard_body(body: &ReadableStream, opts: &JsValue) -> ReadableStream;

    #[wasm_bindgen(js_name = readLimited)]
    fn read_limited_js(body: Option<ReadableStream>, limit: f64) -> js_sys::Promise;

    #[wasm_bindgen(js_name = readWhole)]
    fn read_whole_js(body: ReadableStream) -> js_sys::Promise;
}

// The SSE framer both JS modules import: naming it here makes wasm-bindgen
// ship it next to them.
#[wasm_bindgen(module = "/src/shell/js/sse.js")]
extern "C" {
    #[allow(dead_code)]
    type SseFramer;
}

/// The whole request body; 413 as soon as it exceeds `limit` bytes (without
/// reading the rest), 400 if it cannot be read.
pub async fn read_limited(body: Option<ReadableStream>, limit: u64) -> Result<Vec<u8>, GatewayError> {
    #[allow(clippy::cast_precision_loss)]
    let v = wasm_bindgen_futures::JsFuture::from(read_limited_js(body, limit as f64))
        .await
        .map_err(|_| GatewayError::bad_request("Could not read the request body."))?;
    if v.is_null() {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    Ok(js_sys::Uint8Array::new(&v).to_vec())
}

/// A body whose length the runtime enforces and the caller has bounded, in one read.
pub async fn read_whole(body: ReadableStream) -> Result<Vec<u8>, GatewayError> {
    let v = wasm_bindgen_futures::JsFuture::from(read_whole_js(body))
        .await
        .map_err(|_| GatewayError::bad_request("Could not read the body."))?;
    Ok(js_sys::Uint8Array::new(&v).to_vec())
}

/// A shared usage meter: the tap feeds it, the `done` callback reads it.
pub type SharedMeter = Rc<RefCell<Option<UsageMeter>>>;

/// What `guard.js` calls for each chunk: the meter sees the provider's
/// bytes, then the scrubber rewrites them. One chunk in, one chunk out.
#[wasm_bindgen]
pub struct Tap {
    scrubber: Option<Scrubber>,
    meter: Option<SharedMeter>,
}

#[wasm_bindgen]
impl Tap {
    /// `None`: the chunk goes out unchanged (no copy back across the boundary).
    pub fn push(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        if let Some(m) = &self.meter {
            if let Some(m) = m.borrow_mut().as_mut() {
                m.push(chunk);
            }
        }
        self.scrubber.as_mut().map(|s| s.push(chunk))
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.scrubber.as_mut().map(Scrubber::finish).unwrap_or_default()
    }

    /// What `push` returns is whole SSE events (framed here, so the guard
    /// need not frame again); the held partial event comes out of `finish`.
    #[wasm_bindgen(getter)]
    pub fn framed(&self) -> bool {
        self.scrubber.as_ref().is_some_and(Scrubber::frames_events)
    }

    /// Part of an over-long event went out and its end has not.
    #[wasm_bindgen(getter)]
    pub fn spilling(&self) -> bool {
        self.scrubber.as_ref().is_some_and(Scrubber::spilling)
    }
}

pub struct GuardOptions {
    pub sse: bool,
    pub idle_ms: u64,
    pub reset_event: String,
    pub stall_event: String,
    pub scrubber: Option<Scrubber>,
    pub meter: Option<SharedMeter>,
    /// The incoming request's `signal` (aborted when the client disconnects).
    pub client_signal: JsValue,
    /// Called once with the outcome and the bytes sent to the client.
    pub done: Box<dyn FnOnce(String, f64)>,
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// The guarded stream, and a promise that settles when it has ended (for `waitUntil`).
pub fn guard(body: &ReadableStream, opts: GuardOptions) -> (ReadableStream, Option<js_sys::Promise>) {
    let o = Object::new();
    set(&o, "sse", &JsValue::from_bool(opts.sse));
    #[allow(clippy::cast_precision_loss)]
    set(&o, "maxEvent", &JsValue::from_f64(MAX_EVENT as f64));
    #[allow(clippy::cast_precision_loss)]
    set(&o, "idleMs", &JsValue::from_f64(opts.idle_ms as f64));
    set(&o, "resetEvent", &JsValue::from_str(&opts.reset_event));
    set(&o, "stallEvent", &JsValue::from_str(&opts.stall_event));
    let tap = if opts.scrubber.is_none() && opts.meter.is_none() {
        JsValue::NULL
    } else {
        JsValue::from(Tap { scrubber: opts.scrubber, meter: opts.meter })
    };
    set(&o, "scrub", &tap);
    set(&o, "signal", &opts.client_signal);
    let done = Closure::once_into_js(opts.done);
    set(&o, "done", &done);
    let stream = guard_body(body, &o);
    let finished =
        Reflect::get(&o, &JsValue::from_str("finished")).ok().and_then(|p| p.dyn_into::<js_sys::Promise>().ok());
    (stream, finished)
}
