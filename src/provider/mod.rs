//! The closed set of upstream providers and what differs between them.

pub mod anthropic;
pub mod batches;
pub mod json;
pub mod multipart;
pub mod omit;
pub mod openai;
pub mod refs;
pub mod routes;

/// An upstream LLM provider. Matches on it are exhaustive by design: a new
/// provider must decide every per-provider behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// Name used in routes (`/openai/v1/...`), config and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// How error messages name the upstream ("Could not reach the OpenAI API.").
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::OpenAi => "the OpenAI API",
            Self::Anthropic => "the Anthropic API",
        }
    }

    /// The worker var holding this provider's base URL.
    #[must_use]
    pub const fn base_url_var(self) -> &'static str {
        match self {
            Self::OpenAi => "OPENAI_BASE_URL",
            Self::Anthropic => "ANTHROPIC_BASE_URL",
        }
    }

    /// Base URL when the var is unset.
    #[must_use]
    pub const fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com",
            Self::Anthropic => "https://api.anthropic.com",
        }
    }
}
