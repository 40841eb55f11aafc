//! Reading a request body for the gateway to police: bounded, and decoded
//! from its `Content-Encoding` by the runtime's decompressors (`js/body.js`).

use wasm_bindgen::prelude::*;
use web_sys::ReadableStream;

use crate::http::encoding::Coding;
use crate::http::error::GatewayError;

#[wasm_bindgen(module = "/src/shell/js/body.js")]
extern "C" {
    #[wasm_bindgen(js_name = readBody)]
    fn read_body_js(body: Option<ReadableStream>, formats: js_sys::Array, limit: f64, bounded: bool)
        -> js_sys::Promise;
}

/// The whole body, decoded; 413 once the decoded bytes pass `limit`, 415 for
/// a coding the runtime cannot decode, 400 for bytes that do not decode.
/// `bounded`: its declared length is within `limit` (read in one go).
pub async fn read_decoded(
    body: Option<ReadableStream>,
    codings: &[Coding],
    limit: u64,
    bounded: bool,
) -> Result<Vec<u8>, GatewayError> {
    let formats = js_sys::Array::new();
    for c in codings.iter().rev() {
        formats.push(&JsValue::from_str(c.format()));
    }
    #[allow(clippy::cast_precision_loss)]
    let v = wasm_bindgen_futures::JsFuture::from(read_body_js(body, formats, limit as f64, bounded))
        .await
        .map_err(|_| GatewayError::bad_request("Could not read the request body."))?;
    match v.as_string().as_deref() {
        None => Ok(js_sys::Uint8Array::new(&v).to_vec()),
        Some("too_large") => Err(GatewayError::PayloadTooLarge { limit }),
        Some("unsupported") => Err(GatewayError::UnsupportedEncoding {
            encoding: codings.iter().map(|c| c.token()).collect::<Vec<_>>().join(", "),
        }),
        Some(_) => Err(GatewayError::bad_request("The request body does not decode as its Content-Encoding says.")),
    }
}
