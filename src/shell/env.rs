//! Typed access to the worker's vars and secrets (README "Configuration").

use worker::Env;

use crate::crypto::MasterKey;
use crate::crypto::Secret;
use crate::http::error::GatewayError;
use crate::provider::Provider;
use crate::tenant::input::ParseOptions;

pub const KV_BINDING: &str = "GATEWAY_KV";
const DEFAULT_MAX_BODY: u64 = 32 * 1024 * 1024;

/// Values read so far, by name (`None`: unset).
type Read = Vec<(&'static str, Option<String>)>;

thread_local! {
    /// The vars and secrets read so far, and the `env` object they were read
    /// from. Every request of an isolate gets the same `env`, so each value
    /// crosses from JS once per isolate instead of on every request; another
    /// `env` object empties the cache.
    static VARS: std::cell::RefCell<(wasm_bindgen::JsValue, Read)> =
        const { std::cell::RefCell::new((wasm_bindgen::JsValue::UNDEFINED, Vec::new())) };
}

/// A var or secret by name (both are strings in `env`); `wrangler dev --var`
/// makes vars, deployments use secrets. Empty counts as unset.
fn text(env: &Env, name: &'static str) -> Option<String> {
    let js: &wasm_bindgen::JsValue = env.as_ref();
    VARS.with_borrow_mut(|(seen, values)| {
        if !js_sys::Object::is(seen, js) {
            *seen = js.clone();
            values.clear();
        }
        if let Some((_, v)) = values.iter().find(|(n, _)| *n == name) {
            return v.clone();
        }
        let v = js_sys::Reflect::get(js, &wasm_bindgen::JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty());
        values.push((name, v.clone()));
        v
    })
}

pub fn admin_token(env: &Env) -> Option<Secret> {
    text(env, "ADMIN_TOKEN").map(Secret::new)
}

thread_local! {
    /// One `MasterKey` per isolate (and per `MASTER_KEY`/`MASTER_KEY_PREVIOUS`
    /// pair): the key schedule and its cache of opened envelopes outlive
    /// single requests.
    static MASTER: std::cell::RefCell<Option<(String, std::rc::Rc<MasterKey>)>> = const { std::cell::RefCell::new(None) };
}

/// The key ring: `MASTER_KEY` seals and opens; `MASTER_KEY_PREVIOUS` (set
/// only during a rotation) opens what was sealed before it.
pub fn master_key(env: &Env) -> Result<std::rc::Rc<MasterKey>, GatewayError> {
    let raw = text(env, "MASTER_KEY").ok_or_else(|| super::internal("MASTER_KEY is not set"))?;
    let previous = text(env, "MASTER_KEY_PREVIOUS");
    // Base64 never contains a newline, so the pair is unambiguous.
    let both = format!("{raw}\n{}", previous.as_deref().unwrap_or(""));
    if let Some(key) =
        MASTER.with_borrow(|m| m.as_ref().filter(|(r, _)| *r == both).map(|(_, k)| std::rc::Rc::clone(k)))
    {
        return Ok(key);
    }
    let mut key = MasterKey::from_base64(&raw).map_err(|_| super::internal("MASTER_KEY is not base64 of 32 bytes"))?;
    if let Some(prev) = previous {
        key = key.with_previous(&prev).map_err(|_| super::internal("MASTER_KEY_PREVIOUS is not base64 of 32 bytes"))?;
    }
    let key = std::rc::Rc::new(key);
    MASTER.with_borrow_mut(|m| *m = Some((both, std::rc::Rc::clone(&key))));
    Ok(key)
}

pub fn max_body_bytes(env: &Env) -> u64 {
    text(env, "MAX_BODY_BYTES").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_BODY)
}

pub fn parse_options(env: &Env) -> ParseOptions {
    ParseOptions { allow_insecure_urls: text(env, "ALLOW_INSECURE_MCP_URLS").is_some_and(|v| v.trim() == "true") }
}

/// The provider's base URL from its var or default; empty for providers
/// whose base is per tenant (the caller uses the tenant's endpoint).
pub fn base_url(env: &Env, provider: Provider) -> String {
    let url = provider
        .base_url_var()
        .and_then(|var| text(env, var))
        .or_else(|| provider.default_base_url().map(str::to_string))
        .unwrap_or_default();
    url.trim_end_matches('/').to_string()
}

/// `UPSTREAM_TIMEOUT_MS`: longest wait for a provider's response headers.
pub fn upstream_timeout_ms(env: &Env) -> Option<u64> {
    text(env, "UPSTREAM_TIMEOUT_MS").and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0)
}

/// `STREAM_IDLE_TIMEOUT_MS`: longest silence inside a watched stream before it is ended with an error event.
pub fn stream_idle_ms(env: &Env) -> Option<u64> {
    text(env, "STREAM_IDLE_TIMEOUT_MS").and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0)
}

/// `USAGE_FLUSH_MS`: how long usage is batched in an isolate before it is sent to the meters.
pub fn usage_flush_ms(env: &Env) -> Option<u64> {
    text(env, "USAGE_FLUSH_MS").and_then(|v| v.trim().parse().ok())
}

/// Durable Object namespace of OAuth credentials (one object per credential).
pub const OAUTH_BINDING: &str = "OAUTH_TOKENS";

/// `PUBLIC_BASE_URL`: the gateway's public origin, for the OAuth redirect URI
/// and the MCP relay's URLs (default: the origin of the request at hand).
fn public_base_url(env: &Env) -> Option<String> {
    text(env, "PUBLIC_BASE_URL")
}

/// The gateway's public origin, validated the same way for every user of it
/// (relay URLs, the OAuth redirect URI): `PUBLIC_BASE_URL`, or else the
/// origin the request came in on. 500 (logged) when it is not a usable origin.
pub fn public_base(env: &Env, request_url: &str) -> Result<String, GatewayError> {
    let insecure = parse_options(env).allow_insecure_urls;
    crate::relay::public_base_url(public_base_url(env).as_deref(), request_url, insecure)
        .map_err(|_| super::internal("PUBLIC_BASE_URL is not a usable https:// origin"))
}

/// `RELAY_TOKEN_TTL_SECONDS`: lifetime of relay capability tokens (default 600).
pub fn relay_ttl_secs(env: &Env) -> u64 {
    crate::relay::ttl_secs(text(env, "RELAY_TOKEN_TTL_SECONDS").as_deref())
}
