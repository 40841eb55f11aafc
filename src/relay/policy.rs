//! Tool policy at the relay (README: "MCP relay"): which tools a request
//! may use, the check of each client→server POST before anything reaches the
//! MCP server, and the filtering of `tools/list` results in JSON and SSE
//! answers. Pure: bytes in, bytes out.
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
}

/// The relay's decision on a POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostDecision {
    /// Forward the body unchanged.
    Forward(PostSummary),
    /// Answer this JSON (JSON-RPC) with this status; the server sees nothing.
    Answer { status: u16, body: Vec<u8>, summary: PostSummary, reason: &'static str },
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
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
fn is_strict(body: &[u8]) -> bool {
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

/// Drops disallowed tools from a `tools/list` result; `true` if it changed.
/// Any response whose `result.tools` is an array is treated as one, so a
/// replayed or resumed answer is filtered as well as a fresh one.
pub fn filter_message(msg: &mut Value, policy: &ToolPolicy) -> bool {
    let Some(tools) = msg.get_mut("result").and_then(|r| r.get_mut("tools")).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| policy.allows(n)));
    tools.len() != before
}

fn filter_value(v: &mut Value, policy: &ToolPolicy) -> bool {
    match v {
        Value::Array(items) => items.iter_mut().fold(false, |acc, m| filter_message(m, policy) | acc),
        _ => filter_message(v, policy),
    }
}

/// Filters an `application/json` answer; `None` when it is left as it was.
#[must_use]
pub fn filter_json_body(body: &[u8], policy: &ToolPolicy) -> Option<Vec<u8>> {
    if !policy.is_restricted() {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    filter_value(&mut v, policy).then(|| v.to_string().into_bytes())
}

/// Filters one complete SSE event (its lines and the blank line that ends
/// it); `None` when it is left as it was. A rewritten event keeps its other
/// fields (`id:`, `event:`, `retry:`, comments) in order and carries the
/// data as one `data:` line where the first one was.
#[must_use]
pub fn filter_sse_event(event: &[u8], policy: &ToolPolicy) -> Option<Vec<u8>> {
    if !policy.is_restricted() {
        return None;
    }
    let text = std::str::from_utf8(event).ok()?;
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> =
        text.trim_end_matches(['\r', '\n']).split(['\n']).map(|l| l.trim_end_matches('\r')).collect();
    let data: Vec<&str> =
        lines.iter().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
    if data.is_empty() {
        return None;
    }
    let mut v: Value = serde_json::from_str(&data.join("\n")).ok()?;
    if !filter_value(&mut v, policy) {
        return None;
    }
    let mut out = String::with_capacity(event.len());
    let mut wrote_data = false;
    for l in &lines {
        if l.starts_with("data:") {
            if !wrote_data {
                out.push_str("data: ");
                out.push_str(&v.to_string());
                out.push_str(eol);
                wrote_data = true;
            }
        } else {
            out.push_str(l);
            out.push_str(eol);
        }
    }
    out.push_str(eol);
    Some(out.into_bytes())
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

    const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search","inputSchema":{"type":"object"}},{"name":"delete_everything"},{"name":"lookup"}],"nextCursor":"c"}}"#;

    #[test]
    fn json_answers_are_filtered() {
        let p = policy(&["search", "lookup"]);
        let out: Value = serde_json::from_slice(&filter_json_body(LIST.as_bytes(), &p).unwrap()).unwrap();
        let names: Vec<_> = out["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
        assert_eq!(names, vec![json!("search"), json!("lookup")]);
        assert_eq!(out["result"]["nextCursor"], "c");
        assert_eq!(filter_json_body(LIST.as_bytes(), &policy(&["search", "lookup", "delete_everything"])), None);
        assert_eq!(filter_json_body(LIST.as_bytes(), &ToolPolicy::new(None, None)), None);
        assert_eq!(filter_json_body(b"not json", &p), None);
        let batch = format!("[{LIST},{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{}}}}]");
        assert!(filter_json_body(batch.as_bytes(), &p).is_some());
    }

    #[test]
    fn sse_events_are_filtered_in_place() {
        let p = policy(&["search"]);
        let event = format!("event: message\nid: 42\ndata: {LIST}\n\n");
        let out = String::from_utf8(filter_sse_event(event.as_bytes(), &p).unwrap()).unwrap();
        assert!(out.starts_with("event: message\nid: 42\ndata: {"), "{out}");
        assert!(out.ends_with("}\n\n"));
        assert!(!out.contains("delete_everything") && !out.contains("lookup"));
        // Data split over several lines, CRLF endings.
        let split = LIST.replacen(",", "\r\ndata: ,", 1);
        let (a, b) = split.split_once("\r\ndata: ,").unwrap();
        let crlf = format!("data: {a}\r\ndata: ,{b}\r\n\r\n");
        let out = String::from_utf8(filter_sse_event(crlf.as_bytes(), &p).unwrap()).unwrap();
        assert!(out.ends_with("\r\n\r\n") && out.matches("data:").count() == 1, "{out}");
        // Untouched events are left alone.
        assert_eq!(filter_sse_event(b"event: ping\n\n", &p), None);
        assert_eq!(filter_sse_event(b": comment\n\n", &p), None);
        let other =
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n";
        assert_eq!(filter_sse_event(other, &p), None);
    }

    #[test]
    fn filtering_never_panics_on_odd_input() {
        let p = policy(&["a"]);
        for s in [
            "",
            "data:",
            "data: {\"result\":{\"tools\":7}}\n\n",
            "data: {\"result\":{\"tools\":[1,null,{\"name\":3}]}}\n\n",
            "\u{0}\u{ff}",
        ] {
            let _ = filter_sse_event(s.as_bytes(), &p);
            let _ = filter_json_body(s.as_bytes(), &p);
            let _ = inspect_post(s.as_bytes(), Some("x"), Some("=?base64?!!?="), &p, "s");
        }
        let out =
            filter_sse_event(b"data: {\"result\":{\"tools\":[1,null,{\"name\":3},{\"name\":\"a\"}]}}\n\n", &p).unwrap();
        assert_eq!(out, b"data: {\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n");
    }
}
