//! Tenant configuration: the validated domain types the gateway works with.
//!
//! Admin input is parsed into these types by [`input`]; the stored form with
//! sealed secrets lives in [`crate::tenant::storage`]. Plaintext secrets only ever
//! exist here inside [`Secret`].

pub mod input;
pub mod keep;
pub mod listing;
pub mod reseal;
pub mod storage;
pub mod usage_query;
pub mod users;
pub mod users_input;
pub mod users_store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::Secret;
use crate::provider::Provider;

/// How the gateway authenticates to an MCP server on the tenant's behalf.
#[derive(Debug, Clone)]
pub enum McpAuth {
    None,
    /// Sent as `Authorization: Bearer <token>` (OpenAI `authorization`, Anthropic `authorization_token`).
    Bearer(Secret),
    /// Arbitrary header credentials (OpenAI `headers` only). Names are HTTP tokens, as given.
    Headers(Vec<(String, Secret)>),
    /// OAuth 2 credentials the gateway turns into a bearer access token before
    /// rewriting (see [`oauth`]); the rewriters never see this variant.
    OAuth2(Box<crate::oauth::config::OAuthConfig>),
}

/// The tenant's approval policy for a server's tool calls. Stored as its
/// name; an unknown name makes the record unreadable (never a default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    Never,
    Always,
}

impl Approval {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
        }
    }
}

/// How a provider reaches an MCP server (README: "MCP relay"). Stored as
/// its name; an unknown name makes the record unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpMode {
    /// The provider connects to `url` with the tenant's credential injected.
    #[default]
    Direct,
    /// The provider connects to the gateway's `/mcp/{tenant}/{server}` with a
    /// short-lived capability token; the gateway holds the credential.
    Relay,
}

impl McpMode {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relay => "relay",
        }
    }
}

/// One managed MCP server of a tenant.
#[derive(Debug, Clone)]
pub struct McpServer {
    /// Validated `https://` URL (or loopback `http://` when insecure URLs are allowed).
    /// With a `service`, the address requested through that binding.
    pub url: String,
    pub auth: McpAuth,
    /// `None` means every tool of the server is allowed.
    pub allowed_tools: Option<Vec<String>>,
    pub require_approval: Approval,
    pub mode: McpMode,
    /// A Workers service binding the relay reaches the server through
    /// (private servers); only with [`McpMode::Relay`].
    pub service: Option<String>,
}

/// What the request rewriters need to know about a tenant's MCP servers.
#[derive(Debug, Clone, Default)]
pub struct McpPolicy {
    /// Keyed by server name (`server_label` for OpenAI, `name` for Anthropic).
    pub servers: BTreeMap<String, McpServer>,
    /// When true, MCP entries naming other servers pass through untouched.
    pub allow_unmanaged: bool,
}

/// What the gateway does with a body on a provider route it does not know
/// (see `provider::routes`): it cannot tell whether MCP configuration rides
/// in it, so the default refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownRoutes {
    #[default]
    Refuse,
    Pass,
}

impl UnknownRoutes {
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// An Azure `OpenAI` resource of a tenant.
#[derive(Debug, Clone)]
pub struct AzureOpenAi {
    /// Validated origin (`https://RESOURCE.openai.azure.com`), no trailing slash.
    pub endpoint: String,
    pub api_key: Secret,
}

/// A whole tenant, with plaintext secrets.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    pub openai_key: Option<Secret>,
    pub anthropic_key: Option<Secret>,
    pub xai_key: Option<Secret>,
    pub groq_key: Option<Secret>,
    pub gemini_key: Option<Secret>,
    pub azure_openai: Option<AzureOpenAi>,
    pub mcp: McpPolicy,
    /// Requests per minute across the tenant's provider routes; `None` = unlimited.
    pub rate_limit_rpm: Option<u32>,
    pub unknown_routes: UnknownRoutes,
    /// Servers marked `per_user`, by name: their `auth` above holds no
    /// credential (bearer, headers) or only the OAuth client (oauth2); each
    /// user's credential is found per request (`users`).
    pub per_user: BTreeMap<String, users::PerUser>,
}

impl Tenant {
    /// The tenant's key for `provider`, if configured (and opened).
    #[must_use]
    pub fn provider_key(&self, provider: Provider) -> Option<&Secret> {
        match provider {
            Provider::OpenAi => self.openai_key.as_ref(),
            Provider::Anthropic => self.anthropic_key.as_ref(),
            Provider::Xai => self.xai_key.as_ref(),
            Provider::Groq => self.groq_key.as_ref(),
            Provider::Gemini => self.gemini_key.as_ref(),
            Provider::AzureOpenAi => self.azure_openai.as_ref().map(|a| &a.api_key),
        }
    }

    /// The tenant's own base URL for `provider` (`None`: the deployment's).
    #[must_use]
    pub fn provider_endpoint(&self, provider: Provider) -> Option<&str> {
        match provider {
            Provider::AzureOpenAi => self.azure_openai.as_ref().map(|a| a.endpoint.as_str()),
            Provider::OpenAi | Provider::Anthropic | Provider::Xai | Provider::Groq | Provider::Gemini => None,
        }
    }
}

/// `true` for names of tenants, servers: 1–64 chars of `[A-Za-z0-9_-]`.
#[must_use]
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
