//! mcpgate: a multi-tenant MCP auth gateway for OpenAI and Anthropic on
//! Cloudflare Workers.
//!
//! The pure core (everything but `shell`) rewrites requests, validates
//! config, seals secrets and maps errors; it compiles and is tested natively.
//! `shell` is the thin worker-facing layer: KV, fetch, streams.

pub mod auth;
pub mod config;
pub mod crypto;
pub mod error;
pub mod headers;
pub mod json;
pub mod kv_schema;
pub mod log;
pub mod oauth;
pub mod providers;
pub mod relay;
pub mod route;
pub mod scrub;
pub mod secret;
pub mod sse;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod shell;
