//! The one structured log line per request (JSON, for Workers Logs /
//! Logpush). It holds ids, labels, sizes and outcomes only: never a key,
//! token, header value or body.

use serde::Serialize;

/// Everything known about a finished request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestLog {
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A short SHA-256 of the user id a request acted for; never the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_hash: Option<String>,
    pub method: String,
    /// The route class, e.g. `openai.responses`, `anthropic.passthrough`, `admin`.
    pub route: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'static str>,
    /// Gateway status answered to the client.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Labels of the MCP servers whose credentials were injected.
    pub mcp_servers: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: u64,
    /// Set when the gateway answered an error or the stream ended early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<&'static str>,
    /// Tokens the provider reported and MCP tool calls it made (metered routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_tool_calls: Option<u64>,
    pub outcome: Outcome,
    /// The MCP relay's part (route `relay`): one line per relayed MCP call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayLog>,
}

/// How an answer ended. Crosses from the JS stream guard as a string; a
/// string outside this set is [`Outcome::Unrecognized`], never success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Completed,
    ClientCancelled,
    UpstreamReset,
    UpstreamStalled,
    Unrecognized,
}

impl Outcome {
    /// The guard's word for how a stream ended.
    #[must_use]
    pub fn from_guard(s: &str) -> Self {
        match s {
            "completed" => Self::Completed,
            "client_cancelled" => Self::ClientCancelled,
            "upstream_reset" => Self::UpstreamReset,
            "upstream_stalled" => Self::UpstreamStalled,
            _ => Self::Unrecognized,
        }
    }

    /// The log's `error_class` for an outcome that is not a clean end.
    #[must_use]
    pub const fn error_class(self) -> Option<&'static str> {
        match self {
            Self::Completed | Self::ClientCancelled => None,
            Self::UpstreamReset | Self::UpstreamStalled => Some("upstream_stream_interrupted"),
            Self::Unrecognized => Some("internal"),
        }
    }
}

/// What the relay did with one MCP request. Names and ids only.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayLog {
    pub server: String,
    /// JSON-RPC method of a POST (`tools/call`, `batch`, …); `None` for GET/DELETE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `forwarded`, `tool_denied`, `header_mismatch`, `parse_error`,
    /// `invalid_request` or `token_rejected`.
    pub decision: &'static str,
    /// Why a token was refused (`token_expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_error: Option<&'static str>,
    /// The capability token's random id (not the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

impl RequestLog {
    /// The JSON line.
    #[must_use]
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"log_error\":true}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_the_fields() {
        let log = RequestLog {
            request_id: "r1".into(),
            tenant: Some("acme".into()),
            user_hash: None,
            method: "POST".into(),
            route: "openai.responses".into(),
            provider: Some("openai"),
            status: 200,
            upstream_status: Some(200),
            mcp_servers: vec!["crm".into()],
            bytes_in: 10,
            bytes_out: 20,
            duration_ms: 3,
            error_class: None,
            input_tokens: Some(1),
            output_tokens: Some(2),
            mcp_tool_calls: Some(0),
            outcome: Outcome::Completed,
            relay: None,
        };
        let v: serde_json::Value = serde_json::from_str(&log.to_line()).unwrap();
        for k in [
            "request_id",
            "tenant",
            "route",
            "provider",
            "upstream_status",
            "mcp_servers",
            "bytes_in",
            "bytes_out",
            "duration_ms",
            "outcome",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn outcomes_are_a_closed_set() {
        for (s, o) in [
            ("completed", Outcome::Completed),
            ("client_cancelled", Outcome::ClientCancelled),
            ("upstream_reset", Outcome::UpstreamReset),
            ("upstream_stalled", Outcome::UpstreamStalled),
        ] {
            assert_eq!(Outcome::from_guard(s), o);
            assert_eq!(serde_json::to_value(o).unwrap(), s);
        }
        // A typo never reads as success.
        for s in ["complete", "", "COMPLETED", "upstream_resett"] {
            assert_eq!(Outcome::from_guard(s), Outcome::Unrecognized);
            assert!(Outcome::from_guard(s).error_class().is_some());
        }
        assert_eq!(Outcome::Completed.error_class(), None);
        assert_eq!(Outcome::UpstreamStalled.error_class(), Some("upstream_stream_interrupted"));
    }
}
