//! Leaves named MCP servers out of a provider request (per-user servers
//! whose user has no credential, with `"on_missing": "omit"`): the entries
//! naming them go, everything else is spliced through as the client's bytes.
//!
//! Responses: `tools[]` entries of `type: "mcp"` with that `server_label`.
//! Messages: `mcp_servers[]` entries with that `name`, and `tools[]` entries
//! of `type: "mcp_toolset"` naming it in `mcp_server_name` (Anthropic
//! refuses a toolset whose server is absent). Message batches are not
//! rewritten: the caller answers 424 there instead.

#![forbid(unsafe_code)]

use crate::http::error::GatewayError;
use crate::provider::json::{self, as_str, kind, write_array, Kind, Members, Val};
use crate::provider::routes::Rewrite;

/// Whether the route's bodies can have servers left out.
#[must_use]
pub const fn supported(rewrite: Rewrite) -> bool {
    matches!(rewrite, Rewrite::Responses | Rewrite::Messages | Rewrite::Interactions)
}

/// `body` without the entries naming `servers`.
///
/// # Errors
/// A 400 if the body is not a strict JSON object (the rewriter would refuse it too).
pub fn omit_servers(rewrite: Rewrite, body: &[u8], servers: &[String]) -> Result<Vec<u8>, GatewayError> {
    let mut top = json::strict_object(body)?;
    match rewrite {
        Rewrite::Responses => drop_entries(&mut top, "tools", |e| {
            e.get_raw("type").and_then(as_str).as_deref() == Some("mcp") && named(e, "server_label", servers)
        }),
        Rewrite::Messages => {
            drop_entries(&mut top, "mcp_servers", |e| named(e, "name", servers));
            drop_entries(&mut top, "tools", |e| {
                e.get_raw("type").and_then(as_str).as_deref() == Some("mcp_toolset")
                    && named(e, "mcp_server_name", servers)
            });
        }
        Rewrite::Interactions => drop_entries(&mut top, "tools", |e| {
            e.get_raw("type").and_then(as_str).as_deref() == Some(crate::provider::gemini::MCP_SERVER)
                && named(e, "name", servers)
        }),
        Rewrite::MessageBatches | Rewrite::FileUpload | Rewrite::Upload => return Ok(body.to_vec()),
    }
    top.to_vec()
}

fn named(entry: &Members<'_>, field: &str, servers: &[String]) -> bool {
    entry.get_raw(field).and_then(as_str).is_some_and(|n| servers.iter().any(|s| *s == n))
}

fn drop_entries(top: &mut Members<'_>, array: &str, drop: impl Fn(&Members<'_>) -> bool) {
    let Some(items) = top.get_raw_non_null(array).and_then(|raw| json::parse_array(raw).ok()) else {
        return;
    };
    let kept: Vec<Val<'_>> = items
        .into_iter()
        .filter(|item| kind(item) != Kind::Object || Members::parse(item).map_or(true, |e| !drop(&e)))
        .map(Val::raw)
        .collect();
    let kept = write_array(&kept);
    top.set(array, kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(rewrite: Rewrite, body: &str, servers: &[&str]) -> Value {
        let servers: Vec<String> = servers.iter().map(|s| (*s).to_string()).collect();
        serde_json::from_slice(&omit_servers(rewrite, body.as_bytes(), &servers).unwrap()).unwrap()
    }

    #[test]
    fn responses_drop_only_the_named_mcp_tools() {
        let v = run(
            Rewrite::Responses,
            r#"{"model":"m","tools":[{"type":"mcp","server_label":"gh"},{"type":"function","name":"gh"},
               {"type":"mcp","server_label":"crm"}],"input":"hi"}"#,
            &["gh"],
        );
        assert_eq!(v["tools"].as_array().unwrap().len(), 2);
        assert_eq!(v["tools"][0]["type"], "function");
        assert_eq!(v["tools"][1]["server_label"], "crm");
        assert_eq!(v["input"], "hi");
    }

    #[test]
    fn messages_drop_servers_and_their_toolsets() {
        let v = run(
            Rewrite::Messages,
            r#"{"model":"m","mcp_servers":[{"type":"url","name":"gh"},{"type":"url","name":"crm"}],
               "tools":[{"type":"mcp_toolset","mcp_server_name":"gh"},{"type":"mcp_toolset","mcp_server_name":"crm"},
               {"name":"calc","input_schema":{}}]}"#,
            &["gh"],
        );
        assert_eq!(v["mcp_servers"], serde_json::json!([{"type":"url","name":"crm"}]));
        assert_eq!(v["tools"].as_array().unwrap().len(), 2);
        assert_eq!(v["tools"][0]["mcp_server_name"], "crm");
    }

    #[test]
    fn bodies_without_entries_and_unsupported_routes() {
        let v = run(Rewrite::Responses, r#"{"model":"m"}"#, &["gh"]);
        assert_eq!(v, serde_json::json!({"model":"m"}));
        assert!(!supported(Rewrite::MessageBatches));
        assert!(omit_servers(Rewrite::Responses, b"[1]", &[]).is_err());
    }
}
