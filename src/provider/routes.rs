//! Which provider routes can carry MCP configuration, and how the gateway
//! treats each. Every body that reaches a provider is either understood by
//! the gateway (its MCP entries completed and policed like the main routes),
//! on a route known to carry no MCP configuration, or refused. Routes the
//! gateway does not know are refused for body-carrying methods unless the
//! tenant opts in (`unknown_routes: "pass"`).
//!
//! Paths are matched on their canonical form (`http::path`), ignoring ASCII
//! case, so no spelling reaches the provider as a route other than the one
//! decided here.

use crate::http::route::Method;
use crate::provider::Provider;

/// The body rewrite a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// OpenAI Responses bodies (`responses`, `responses/input_tokens`,
    /// `responses/compact`): `tools[type=mcp]`.
    Responses,
    /// Anthropic Messages bodies (`messages`, `messages/count_tokens`): `mcp_servers[]`.
    Messages,
    /// Anthropic `messages/batches`: each `requests[].params` is a Messages body.
    MessageBatches,
    /// OpenAI `POST /v1/files`: multipart; a `purpose=batch` file's JSONL lines
    /// are inspected and refused when they carry MCP tools.
    FileUpload,
    /// OpenAI `POST /v1/uploads`: refused for `purpose: "batch"` (its parts are
    /// never seen whole, so batch input must go through `POST /v1/files`).
    Upload,
    /// Gemini Interactions (`interactions`): `tools[type=mcp_server]`.
    Interactions,
}

/// How a provider route is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// The body is read and rewritten.
    Rewrite(Rewrite),
    /// Known to carry no MCP configuration (or no body at all): forwarded as is.
    Pass,
    /// OpenAI Realtime (`/v1/realtime/*`): a session configured here, or an
    /// ephemeral key minted here, is used directly at the provider, past every
    /// gateway policy. Refused unless the tenant allows unmanaged MCP servers;
    /// even then a managed server cannot be named.
    Realtime,
    /// Not a route the gateway knows, with a body it cannot police: refused
    /// unless the tenant passes unknown routes.
    Unknown,
}

impl Treatment {
    /// Short name for the log line.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Rewrite(Rewrite::Responses) => "responses",
            Self::Rewrite(Rewrite::Messages) => "messages",
            Self::Rewrite(Rewrite::MessageBatches) => "message_batches",
            Self::Rewrite(Rewrite::FileUpload) => "files",
            Self::Rewrite(Rewrite::Upload) => "uploads",
            Self::Rewrite(Rewrite::Interactions) => "interactions",
            Self::Pass => "passthrough",
            Self::Realtime => "realtime",
            Self::Unknown => "unknown",
        }
    }
}

/// `*` matches one segment, a trailing `**` the rest (at least one segment).
type Pattern = &'static [&'static str];

/// OpenAI POST routes that carry no MCP configuration.
const OPENAI_PASS: &[Pattern] = &[
    &["chat", "completions"],
    &["chat", "completions", "*"],
    &["completions"],
    &["embeddings"],
    &["moderations"],
    &["images", "**"],
    &["audio", "**"],
    &["uploads", "*", "**"],
    &["batches"],
    &["batches", "*", "cancel"],
    &["fine_tuning", "**"],
    &["vector_stores"],
    &["vector_stores", "**"],
    &["conversations"],
    &["conversations", "**"],
    &["responses", "*", "cancel"],
    &["containers"],
    &["containers", "**"],
    &["evals"],
    &["evals", "**"],
    &["videos"],
    &["videos", "**"],
    &["assistants"],
    &["assistants", "**"],
    &["threads"],
    &["threads", "**"],
    &["organization", "**"],
];

/// Extra POST routes of Azure's dated API (`/openai/deployments/{name}/…`).
const AZURE_PASS: &[Pattern] = &[&["deployments", "*", "**"]];

/// Gemini POST routes besides `interactions` (none of them takes remote MCP servers).
const GEMINI_PASS: &[Pattern] = &[
    &["interactions", "*", "cancel"],
    &["models", "**"],
    &["files"],
    &["files", "**"],
    &["cachedContents"],
    &["cachedContents", "**"],
    &["batches", "**"],
    &["tunedModels"],
    &["tunedModels", "**"],
    &["corpora"],
    &["corpora", "**"],
    &["fileSearchStores"],
    &["fileSearchStores", "**"],
];

/// Anthropic POST routes that carry no MCP configuration.
const ANTHROPIC_PASS: &[Pattern] = &[
    &["messages", "batches", "*", "cancel"],
    &["complete"],
    &["files"],
    &["skills"],
    &["skills", "**"],
    &["organizations", "**"],
];

fn matches(pattern: Pattern, segs: &[&str]) -> bool {
    match pattern.split_last() {
        Some((&"**", head)) => segs.len() > head.len() && matches_exact(head, &segs[..head.len()]),
        _ => pattern.len() == segs.len() && matches_exact(pattern, segs),
    }
}

