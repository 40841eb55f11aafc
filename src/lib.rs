//! mcpgate: a multi-tenant MCP auth gateway for LLM providers on Cloudflare
//! Workers.
//!
//! A request enters at `shell::fetch` (`#[event(fetch)]`) and is dispatched
//! by [`http::route`]:
//!
//! - provider routes (`/openai/v1/*`, `/anthropic/v1/*`): [`http::auth`]
//!   finds the gateway key, one KV read ([`tenant::storage`]) yields the
//!   tenant, [`crypto`] opens its secrets, [`provider`] rewrites the body
//!   (MCP servers filled in and policed), the request goes upstream and the
//!   answer streams back through [`stream`] (scrub, meter, stream guard);
//! - `/mcp/{tenant}/{server}`: the MCP [`relay`] (capability token, tool
//!   policy, the real credential swapped in);
//! - `/oauth/callback` and the OAuth admin calls: [`oauth`];
//! - `/admin/*`: the admin API over [`tenant`], and the admin console's
//!   static files (`/admin/`, served from the `ASSETS` binding).
//!
//! Everything but `shell` is the pure core: it compiles and is tested
//! natively. `shell` is the thin worker-facing layer (KV, fetch, streams,
//! Durable Objects) and mirrors the core's folders.

pub mod crypto;
pub mod http;
pub mod oauth;
pub mod provider;
pub mod relay;
pub mod stream;
pub mod tenant;

#[cfg(target_arch = "wasm32")]
mod shell;
