//! The provider table: one [`Spec`] per [`Provider`], holding everything that
//! differs between providers (docs/providers.md has the sources of every row).
//! Routing, header policy, error shapes, SSE dialects, metering and the request
//! rewriters read their per-provider facts from here and nowhere else, so a new
//! provider is one row, its emulator and its tests.

#![forbid(unsafe_code)]

use super::Provider;

/// Where the provider's API lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// A worker var, with its default.
    Var { var: &'static str, default: &'static str },
    /// Each tenant's own resource endpoint (`providers.azure_openai.endpoint`).
    TenantEndpoint,
}

/// How the tenant's provider key is sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `x-api-key: <key>`.
    XApiKey,
    /// `api-key: <key>` (Azure).
    ApiKey,
    /// `x-goog-api-key: <key>` (Google).
    GoogApiKey,
}

impl KeyHeader {
    /// The header name, lowercase.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bearer => "authorization",
            Self::XApiKey => "x-api-key",
            Self::ApiKey => "api-key",
            Self::GoogApiKey => "x-goog-api-key",
        }
    }

    /// The header value for `key`.
    #[must_use]
    pub fn value(self, key: &str) -> String {
        match self {
            Self::Bearer => format!("Bearer {key}"),
            Self::XApiKey | Self::ApiKey | Self::GoogApiKey => key.to_string(),
        }
    }
}

/// Every header any provider takes its key in: the gateway owns them all on
/// the way up (a client's copy, the gateway key, is never forwarded).
pub const ALL_KEY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The family of wire formats a provider speaks: error bodies and SSE dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    OpenAi,
    Anthropic,
    Google,
}

/// What a Responses-style provider accepts in an `mcp` tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsesOptions {
    /// `require_approval` exists. Without it a tenant policy that needs
    /// approval cannot be enforced, so such a request is refused (400).
    pub approval: bool,
    /// `allowed_tools` may also be the `{tool_names, read_only}` filter object;
    /// otherwise only an array of names.
    pub filter_object: bool,
}

/// One provider's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Route prefix segment (`/{name}/...`), log `provider` field.
    pub name: &'static str,
    /// Key under `providers` in the tenant config.
    pub config_key: &'static str,
    /// How the provider is named in messages ("the xAI API").
    pub label: &'static str,
    pub base: Base,
    pub key_header: KeyHeader,
    /// The provider's own key header, which its SDK sends the gateway key in
    /// (besides `Authorization: Bearer` and `x-api-key`, accepted everywhere).
    pub client_key_header: Option<&'static str>,
    /// Path roots under the prefix; the path after the prefix goes upstream as
    /// is. Which routes under them are rewritten, passed or refused is
    /// `provider::routes`.
    pub roots: &'static [&'static str],
    /// `POST` paths whose answers report usage the meter reads.
    pub metered: &'static [&'static str],
    /// For Responses-API routes (`provider::routes::Rewrite::Responses`).
    pub responses: ResponsesOptions,
    pub family: Family,
}

const OPENAI_OPTIONS: ResponsesOptions = ResponsesOptions { approval: true, filter_object: true };

const OPENAI: Spec = Spec {
    name: "openai",
    config_key: "openai",
    label: "the OpenAI API",
    base: Base::Var { var: "OPENAI_BASE_URL", default: "https://api.openai.com" },
    key_header: KeyHeader::Bearer,
    client_key_header: None,
    roots: &["/v1/"],
    metered: &["/v1/responses", "/v1/chat/completions"],
    responses: OPENAI_OPTIONS,
    family: Family::OpenAi,
};

const ANTHROPIC: Spec = Spec {
    name: "anthropic",
    config_key: "anthropic",
    label: "the Anthropic API",
    base: Base::Var { var: "ANTHROPIC_BASE_URL", default: "https://api.anthropic.com" },
    key_header: KeyHeader::XApiKey,
    client_key_header: None,
    roots: &["/v1/"],
    metered: &["/v1/messages"],
    responses: OPENAI_OPTIONS,
    family: Family::Anthropic,
};

/// xAI's Responses API takes `server_url`, `server_label`, `allowed_tools`
/// (names), `authorization` and `headers`; not `require_approval` or `connector_id`.
const XAI: Spec = Spec {
    name: "xai",
    config_key: "xai",
    label: "the xAI API",
    base: Base::Var { var: "XAI_BASE_URL", default: "https://api.x.ai" },
    key_header: KeyHeader::Bearer,
    client_key_header: None,
    roots: &["/v1/"],
    metered: &["/v1/responses", "/v1/chat/completions"],
    responses: ResponsesOptions { approval: false, filter_object: false },
    family: Family::OpenAi,
};

