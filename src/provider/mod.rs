//! The closed set of upstream providers; what differs between them is in
//! [`table`], one row per provider.

pub mod anthropic;
pub mod batches;
pub mod gemini;
pub mod json;
pub mod multipart;
pub mod omit;
pub mod openai;
pub mod refs;
pub mod routes;
pub mod table;

/// An upstream LLM provider. Matches on it are exhaustive by design: a new
/// provider must decide every per-provider behaviour (its [`table::Spec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Xai,
    Groq,
    AzureOpenAi,
    Gemini,
}

impl Provider {
    /// Name used in routes (`/openai/v1/...`) and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// How error messages name the upstream ("Could not reach the OpenAI API.").
    #[must_use]
    pub const fn label(self) -> &'static str {
        self.spec().label
    }

    /// The worker var holding this provider's base URL (`None`: per tenant).
    #[must_use]
    pub const fn base_url_var(self) -> Option<&'static str> {
        match self.spec().base {
            table::Base::Var { var, .. } => Some(var),
            table::Base::TenantEndpoint => None,
        }
    }

    /// Base URL when the var is unset (`None`: per tenant).
    #[must_use]
    pub const fn default_base_url(self) -> Option<&'static str> {
        match self.spec().base {
            table::Base::Var { default, .. } => Some(default),
            table::Base::TenantEndpoint => None,
        }
    }
}