fn matches_exact(pattern: Pattern, segs: &[&str]) -> bool {
    pattern.iter().zip(segs).all(|(p, s)| *p == "*" || p.eq_ignore_ascii_case(s))
}

/// The treatment of `method` on `upstream_path` (canonical, after the
/// provider's prefix: `/v1/…`, `/openai/v1/…`, …).
#[must_use]
pub fn treatment(provider: Provider, method: Method, upstream_path: &str) -> Treatment {
    let lower = upstream_path.to_ascii_lowercase();
    let under = |root: &str| lower.strip_prefix(root).map(|rest| rest.split('/').collect::<Vec<_>>());
    let has_body = method.has_body();
    match provider {
        Provider::OpenAi => openai_like(method, &under("/v1/").unwrap_or_default(), true, &[]),
        Provider::Xai => openai_like(method, &under("/v1/").unwrap_or_default(), false, &[]),
        Provider::Groq => openai_like(method, &under("/openai/v1/").unwrap_or_default(), false, &[]),
        // The v1 API and the dated one (`/openai/...?api-version=`), both with Realtime.
        Provider::AzureOpenAi => {
            let segs = under("/openai/v1/").or_else(|| under("/openai/")).unwrap_or_default();
            openai_like(method, &segs, true, AZURE_PASS)
        }
        Provider::Anthropic => {
            let segs = under("/v1/").unwrap_or_default();
            if !has_body {
                return Treatment::Pass;
            }
            match (method, segs.as_slice()) {
                (Method::Post, ["messages"] | ["messages", "count_tokens"]) => Treatment::Rewrite(Rewrite::Messages),
                (Method::Post, ["messages", "batches"]) => Treatment::Rewrite(Rewrite::MessageBatches),
                (Method::Post, _) if ANTHROPIC_PASS.iter().any(|p| matches(p, &segs)) => Treatment::Pass,
                _ => Treatment::Unknown,
            }
        }
        Provider::Gemini => {
            let segs = under("/v1beta/").or_else(|| under("/v1/")).unwrap_or_default();
            if !has_body {
                return Treatment::Pass;
            }
            match (method, segs.as_slice()) {
                (Method::Post, ["interactions"]) => Treatment::Rewrite(Rewrite::Interactions),
                (Method::Post, _) if GEMINI_PASS.iter().any(|p| matches(p, &segs)) => Treatment::Pass,
                _ => Treatment::Unknown,
            }
        }
    }
}

/// The Responses-API family (OpenAI and the APIs modelled on it).
fn openai_like(method: Method, segs: &[&str], realtime: bool, extra_pass: &[Pattern]) -> Treatment {
    if realtime && segs.first() == Some(&"realtime") {
        return Treatment::Realtime;
    }
    if !method.has_body() {
        return Treatment::Pass;
    }
    match (method, segs) {
        (Method::Post, ["responses"] | ["responses", "input_tokens" | "compact"]) => {
            Treatment::Rewrite(Rewrite::Responses)
        }
        (Method::Post, ["files"]) => Treatment::Rewrite(Rewrite::FileUpload),
        (Method::Post, ["uploads"]) => Treatment::Rewrite(Rewrite::Upload),
        (Method::Post, _) if OPENAI_PASS.iter().chain(extra_pass).any(|p| matches(p, segs)) => Treatment::Pass,
        _ => Treatment::Unknown,
    }
}

