//! OAuth for MCP servers (docs/oauth.md). The gateway is the OAuth client of each tenant's `oauth2`
//! servers: it connects them (discovery, registration, PKCE), keeps their
//! tokens fresh and single-flights refreshes in one Durable Object per
//! credential, and hands the request rewriters plain bearer tokens.
//!
//! Everything here is pure and tested natively; `shell::oauth` and
//! `shell::oauth::object` do the I/O. No function here logs, and no message
//! built here contains a token or client secret.

#![forbid(unsafe_code)]

pub mod config;
pub mod credential;
pub mod metadata;
pub mod pkce;
pub mod protocol;
pub mod records;
pub mod rotation;
pub mod state;
pub mod status;
pub mod token;
pub mod urls;

use crate::tenant::{McpAuth, McpPolicy};

/// The name of a credential's Durable Object.
#[must_use]
pub fn object_name(tenant: &str, server: &str, credential_id: &str) -> String {
    format!("{tenant}/{server}/{credential_id}")
}

/// The labels among `referenced` that name an `oauth2` server of `policy`,
/// without repeats, in request order.
#[must_use]
pub fn oauth_servers_in(policy: &McpPolicy, referenced: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in referenced {
        let is_oauth = policy.servers.get(label).is_some_and(|s| matches!(s.auth, McpAuth::OAuth2(_)));
        if is_oauth && !out.contains(label) {
            out.push(label.clone());
        }
    }
    out
}

/// Whether the policy has any `oauth2` server (the request path skips the
/// label scan otherwise).
#[must_use]
pub fn has_oauth_servers(policy: &McpPolicy) -> bool {
    policy.servers.values().any(|s| matches!(s.auth, McpAuth::OAuth2(_)))
}

/// A fresh random credential id: 128 bits, hex.
///
/// # Errors
/// [`crate::crypto::CryptoError::Rng`] if the RNG fails.
pub fn new_credential_id() -> Result<String, crate::crypto::CryptoError> {
    let bytes: [u8; 16] = crate::crypto::random_bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