/// Groq's `/openai/v1/responses` takes the `OpenAI` `mcp` tool shape.
const GROQ: Spec = Spec {
    name: "groq",
    config_key: "groq",
    label: "the Groq API",
    base: Base::Var { var: "GROQ_BASE_URL", default: "https://api.groq.com" },
    key_header: KeyHeader::Bearer,
    client_key_header: None,
    roots: &["/openai/v1/"],
    metered: &["/openai/v1/responses", "/openai/v1/chat/completions"],
    responses: OPENAI_OPTIONS,
    family: Family::OpenAi,
};

/// Azure `OpenAI`: the v1 API (`/openai/v1/...`) and the dated API
/// (`/openai/...?api-version=...`, what the `AzureOpenAI` SDK clients call),
/// both under the tenant's resource endpoint, key in `api-key`.
const AZURE_OPENAI: Spec = Spec {
    name: "azure",
    config_key: "azure_openai",
    label: "the Azure OpenAI API",
    base: Base::TenantEndpoint,
    key_header: KeyHeader::ApiKey,
    client_key_header: Some("api-key"),
    roots: &["/openai/"],
    metered: &["/openai/v1/responses", "/openai/responses", "/openai/v1/chat/completions"],
    responses: OPENAI_OPTIONS,
    family: Family::OpenAi,
};

/// Gemini: `interactions` is rewritten under both API versions the SDKs use
/// (`v1beta`, and `v1`, the default of `@google/genai` 3.x); the rest passes.
const GEMINI: Spec = Spec {
    name: "gemini",
    config_key: "gemini",
    label: "the Gemini API",
    base: Base::Var { var: "GEMINI_BASE_URL", default: "https://generativelanguage.googleapis.com" },
    key_header: KeyHeader::GoogApiKey,
    client_key_header: Some("x-goog-api-key"),
    roots: &["/v1beta/", "/v1/"],
    metered: &["/v1beta/interactions", "/v1/interactions"],
    responses: OPENAI_OPTIONS,
    family: Family::Google,
};

impl Provider {
    /// Every provider, in routing order.
    pub const ALL: [Provider; 6] =
        [Self::OpenAi, Self::Anthropic, Self::Xai, Self::Groq, Self::AzureOpenAi, Self::Gemini];

    /// This provider's row of the table.
    #[must_use]
    pub const fn spec(self) -> &'static Spec {
        match self {
            Self::OpenAi => &OPENAI,
            Self::Anthropic => &ANTHROPIC,
            Self::Xai => &XAI,
            Self::Groq => &GROQ,
            Self::AzureOpenAi => &AZURE_OPENAI,
            Self::Gemini => &GEMINI,
        }
    }

    /// The provider whose prefix `path` starts with, and the rest of the path.
    #[must_use]
    pub fn of_path(path: &str) -> Option<(Self, &str)> {
        Self::ALL.into_iter().find_map(|p| {
            let rest = path.strip_prefix('/')?.strip_prefix(p.spec().name)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((p, rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_consistent() {
        for p in Provider::ALL {
            let s = p.spec();
            assert_eq!(Provider::of_path(&format!("/{}{}x", s.name, s.roots[0])).map(|(q, _)| q), Some(p));
            for path in s.metered {
                assert!(s.roots.iter().any(|r| path.starts_with(r)), "{path}");
            }
            if let Some(h) = s.client_key_header {
                assert!(ALL_KEY_HEADERS.contains(&h));
            }
            assert!(ALL_KEY_HEADERS.contains(&s.key_header.name()));
        }
        let names: Vec<_> = Provider::ALL.iter().map(|p| p.spec().name).collect();
        assert!(names.iter().all(|n| names.iter().filter(|m| *m == n).count() == 1), "prefixes are unique");
    }

    #[test]
    fn prefixes() {
        assert_eq!(Provider::of_path("/azure/openai/v1/x"), Some((Provider::AzureOpenAi, "/openai/v1/x")));
        assert_eq!(Provider::of_path("/xaiv1/x"), None);
        assert_eq!(Provider::of_path("/gemini"), Some((Provider::Gemini, "")));
    }

    #[test]
    fn key_headers() {
        assert_eq!(KeyHeader::Bearer.value("k"), "Bearer k");
        assert_eq!(KeyHeader::ApiKey.value("k"), "k");
        assert_eq!(Provider::Gemini.spec().key_header.name(), "x-goog-api-key");
        assert_eq!(Provider::AzureOpenAi.spec().key_header.name(), "api-key");
    }
}
