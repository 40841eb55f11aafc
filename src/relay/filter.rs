//! Filtering of `tools/list` answers at the relay, JSON and SSE, when the
//! capability restricts tools. Fails closed: an answer the gateway cannot
//! read with certainty (not JSON, duplicate keys, a `tools` that is not a
//! list, an event over the bound, an unexpected content type) is never
//! passed on; the client gets a JSON-RPC error for its request instead.
//! Pure: bytes in, bytes out.

use serde_json::Value;

use super::policy::{is_strict, rpc_error, ToolPolicy};
use crate::stream::framer;

/// JSON-RPC "internal error": the answer existed but could not be passed on.
const INTERNAL_ERROR: i64 = -32603;

/// The longest JSON answer or SSE event the filter reads; a longer one is refused.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What the filter made of an answer or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Pass it on as it is.
    Unchanged,
    /// Pass this on instead (tools were dropped).
    Rewritten(Vec<u8>),
    /// Not readable with certainty: answer with [`refusal`] instead.
    Refused,
}

/// How the answer to a restricted `tools/list` request is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Json,
    EventStream,
    /// Another content type, for a successful answer: refused.
    Unexpected,
    /// Another content type on an error status: no result to filter.
    Other,
}

impl AnswerKind {
    #[must_use]
    pub fn of(status: u16, content_type: &str) -> Self {
        let ct = content_type.trim_start().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json" => Self::Json,
            "text/event-stream" => Self::EventStream,
            _ if (200..300).contains(&status) => Self::Unexpected,
            _ => Self::Other,
        }
    }
}

/// Drops disallowed tools from a `tools/list` result; `Err` when `result.tools`
/// exists but is not a list. Any response with `result.tools` is treated as
/// one, so a replayed or resumed answer is filtered as well as a fresh one.
fn filter_message(msg: &mut Value, policy: &ToolPolicy) -> Result<bool, ()> {
    let Some(tools) = msg.get_mut("result").and_then(|r| r.get_mut("tools")) else {
        return Ok(false);
    };
    let Some(tools) = tools.as_array_mut() else { return Err(()) };
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| policy.allows(n)));
    Ok(tools.len() != before)
}

fn filter_value(v: &mut Value, policy: &ToolPolicy) -> Result<bool, ()> {
    match v {
        Value::Array(items) => items.iter_mut().try_fold(false, |acc, m| Ok(filter_message(m, policy)? | acc)),
        _ => filter_message(v, policy),
    }
}

/// Parses a JSON text the way every client would: strictly, no duplicate keys.
fn parse_strict(text: &[u8]) -> Option<Value> {
    serde_json::from_slice(text).ok().filter(|_| is_strict(text))
}

/// Filters an `application/json` answer.
#[must_use]
pub fn filter_json_body(body: &[u8], policy: &ToolPolicy) -> Filtered {
    if !policy.is_restricted() {
        return Filtered::Unchanged;
    }
    if body.len() > MAX_ANSWER_BYTES {
        return Filtered::Refused;
    }
    let Some(mut v) = parse_strict(body) else { return Filtered::Refused };
    match filter_value(&mut v, policy) {
        Ok(true) => Filtered::Rewritten(v.to_string().into_bytes()),
        Ok(false) => Filtered::Unchanged,
        Err(()) => Filtered::Refused,
    }
}

/// The first line terminator of an event, reused when it is rewritten.
fn eol_of(event: &[u8]) -> &'static str {
    match event.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) if event[i] == b'\r' && event.get(i + 1) == Some(&b'\n') => "\r\n",
        Some(i) if event[i] == b'\r' => "\r",
        _ => "\n",
    }
}

