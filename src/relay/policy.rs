//! Tool policy at the relay (README: "MCP relay"): which tools a request
//! may use, and the check of each client→server POST before anything reaches
//! the MCP server (`super::filter` filters the answers). Pure: bytes in,
//! bytes out.
//!
//! The request body is authoritative (it is what the server executes); the
//! 2026-07-28 mirror headers `Mcp-Method`/`Mcp-Name` must agree with it, so a
//! server or intermediary routing on the headers cannot be steered around the
//! check. Bodies with duplicate keys are refused: another parser might read
//! the other value.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

/// JSON-RPC / MCP error codes the relay answers with.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
/// MCP: unknown tool → invalid params.
const INVALID_PARAMS: i64 = -32602;
/// MCP 2026-07-28 `HeaderMismatch`.
const HEADER_MISMATCH: i64 = -32020;

const TOOLS_CALL: &str = "tools/call";
const TOOLS_LIST: &str = "tools/list";

/// The tools a relayed request may use: the token's list intersected with
/// the tenant's current list; `None` on both sides means every tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPolicy {
    allowed: Option<Vec<String>>,
}

impl ToolPolicy {
    #[must_use]
    pub fn new(token: Option<&[String]>, tenant: Option<&[String]>) -> Self {
        let allowed = match (token, tenant) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a.to_vec()),
            (Some(a), Some(b)) => Some(a.iter().filter(|t| b.contains(t)).cloned().collect()),
        };
        Self { allowed }
    }

    #[must_use]
    pub fn allows(&self, tool: &str) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.iter().any(|t| t == tool))
    }

    /// Whether answers need filtering at all.
    #[must_use]
    pub const fn is_restricted(&self) -> bool {
        self.allowed.is_some()
    }
}

/// What a POST carried, for the log line and for filtering its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostSummary {
    /// The method of a single message, or `batch`.
    pub method: Option<String>,
    /// The tool of a single `tools/call`.
    pub tool: Option<String>,
    /// Some message is a `tools/list` request.
    pub lists_tools: bool,
    /// How many messages are `tools/call` requests (for metering).
    pub tool_calls: u64,
    /// The ids of the requests (messages with a method and an id), in order:
    /// an answer the gateway refuses to pass on is replaced by an error for each.
    pub request_ids: Vec<Value>,
}

/// The relay's decision on a POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostDecision {
    /// Forward the body unchanged.
    Forward(PostSummary),
    /// Answer this JSON (JSON-RPC) with this status; the server sees nothing.
    Answer { status: u16, body: Vec<u8>, summary: PostSummary, reason: &'static str },
}

pub(super) fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn answer(status: u16, body: &Value, summary: PostSummary, reason: &'static str) -> PostDecision {
    PostDecision::Answer { status, body: body.to_string().into_bytes(), summary, reason }
}

/// Tool names are echoed in denials; keep them short and printable.
fn shown(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(128).collect()
}

/// Decodes a 2026-07-28 header value that may use the `=?base64?…?=` sentinel.
#[must_use]
pub fn decode_header_value(v: &str) -> Option<String> {
    let v = v.trim();
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_string()),
    }
}

/// Rejects duplicate keys at any depth, for objects and batches alike.
pub(super) fn is_strict(body: &[u8]) -> bool {
    let mut wrapped = Vec::with_capacity(body.len() + 6);
    wrapped.extend_from_slice(b"{\"m\":");
    wrapped.extend_from_slice(body);
    wrapped.push(b'}');
    crate::provider::json::check_strict(&wrapped).is_ok()
}

