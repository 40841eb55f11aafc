//! The JSON messages between the worker and a credential's Durable Object
//! (`shell::oauth::object`). Internal to the deployment: they travel only
//! inside the runtime, never to a client. [`Reply::Token`] carries a
//! plaintext access token, so neither type implements `Debug`.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use super::records::StoredOAuth;

/// Names a credential and carries its sealed config (immutable per
/// credential id, so every call may carry it).
#[derive(Clone, Serialize, Deserialize)]
pub struct CredentialRef {
    pub tenant: String,
    pub server: String,
    pub mcp_url: String,
    pub auth: StoredOAuth,
}

/// Worker → Durable Object.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// A fresh access token, refreshing (single-flight) if needed.
    Token { cred: CredentialRef },
    /// Starts the connect flow: discovery, registration, PKCE, `state`.
    Connect { cred: CredentialRef, redirect_uri: String },
    /// The authorization server redirected back with a code (or an error).
    Finish {
        state: String,
        code: Option<String>,
        error: Option<String>,
        /// RFC 9207 `iss` of the authorization response, if present.
        #[serde(default)]
        iss: Option<String>,
    },
    /// The admin view.
    Status { cred: CredentialRef },
    /// Drops every token and pending flow of the credential.
    Forget,
    /// Counts which master key the stored state is sealed under and, with
    /// `write`, re-seals it under the current one.
    Reseal { cred: CredentialRef, write: bool },
}

/// Durable Object → worker.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Token {
        access_token: String,
        expires_at_ms: u64,
        lifetime_ms: u64,
        refreshed: bool,
    },
    /// 424: the grant is missing or was rejected.
    Reconnect {
        reason: String,
    },
    /// 502: the token endpoint failed.
    Unavailable {
        reason: String,
    },
    Authorize {
        authorization_url: String,
        redirect_uri: String,
        expires_at_ms: u64,
    },
    Connected {
        tenant: String,
        server: String,
    },
    Status {
        view: serde_json::Value,
    },
    Done,
    /// Answer to [`Call::Reseal`]: the count before, and whether it was rewritten.
    Sealing {
        before: crate::tenant::reseal::SealCount,
        resealed: bool,
    },
    /// The code exchange of a connect flow failed at the token endpoint (502).
    ExchangeFailed {
        server: String,
        reason: String,
    },
    /// Any other failure, with the status to answer and a safe message.
    Failed {
        status: u16,
        message: String,
    },
}
