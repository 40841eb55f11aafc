//! Which MCP servers a provider request names, read before the rewrite so
//! that `oauth2` servers can be given a token first. It reads entries the
//! same way the rewriters do (object entries with a string label) and skips
//! anything else: the rewriter then rejects such a body with the right 400.

#![forbid(unsafe_code)]

use crate::provider::json::{self, as_str, kind, Kind, Members};
use crate::provider::routes::Rewrite;

/// Labels named by `tools[type=mcp].server_label` (Responses),
/// `mcp_servers[].name` (Messages, and each `requests[].params` of a message
/// batch), `tools[type=mcp_server].name` (Interactions), in request order. Empty for bodies that do not parse and for
/// rewrites that never inject (file uploads).
#[must_use]
pub fn referenced_servers(rewrite: Rewrite, body: &[u8]) -> Vec<String> {
    let Ok(top) = json::strict_object(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match rewrite {
        Rewrite::Responses => labels(&top, "tools", "server_label", Some("mcp"), &mut out),
        Rewrite::Messages => labels(&top, "mcp_servers", "name", None, &mut out),
        Rewrite::Interactions => labels(&top, "tools", "name", Some(crate::provider::gemini::MCP_SERVER), &mut out),
        Rewrite::MessageBatches => {
            let requests = top.get_raw_non_null("requests").and_then(|raw| json::parse_array(raw).ok());
            for request in requests.unwrap_or_default() {
                let params = Members::parse(request).ok().and_then(|r| r.get_raw_non_null("params"));
                if let Some(params) = params.filter(|p| kind(p) == Kind::Object).and_then(|p| Members::parse(p).ok()) {
                    labels(&params, "mcp_servers", "name", None, &mut out);
                }
            }
        }
        Rewrite::FileUpload | Rewrite::Upload => {}
    }
    out
}

/// Names under `label` of the entries of `array` (of type `tool_type`, when given).
fn labels(top: &Members<'_>, array: &str, label: &str, tool_type: Option<&str>, out: &mut Vec<String>) {
    let Some(items) = top.get_raw_non_null(array).and_then(|raw| json::parse_array(raw).ok()) else {
        return;
    };
    for item in items {
        if kind(item) != Kind::Object {
            continue;
        }
        let Ok(entry) = Members::parse(item) else { continue };
        if tool_type.is_some_and(|t| entry.get_raw("type").and_then(as_str).as_deref() != Some(t)) {
            continue;
        }
        if let Some(name) = entry.get_raw(label).and_then(as_str) {
            if !out.contains(&name.to_string()) {
                out.push(name.into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_labels() {
        let body = br#"{"model":"m","tools":[{"type":"function","name":"f"},{"type":"mcp","server_label":"crm"},
            {"type":"mcp","server_label":"docs","server_url":"x"},{"type":"mcp"},"junk",{"type":"mcp","server_label":5}]}"#;
        assert_eq!(referenced_servers(Rewrite::Responses, body), vec!["crm", "docs"]);
        assert!(referenced_servers(Rewrite::Responses, br#"{"tools":null}"#).is_empty());
        assert!(referenced_servers(Rewrite::Responses, b"not json").is_empty());
        assert!(referenced_servers(Rewrite::Responses, br#"{"tools":{}}"#).is_empty());
    }

    #[test]
    fn gemini_labels() {
        let body = br#"{"tools":[{"type":"mcp_server","name":"crm"},{"type":"google_search"},{"type":"mcp","server_label":"x"},
            {"type":"mcp_server","name":"docs","url":"u"}]}"#;
        assert_eq!(referenced_servers(Rewrite::Interactions, body), vec!["crm", "docs"]);
    }

    #[test]
    fn anthropic_labels() {
        let body = br#"{"mcp_servers":[{"type":"url","name":"crm","url":"u"},{"name":"docs"},{"url":"x"}],
            "tools":[{"type":"mcp_toolset","mcp_server_name":"other"}]}"#;
        assert_eq!(referenced_servers(Rewrite::Messages, body), vec!["crm", "docs"]);
    }

    #[test]
    fn batch_labels() {
        let body = br#"{"requests":[{"custom_id":"a","params":{"mcp_servers":[{"name":"crm"}]}},
            {"custom_id":"b","params":{"mcp_servers":[{"name":"docs"},{"name":"crm"}]}},{"custom_id":"c"},7]}"#;
        assert_eq!(referenced_servers(Rewrite::MessageBatches, body), vec!["crm", "docs"]);
    }
}