/// Checks a POST body against the policy and the mirror headers.
#[must_use]
pub fn inspect_post(
    body: &[u8],
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
    policy: &ToolPolicy,
    server: &str,
) -> PostDecision {
    let parsed: Option<Value> = serde_json::from_slice(body).ok().filter(|_| is_strict(body));
    let Some(value) = parsed else {
        return answer(
            400,
            &rpc_error(&Value::Null, PARSE_ERROR, "Parse error: the body is not valid JSON or has duplicate keys."),
            PostSummary::default(),
            "parse_error",
        );
    };
    let (messages, batch): (Vec<&Value>, bool) = match &value {
        Value::Array(items) if !items.is_empty() => (items.iter().collect(), true),
        Value::Object(_) => (vec![&value], false),
        _ => {
            return answer(
                400,
                &rpc_error(&Value::Null, INVALID_REQUEST, "Invalid Request: expected a JSON-RPC message."),
                PostSummary::default(),
                "invalid_request",
            )
        }
    };
    let method_of = |m: &Value| m.get("method").and_then(Value::as_str).map(str::to_string);
    let mut summary = PostSummary {
        method: if batch { Some("batch".into()) } else { method_of(messages[0]) },
        tool: None,
        lists_tools: messages.iter().any(|m| method_of(m).as_deref() == Some(TOOLS_LIST)),
        tool_calls: messages.iter().filter(|m| method_of(m).as_deref() == Some(TOOLS_CALL)).count() as u64,
        request_ids: messages
            .iter()
            .filter(|m| m.get("method").is_some())
            .filter_map(|m| m.get("id").cloned())
            .collect(),
    };

    if !batch {
        let msg = messages[0];
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let body_method = method_of(msg);
        if let Some(h) = mcp_method.map(str::trim) {
            if body_method.as_deref() != Some(h) {
                let m = "Header mismatch: Mcp-Method does not match the body's method.";
                return answer(400, &rpc_error(&id, HEADER_MISMATCH, m), summary, "header_mismatch");
            }
        }
        if body_method.as_deref() == Some(TOOLS_CALL) {
            let name = msg.pointer("/params/name").and_then(Value::as_str);
            summary.tool = name.map(shown);
            if let Some(h) = mcp_name {
                if decode_header_value(h).as_deref() != name {
                    let m = "Header mismatch: Mcp-Name does not match the body's params.name.";
                    return answer(400, &rpc_error(&id, HEADER_MISMATCH, m), summary, "header_mismatch");
                }
            }
        }
    }

    let mut denied = false;
    let mut replies = Vec::new();
    for msg in &messages {
        let id = msg.get("id").cloned();
        if method_of(msg).as_deref() != Some(TOOLS_CALL) {
            if let Some(id) = id.filter(|_| msg.get("method").is_some()) {
                replies.push(rpc_error(
                    &id,
                    INVALID_REQUEST,
                    "Not forwarded: this batch contains a tool call the gateway does not allow.",
                ));
            }
            continue;
        }
        let name = msg.pointer("/params/name").and_then(Value::as_str);
        let message = match name {
            Some(n) if policy.allows(n) => {
                replies.push(rpc_error(
                    id.as_ref().unwrap_or(&Value::Null),
                    INVALID_REQUEST,
                    "Not forwarded: this batch contains a tool call the gateway does not allow.",
                ));
                continue;
            }
            Some(n) => format!("Tool '{}' is not allowed on MCP server '{server}' by the gateway's policy.", shown(n)),
            None => "Invalid params: tools/call needs params.name.".to_string(),
        };
        denied = true;
        let code = if name.is_some() { INVALID_PARAMS } else { INVALID_REQUEST };
        replies.push(rpc_error(id.as_ref().unwrap_or(&Value::Null), code, &message));
    }
    if !denied {
        return PostDecision::Forward(summary);
    }
    if !batch {
        let status = if messages[0].get("id").is_some() { 200 } else { 400 };
        return answer(status, &replies[0], summary, "tool_denied");
    }
    answer(200, &Value::Array(replies), summary, "tool_denied")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tools: &[&str]) -> ToolPolicy {
        let v: Vec<String> = tools.iter().map(|s| (*s).to_string()).collect();
        ToolPolicy::new(Some(&v), None)
    }

    fn call(name: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#)
    }

    fn answered(d: &PostDecision) -> (u16, Value) {
        match d {
            PostDecision::Answer { status, body, .. } => (*status, serde_json::from_slice(body).unwrap()),
            PostDecision::Forward(_) => panic!("forwarded"),
        }
    }

    #[test]
    fn intersection() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["y".to_string(), "z".to_string()];
        let p = ToolPolicy::new(Some(&a), Some(&b));
        assert!(p.allows("y") && !p.allows("x") && !p.allows("z"));
        let open = ToolPolicy::new(None, None);
        assert!(open.allows("anything") && !open.is_restricted());
        assert!(ToolPolicy::new(None, Some(&b)).allows("z"));
    }

    #[test]
    fn allowed_calls_and_other_methods_are_forwarded() {
        let p = policy(&["search"]);
        let d = inspect_post(call("search").as_bytes(), None, None, &p, "crm");
        assert_eq!(
            d,
            PostDecision::Forward(PostSummary {
                method: Some("tools/call".into()),
                tool: Some("search".into()),
                lists_tools: false,
                tool_calls: 1,
                request_ids: vec![json!(7)],
            })
        );
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(matches!(
            inspect_post(list, None, None, &p, "crm"),
            PostDecision::Forward(PostSummary { lists_tools: true, .. })
        ));
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(matches!(inspect_post(note, None, None, &p, "crm"), PostDecision::Forward(_)));
        let resp = br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#;
        assert!(matches!(inspect_post(resp, None, None, &p, "crm"), PostDecision::Forward(_)));
    }

    #[test]
    fn denied_calls_get_a_json_rpc_error_with_their_id() {
        let p = policy(&["search"]);
        let (status, v) = answered(&inspect_post(call("delete_everything").as_bytes(), None, None, &p, "crm"));
        assert_eq!(status, 200);
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], INVALID_PARAMS);
        assert!(v["error"]["message"].as_str().unwrap().contains("delete_everything"));
        let (_, v) = answered(&inspect_post(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            None,
            None,
            &p,
            "crm",
        ));
        assert_eq!(v["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn duplicate_keys_and_garbage_are_refused() {
        let p = policy(&["search"]);
        let dup =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_everything"}}"#;
        let (status, v) = answered(&inspect_post(dup, None, None, &p, "crm"));
        assert_eq!((status, v["error"]["code"].as_i64()), (400, Some(PARSE_ERROR)));
        for bad in [&b"not json"[..], b"", b"[]", b"42", b"\"x\""] {
            assert_eq!(answered(&inspect_post(bad, None, None, &p, "crm")).0, 400);
        }
    }

    #[test]
    fn mirror_headers_must_match_the_body() {
        let p = policy(&["search"]);
        let body = call("search");
        assert!(matches!(
            inspect_post(body.as_bytes(), Some("tools/call"), Some("search"), &p, "crm"),
            PostDecision::Forward(_)
        ));
        let b64 = format!("=?base64?{}?=", STANDARD.encode("search"));
        assert!(matches!(
            inspect_post(body.as_bytes(), Some("tools/call"), Some(&b64), &p, "crm"),
            PostDecision::Forward(_)
        ));
        let (status, v) = answered(&inspect_post(body.as_bytes(), Some("tools/call"), Some("lookup"), &p, "crm"));
        assert_eq!((status, v["error"]["code"].as_i64()), (400, Some(HEADER_MISMATCH)));
        let (status, _) = answered(&inspect_post(body.as_bytes(), Some("tools/list"), None, &p, "crm"));
        assert_eq!(status, 400);
        // The body decides: an allowed header name cannot smuggle a denied call.
        let denied = call("delete_everything");
        assert_eq!(answered(&inspect_post(denied.as_bytes(), Some("tools/call"), Some("search"), &p, "crm")).0, 400);
    }

    #[test]
    fn batches_with_a_denied_call_are_not_forwarded() {
        let p = policy(&["search"]);
        let batch = format!(
            r#"[{},{{"jsonrpc":"2.0","id":8,"method":"tools/list"}},{{"jsonrpc":"2.0","method":"notifications/x"}},{}]"#,
            call("search"),
            call("delete_everything").replace("\"id\":7", "\"id\":9")
        );
        let (status, v) = answered(&inspect_post(batch.as_bytes(), None, None, &p, "crm"));
        assert_eq!(status, 200);
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 3, "one reply per request, none for the notification");
        assert_eq!(arr[2]["id"], 9);
        assert_eq!(arr[2]["error"]["code"], INVALID_PARAMS);
        let ok = format!("[{}]", call("search"));
        assert!(matches!(inspect_post(ok.as_bytes(), None, None, &p, "crm"), PostDecision::Forward(_)));
    }
}