/// Filters one SSE event (its lines and the blank line that ends it, or the
/// unfinished tail of a stream). An event without data, or with empty data,
/// carries no result. A rewritten event keeps its other lines (`id:`,
/// `event:`, `retry:`, comments) in order and carries the data as one
/// `data:` line where the first one was.
#[must_use]
pub fn filter_sse_event(event: &[u8], policy: &ToolPolicy) -> Filtered {
    if !policy.is_restricted() {
        return Filtered::Unchanged;
    }
    if event.len() > MAX_ANSWER_BYTES {
        return Filtered::Refused;
    }
    let data = match framer::data(event) {
        Some(d) if !d.iter().all(u8::is_ascii_whitespace) => d,
        _ => return Filtered::Unchanged,
    };
    let Some(mut v) = parse_strict(&data) else { return Filtered::Refused };
    match filter_value(&mut v, policy) {
        Ok(true) => {}
        Ok(false) => return Filtered::Unchanged,
        Err(()) => return Filtered::Refused,
    }
    let eol = eol_of(event).as_bytes();
    let mut out = Vec::with_capacity(event.len());
    let mut wrote_data = false;
    for line in framer::lines(event) {
        if framer::field(line).is_some_and(|(name, _)| name == b"data") {
            if !wrote_data {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(v.to_string().as_bytes());
                out.extend_from_slice(eol);
                wrote_data = true;
            }
        } else {
            out.extend_from_slice(line);
            out.extend_from_slice(eol);
        }
    }
    out.extend_from_slice(eol);
    Filtered::Rewritten(out)
}

fn refusal_message(server: &str) -> String {
    format!(
        "The answer of MCP server '{server}' could not be checked against the gateway's tool policy, so it was not passed on."
    )
}

/// The JSON answer that replaces a refused one: an error for each request
/// id (an array for a batch), or one error with a null id when none is known.
#[must_use]
pub fn refusal(ids: &[Value], batch: bool, server: &str) -> Vec<u8> {
    let message = refusal_message(server);
    let errors: Vec<Value> = if ids.is_empty() {
        vec![rpc_error(&Value::Null, INTERNAL_ERROR, &message)]
    } else {
        ids.iter().map(|id| rpc_error(id, INTERNAL_ERROR, &message)).collect()
    };
    if batch {
        Value::Array(errors).to_string().into_bytes()
    } else {
        errors.first().map(Value::to_string).unwrap_or_default().into_bytes()
    }
}

