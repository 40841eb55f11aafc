//! Wraps a fetched body in `guard.js` when the gateway must watch it (SSE
//! error events, scrubbing); otherwise the body stream is returned as is.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::ReadableStream;

use crate::scrub::Scrubber;

#[wasm_bindgen(module = "/src/shell/guard.js")]
extern "C" {
    #[wasm_bindgen(js_name = guardBody)]
    fn guard_body(body: &ReadableStream, opts: &JsValue) -> ReadableStream;
}

/// The scrubber as a JS object for `guard.js`; one chunk in, one chunk out.
#[wasm_bindgen]
pub struct ScrubStream {
    inner: Scrubber,
}

#[wasm_bindgen]
impl ScrubStream {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.inner.push(chunk)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.inner.finish()
    }
}

pub struct GuardOptions {
    pub sse: bool,
    pub idle_ms: u64,
    pub reset_event: String,
    pub stall_event: String,
    pub scrubber: Option<Scrubber>,
    /// Called once with the outcome and the bytes sent to the client.
    pub done: Box<dyn FnOnce(String, f64)>,
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

pub fn guard(body: &ReadableStream, opts: GuardOptions) -> ReadableStream {
    let o = Object::new();
    set(&o, "sse", &JsValue::from_bool(opts.sse));
    #[allow(clippy::cast_precision_loss)]
    set(&o, "idleMs", &JsValue::from_f64(opts.idle_ms as f64));
    set(&o, "resetEvent", &JsValue::from_str(&opts.reset_event));
    set(&o, "stallEvent", &JsValue::from_str(&opts.stall_event));
    let scrub = opts.scrubber.map_or(JsValue::NULL, |s| JsValue::from(ScrubStream { inner: s }));
    set(&o, "scrub", &scrub);
    let done = Closure::once_into_js(opts.done);
    set(&o, "done", &done);
    guard_body(body, &o)
}