/// Answers that carry the provider's own usage report (tokens, MCP calls),
/// which the meter reads as they stream past.
#[must_use]
pub fn reports_usage(provider: Provider, method: Method, upstream_path: &str) -> bool {
    method == Method::Post && provider.spec().metered.iter().any(|p| p.eq_ignore_ascii_case(upstream_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: Provider, m: Method, path: &str) -> Treatment {
        treatment(p, m, path)
    }

    #[test]
    fn openai_routes() {
        use Provider::OpenAi as O;
        assert_eq!(t(O, Method::Post, "/v1/responses"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(O, Method::Post, "/v1/RESPONSES"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(O, Method::Post, "/v1/responses/input_tokens"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(O, Method::Post, "/v1/responses/compact"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(O, Method::Post, "/v1/responses/resp_1/cancel"), Treatment::Pass);
        assert_eq!(t(O, Method::Get, "/v1/responses/resp_1"), Treatment::Pass);
        assert_eq!(t(O, Method::Post, "/v1/files"), Treatment::Rewrite(Rewrite::FileUpload));
        assert_eq!(t(O, Method::Post, "/v1/uploads"), Treatment::Rewrite(Rewrite::Upload));
        assert_eq!(t(O, Method::Post, "/v1/uploads/upl_1/parts"), Treatment::Pass);
        assert_eq!(t(O, Method::Post, "/v1/chat/completions"), Treatment::Pass);
        assert_eq!(t(O, Method::Post, "/v1/embeddings"), Treatment::Pass);
        assert_eq!(t(O, Method::Post, "/v1/images/generations"), Treatment::Pass);
        for p in ["/v1/realtime/client_secrets", "/v1/realtime/sessions", "/v1/realtime/calls", "/v1/realtime"] {
            assert_eq!(t(O, Method::Post, p), Treatment::Realtime, "{p}");
            assert_eq!(t(O, Method::Get, p), Treatment::Realtime, "{p}");
        }
        assert_eq!(t(O, Method::Post, "/v1/responses/x/y"), Treatment::Unknown);
        assert_eq!(t(O, Method::Post, "/v1/something_new"), Treatment::Unknown);
        assert_eq!(t(O, Method::Put, "/v1/chat/completions"), Treatment::Unknown);
        assert_eq!(t(O, Method::Patch, "/v1/responses"), Treatment::Unknown);
        assert_eq!(t(O, Method::Delete, "/v1/responses/resp_1"), Treatment::Pass);
    }

    #[test]
    fn anthropic_routes() {
        use Provider::Anthropic as A;
        assert_eq!(t(A, Method::Post, "/v1/messages"), Treatment::Rewrite(Rewrite::Messages));
        assert_eq!(t(A, Method::Post, "/v1/Messages/Count_Tokens"), Treatment::Rewrite(Rewrite::Messages));
        assert_eq!(t(A, Method::Post, "/v1/messages/batches"), Treatment::Rewrite(Rewrite::MessageBatches));
        assert_eq!(t(A, Method::Post, "/v1/messages/batches/b_1/cancel"), Treatment::Pass);
        assert_eq!(t(A, Method::Get, "/v1/messages/batches/b_1/results"), Treatment::Pass);
        assert_eq!(t(A, Method::Post, "/v1/files"), Treatment::Pass);
        assert_eq!(t(A, Method::Post, "/v1/agents"), Treatment::Unknown);
        assert_eq!(t(A, Method::Post, "/v1/messages/other"), Treatment::Unknown);
    }

    #[test]
    fn metered_answers() {
        assert!(reports_usage(Provider::OpenAi, Method::Post, "/v1/responses"));
        assert!(reports_usage(Provider::OpenAi, Method::Post, "/v1/chat/completions"));
        assert!(!reports_usage(Provider::OpenAi, Method::Get, "/v1/responses"));
        assert!(!reports_usage(Provider::OpenAi, Method::Post, "/v1/responses/input_tokens"));
        assert!(reports_usage(Provider::Anthropic, Method::Post, "/v1/messages"));
        assert!(!reports_usage(Provider::Anthropic, Method::Post, "/v1/messages/count_tokens"));
    }

    #[test]
    fn table_providers() {
        use Method::{Get, Post};
        assert_eq!(t(Provider::Xai, Post, "/v1/responses"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(Provider::Xai, Post, "/v1/realtime/sessions"), Treatment::Unknown);
        assert_eq!(t(Provider::Groq, Post, "/openai/v1/Responses"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(Provider::Groq, Post, "/openai/v1/chat/completions"), Treatment::Pass);
        assert_eq!(t(Provider::AzureOpenAi, Post, "/openai/responses"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(Provider::AzureOpenAi, Post, "/openai/v1/responses"), Treatment::Rewrite(Rewrite::Responses));
        assert_eq!(t(Provider::AzureOpenAi, Post, "/openai/deployments/d/chat/completions"), Treatment::Pass);
        assert_eq!(t(Provider::AzureOpenAi, Post, "/openai/realtime/client_secrets"), Treatment::Realtime);
        assert_eq!(t(Provider::Gemini, Post, "/v1beta/interactions"), Treatment::Rewrite(Rewrite::Interactions));
        assert_eq!(t(Provider::Gemini, Post, "/v1/interactions"), Treatment::Rewrite(Rewrite::Interactions));
        assert_eq!(t(Provider::Gemini, Post, "/v1beta/models/g:generateContent"), Treatment::Pass);
        assert_eq!(t(Provider::Gemini, Get, "/v1beta/interactions/i_1"), Treatment::Pass);
        assert_eq!(t(Provider::Gemini, Post, "/v1beta/agents"), Treatment::Unknown);
        assert!(reports_usage(Provider::Gemini, Post, "/v1beta/interactions"));
        assert!(reports_usage(Provider::Groq, Post, "/openai/v1/responses"));
    }

    #[test]
    fn patterns() {
        assert!(matches(&["a", "**"], &["a", "b", "c"]));
        assert!(!matches(&["a", "**"], &["a"]));
        assert!(matches(&["a", "*", "c"], &["a", "x", "c"]));
        assert!(!matches(&["a", "*", "c"], &["a", "x", "c", "d"]));
    }
}