/// The SSE events that end a refused stream: one JSON-RPC error event per
/// request id (one with a null id when none is known).
#[must_use]
pub fn refusal_events(ids: &[Value], server: &str) -> Vec<u8> {
    let message = refusal_message(server);
    let mut out = Vec::new();
    let null = [Value::Null];
    let ids = if ids.is_empty() { &null[..] } else { ids };
    for id in ids {
        out.extend_from_slice(b"event: message\ndata: ");
        out.extend_from_slice(rpc_error(id, INTERNAL_ERROR, &message).to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(tools: &[&str]) -> ToolPolicy {
        let v: Vec<String> = tools.iter().map(|s| (*s).to_string()).collect();
        ToolPolicy::new(Some(&v), None)
    }

    fn rewritten(f: Filtered) -> Vec<u8> {
        match f {
            Filtered::Rewritten(b) => b,
            other => panic!("not rewritten: {other:?}"),
        }
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search","inputSchema":{"type":"object"}},{"name":"delete_everything"},{"name":"lookup"}],"nextCursor":"c"}}"#;

    #[test]
    fn json_answers_are_filtered() {
        let p = policy(&["search", "lookup"]);
        let out: Value = serde_json::from_slice(&rewritten(filter_json_body(LIST.as_bytes(), &p))).unwrap();
        let names: Vec<_> = out["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
        assert_eq!(names, vec![json!("search"), json!("lookup")]);
        assert_eq!(out["result"]["nextCursor"], "c");
        let all = policy(&["search", "lookup", "delete_everything"]);
        assert_eq!(filter_json_body(LIST.as_bytes(), &all), Filtered::Unchanged);
        assert_eq!(filter_json_body(LIST.as_bytes(), &ToolPolicy::new(None, None)), Filtered::Unchanged);
        let batch = format!("[{LIST},{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{}}}}]");
        assert!(matches!(filter_json_body(batch.as_bytes(), &p), Filtered::Rewritten(_)));
    }

    #[test]
    fn unreadable_json_answers_are_refused() {
        let p = policy(&["search"]);
        let dup = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[],"tools":[{"name":"delete_everything"}]}}"#;
        let not_list = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":{"0":{"name":"delete_everything"}}}}"#;
        for bad in ["not json", "", "{\"id\":2,", dup, not_list] {
            assert_eq!(filter_json_body(bad.as_bytes(), &p), Filtered::Refused, "{bad}");
        }
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_ANSWER_BYTES));
        assert_eq!(filter_json_body(huge.as_bytes(), &p), Filtered::Refused);
    }

    #[test]
    fn sse_events_are_filtered_in_place() {
        let p = policy(&["search"]);
        let event = format!("event: message\nid: 42\ndata: {LIST}\n\n");
        let out = String::from_utf8(rewritten(filter_sse_event(event.as_bytes(), &p))).unwrap();
        assert!(out.starts_with("event: message\nid: 42\ndata: {"), "{out}");
        assert!(out.ends_with("}\n\n"));
        assert!(!out.contains("delete_everything") && !out.contains("lookup"));
        // Data split over several lines, each line ending allowed.
        let (a, b) = LIST.split_once(',').unwrap();
        for eol in ["\r\n", "\r", "\n"] {
            let split = format!("data: {a}{eol}data: ,{b}{eol}{eol}");
            let out = String::from_utf8(rewritten(filter_sse_event(split.as_bytes(), &p))).unwrap();
            assert!(out.ends_with(&format!("}}{eol}{eol}")) && out.matches("data:").count() == 1, "{out:?}");
            assert!(!out.contains("delete_everything"));
        }
        // Untouched events are left alone.
        assert_eq!(filter_sse_event(b"event: ping\n\n", &p), Filtered::Unchanged);
        assert_eq!(filter_sse_event(b": comment\n\n", &p), Filtered::Unchanged);
        assert_eq!(filter_sse_event(b"id: 1\ndata:\n\n", &p), Filtered::Unchanged, "a priming event");
        let other =
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n";
        assert_eq!(filter_sse_event(other, &p), Filtered::Unchanged);
    }

    #[test]
    fn unreadable_events_are_refused() {
        let p = policy(&["a"]);
        for bad in [
            &b"data: {\"result\":{\"tools\":[{\"name\":\"b\"}]}\n\n"[..],
            b"data: tools\n\n",
            b"data: {\"result\":{\"tools\":7}}\n\n",
            b"data: {\"result\":{\"tools\":[],\"tools\":[{\"name\":\"b\"}]}}\n\n",
            b"data: \xff\xfe\n\n",
        ] {
            assert_eq!(filter_sse_event(bad, &p), Filtered::Refused, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn odd_tool_entries_are_dropped_not_kept() {
        let p = policy(&["a"]);
        let out = rewritten(filter_sse_event(
            b"data: {\"result\":{\"tools\":[1,null,{\"name\":3},{\"name\":\"a\"}]}}\n\n",
            &p,
        ));
        assert_eq!(out, b"data: {\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n");
        for s in ["", "data:", "\u{0}\u{ff}"] {
            let _ = filter_sse_event(s.as_bytes(), &p);
            let _ = filter_json_body(s.as_bytes(), &p);
        }
    }

    #[test]
    fn answer_kinds_and_refusals() {
        assert_eq!(AnswerKind::of(200, "Application/JSON; charset=utf-8"), AnswerKind::Json);
        assert_eq!(AnswerKind::of(200, "text/event-stream"), AnswerKind::EventStream);
        assert_eq!(AnswerKind::of(200, "text/plain"), AnswerKind::Unexpected);
        assert_eq!(AnswerKind::of(202, ""), AnswerKind::Unexpected);
        assert_eq!(AnswerKind::of(200, "application/jsonx"), AnswerKind::Unexpected);
        assert_eq!(AnswerKind::of(404, "text/plain"), AnswerKind::Other);
        let one: Value = serde_json::from_slice(&refusal(&[json!(2)], false, "crm")).unwrap();
        assert_eq!((one["id"].clone(), one["error"]["code"].clone()), (json!(2), json!(INTERNAL_ERROR)));
        let many: Value = serde_json::from_slice(&refusal(&[json!(1), json!("b")], true, "crm")).unwrap();
        assert_eq!(many.as_array().map(Vec::len), Some(2));
        let ev = refusal_events(&[], "crm");
        let data = framer::data(&ev).unwrap();
        let v: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["id"], Value::Null);
        assert!(ev.ends_with(b"\n\n"));
    }
}
