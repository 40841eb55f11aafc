//! What the gateway writes into a provider's SSE stream when the upstream
//! stream fails after the 200 headers: one final error event in that
//! provider's own shape, so SDKs raise instead of ending on a truncated
//! answer that looks complete.

use serde_json::json;

use crate::provider::table::Family;
use crate::provider::Provider;

/// The SSE dialect of a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseKind {
    /// Anthropic Messages: `event:` lines, errors as `event: error`.
    Anthropic,
    /// OpenAI Responses: `event:` lines, errors as an `error` event.
    OpenAiResponses,
    /// OpenAI Chat Completions and other `data:`-only streams: errors as a
    /// `data:` object with a top-level `error` key.
    OpenAiData,
    /// Gemini Interactions: `event:` lines, errors as an `error` event
    /// (`{"event_type":"error","error":{"code","message"}}`).
    GeminiInteractions,
    /// Other Google streams (`generateContent?alt=sse`): `data:` only, errors
    /// in Google's `{"error":{"code","message","status"}}`.
    GoogleData,
}

impl SseKind {
    /// The dialect of a response, or `None` if it is not an event stream.
    #[must_use]
    pub fn of(provider: Provider, upstream_path: &str, content_type: Option<&str>) -> Option<Self> {
        let is_sse = content_type.is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
        if !is_sse {
            return None;
        }
        // A Responses answer: created, or a stored one read back (`responses/{id}?stream=true`).
        let lower = upstream_path.to_ascii_lowercase();
        let responses = provider.spec().roots.iter().filter_map(|root| lower.strip_prefix(root)).any(|rest| {
            let rest = rest.strip_prefix("v1/").unwrap_or(rest);
            rest == "responses" || rest.starts_with("responses/")
        });
        Some(match provider.spec().family {
            Family::Anthropic => Self::Anthropic,
            Family::OpenAi if responses => Self::OpenAiResponses,
            Family::OpenAi => Self::OpenAiData,
            Family::Google if upstream_path.contains("/interactions") => Self::GeminiInteractions,
            Family::Google => Self::GoogleData,
        })
    }
}

/// Why the stream ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    Reset,
    Stalled { idle_ms: u64 },
}

/// The complete SSE event (ending in a blank line) to append.
#[must_use]
pub fn error_event(kind: SseKind, what: &str, why: Interruption) -> String {
    let message = match why {
        Interruption::Reset => {
            format!("The stream from {what} was interrupted before it finished; the answer is incomplete.")
        }
        Interruption::Stalled { idle_ms } => {
            format!(
                "The stream from {what} sent nothing for {} s and was closed; the answer is incomplete.",
                idle_ms / 1000
            )
        }
    };
    match kind {
        SseKind::Anthropic => {
            let data = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            format!("event: error\ndata: {data}\n\n")
        }
        SseKind::OpenAiResponses => {
            let data = json!({"type": "error", "code": "stream_interrupted", "message": message, "param": null});
            format!("event: error\ndata: {data}\n\n")
        }
        SseKind::OpenAiData => {
            let data = json!({"error": {"message": message, "type": "api_error", "param": null, "code": "stream_interrupted"}});
            format!("data: {data}\n\n")
        }
        SseKind::GeminiInteractions => {
            let data = json!({"event_type": "error", "error": {"code": "stream_interrupted", "message": message}});
            format!("event: error\ndata: {data}\n\n")
        }
        SseKind::GoogleData => {
            let data = json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
            format!("data: {data}\n\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_of(event: &str) -> serde_json::Value {
        let line = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(
            SseKind::of(Provider::OpenAi, "/v1/responses", Some("text/event-stream; charset=utf-8")),
            Some(SseKind::OpenAiResponses)
        );
        assert_eq!(
            SseKind::of(Provider::OpenAi, "/v1/chat/completions", Some("text/event-stream")),
            Some(SseKind::OpenAiData)
        );
        assert_eq!(
            SseKind::of(Provider::Anthropic, "/v1/messages", Some("text/event-stream")),
            Some(SseKind::Anthropic)
        );
        assert_eq!(SseKind::of(Provider::Anthropic, "/v1/messages", Some("application/json")), None);
        assert_eq!(SseKind::of(Provider::Anthropic, "/v1/messages", None), None);
    }

    #[test]
    fn table_providers() {
        let sse = Some("text/event-stream");
        assert_eq!(SseKind::of(Provider::Xai, "/v1/responses", sse), Some(SseKind::OpenAiResponses));
        assert_eq!(SseKind::of(Provider::Groq, "/openai/v1/responses", sse), Some(SseKind::OpenAiResponses));
        assert_eq!(SseKind::of(Provider::Groq, "/openai/v1/chat/completions", sse), Some(SseKind::OpenAiData));
        assert_eq!(SseKind::of(Provider::AzureOpenAi, "/openai/responses", sse), Some(SseKind::OpenAiResponses));
        assert_eq!(SseKind::of(Provider::Gemini, "/v1beta/interactions", sse), Some(SseKind::GeminiInteractions));
        assert_eq!(
            SseKind::of(Provider::Gemini, "/v1beta/models/m:streamGenerateContent", sse),
            Some(SseKind::GoogleData)
        );
        let g = error_event(SseKind::GeminiInteractions, "the Gemini API", Interruption::Reset);
        assert!(g.starts_with("event: error\n"));
        assert_eq!(data_of(&g)["event_type"], "error");
        assert_eq!(data_of(&g)["error"]["code"], "stream_interrupted");
        let d = error_event(SseKind::GoogleData, "the Gemini API", Interruption::Reset);
        assert_eq!(data_of(&d)["error"]["status"], "UNAVAILABLE");
    }

    #[test]
    fn events_are_in_each_providers_shape() {
        let a = error_event(SseKind::Anthropic, "the Anthropic API", Interruption::Reset);
        assert!(a.starts_with("event: error\n") && a.ends_with("\n\n"));
        assert_eq!(data_of(&a)["error"]["type"], "api_error");
        let o = error_event(SseKind::OpenAiResponses, "the OpenAI API", Interruption::Stalled { idle_ms: 30_000 });
        assert!(o.starts_with("event: error\n"));
        assert_eq!(data_of(&o)["type"], "error");
        assert!(data_of(&o)["message"].as_str().unwrap().contains("30 s"));
        let c = error_event(SseKind::OpenAiData, "the OpenAI API", Interruption::Reset);
        assert!(c.starts_with("data: {"));
        assert_eq!(data_of(&c)["error"]["code"], "stream_interrupted");
    }
}
