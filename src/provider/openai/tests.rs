//! Unit tests of `openai` (kept apart so the module stays readable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::provider::json::test_support::{assert_verbatim, fixture_files, policy_from_json, raw_members};
use crate::tenant::McpMode;

fn server(url: &str, auth: McpAuth, allowed: Option<&[&str]>, approval: Approval) -> McpServer {
    McpServer {
        url: url.into(),
        auth,
        allowed_tools: allowed.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        require_approval: approval,
        mode: McpMode::Direct,
        service: None,
    }
}

fn policy() -> McpPolicy {
    let mut servers = BTreeMap::new();
    servers.insert(
        "crm".to_owned(),
        server(
            "https://crm.example/mcp",
            McpAuth::Bearer(Secret::new("tok-crm-SECRET")),
            Some(&["search", "read", "write"]),
            Approval::Never,
        ),
    );
    servers.insert(
        "hdr".to_owned(),
        server(
            "https://hdr.example/mcp",
            McpAuth::Headers(vec![
                ("X-Api-Key".into(), Secret::new("k1-SECRET")),
                ("X-Org".into(), Secret::new("org-7")),
            ]),
            None,
            Approval::Always,
        ),
    );
    servers.insert("open".to_owned(), server("https://open.example/mcp", McpAuth::None, None, Approval::Never));
    McpPolicy { servers, allow_unmanaged: false }
}

fn permissive() -> McpPolicy {
    McpPolicy { allow_unmanaged: true, ..policy() }
}

fn rw(body: &str) -> Rewritten {
    rewrite_responses(body.as_bytes(), &policy()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn out_text(body: &str) -> String {
    String::from_utf8(rw(body).body.expect("rewritten")).unwrap()
}

fn out(body: &str) -> Value {
    serde_json::from_str(&out_text(body)).unwrap()
}

fn err_with(body: &str, policy: &McpPolicy) -> (Option<String>, String) {
    match rewrite_responses(body.as_bytes(), policy) {
        Err(e @ GatewayError::BadRequest { .. }) => {
            assert_eq!(e.wire().status, 400);
            let GatewayError::BadRequest { param, message } = e else { unreachable!() };
            assert!(!message.contains("SECRET"), "{message}");
            (param, message)
        }
        other => panic!("expected 400 for {body}, got {other:?}"),
    }
}

fn err(body: &str) -> (Option<String>, String) {
    err_with(body, &policy())
}

fn param(body: &str) -> String {
    err(body).0.unwrap_or_else(|| panic!("no param for {body}"))
}

#[test]
fn no_mcp_work_means_original_bytes() {
    for body in [
        r#"{"model":"m","input":"hi"}"#,
        r#"{"model":"m","tools":null}"#,
        r#"{"model":"m","tools":[]}"#,
        r#"{"tools":[{"type":"function","name":"f","parameters":{}},{"type":"web_search"}]}"#,
    ] {
        assert_eq!(rw(body), Rewritten { body: None, injected: vec![] }, "{body}");
    }
    let unmanaged = r#"{"tools":[{"type":"mcp","server_label":"elsewhere","server_url":"https://x.example"}]}"#;
    assert_eq!(rewrite_responses(unmanaged.as_bytes(), &permissive()).unwrap().body, None);
}

#[test]
fn rejects_bad_bodies_without_param() {
    for body in ["[]", "{", "{\"a\":1,\"a\":2}", "\"x\"", ""] {
        assert_eq!(err(body).0, None, "{body}");
    }
    let dup_in_tool = r#"{"tools":[{"type":"mcp","server_label":"crm","server_label":"other"}]}"#;
    assert!(err(dup_in_tool).1.contains("Duplicate key \"server_label\""));
    assert_eq!(rewrite_responses(b"{\"input\":\"\xff\"}", &policy()).unwrap_err().wire().status, 400);
}

#[test]
fn rejects_malformed_tools() {
    assert_eq!(param(r#"{"tools":{}}"#), "tools");
    assert_eq!(param(r#"{"tools":"mcp"}"#), "tools");
    assert_eq!(param(r#"{"tools":[{"type":"function"},3]}"#), "tools[1]");
    assert_eq!(param(r#"{"tools":[null]}"#), "tools[0]");
    assert_eq!(param(r#"{"tools":[{"name":"f"}]}"#), "tools[0].type");
    assert_eq!(param(r#"{"tools":[{"type":7}]}"#), "tools[0].type");
    assert_eq!(param(r#"{"tools":[{"type":"mcp"}]}"#), "tools[0].server_label");
    assert_eq!(param(r#"{"tools":[{"type":"mcp","server_label":null}]}"#), "tools[0].server_label");
    assert_eq!(param(r#"{"tools":[{"type":"mcp","server_label":["crm"]}]}"#), "tools[0].server_label");
}

#[test]
fn bearer_server_is_completed_in_order() {
    let body =
        r#"{"model":"gpt-4.1","tools":[{"type":"mcp","server_label":"crm","server_description":"CRM"}],"input":"hi"}"#;
    assert_eq!(
        out_text(body),
        r#"{"model":"gpt-4.1","tools":[{"type":"mcp","server_label":"crm","server_description":"CRM","server_url":"https://crm.example/mcp","authorization":"tok-crm-SECRET","allowed_tools":["search","read","write"],"require_approval":"never"}],"input":"hi"}"#
    );
    assert_eq!(rw(body).injected, ["crm"]);
}

#[test]
fn header_server_gets_headers_and_always() {
    let v = out(r#"{"tools":[{"type":"mcp","server_label":"hdr","require_approval":"never"}]}"#);
    assert_eq!(
        v["tools"][0],
        json!({"type":"mcp","server_label":"hdr","require_approval":"always","server_url":"https://hdr.example/mcp",
               "headers":{"X-Api-Key":"k1-SECRET","X-Org":"org-7"}})
    );
    // Header order is the configured order.
    let text = out_text(r#"{"tools":[{"type":"mcp","server_label":"hdr"}]}"#);
    assert!(text.contains(r#""headers":{"X-Api-Key":"k1-SECRET","X-Org":"org-7"}"#), "{text}");
}

#[test]
fn server_without_auth_gets_no_credentials() {
    let v = out(r#"{"tools":[{"type":"mcp","server_label":"open"}]}"#);
    assert_eq!(
        v["tools"][0],
        json!({"type":"mcp","server_label":"open","server_url":"https://open.example/mcp","require_approval":"never"})
    );
}

#[test]
fn owned_fields_are_rejected_and_nulls_dropped() {
    for field in OWNED_FIELDS {
        let body =
            format!(r#"{{"tools":[{{"type":"function"}},{{"type":"mcp","server_label":"crm","{field}":"x"}}]}}"#);
        let (p, message) = err(&body);
        assert_eq!(p.as_deref(), Some(format!("tools[1].{field}").as_str()));
        assert_eq!(message, format!("MCP server 'crm' is managed by the gateway; do not send {field}."));
    }
    let (p, _) = err(r#"{"tools":[{"type":"mcp","server_label":"open","headers":{}}]}"#);
    assert_eq!(p.as_deref(), Some("tools[0].headers"));
    let v = out(
        r#"{"tools":[{"type":"mcp","server_label":"open","server_url":null,"headers":null,"authorization":null,"connector_id":null,"tunnel_id":null}]}"#,
    );
    assert_eq!(
        v["tools"][0],
        json!({"type":"mcp","server_label":"open","server_url":"https://open.example/mcp","require_approval":"never"})
    );
}

#[test]
fn unknown_labels() {
    let (p, m) = err(r#"{"tools":[{"type":"mcp","server_label":"billing"}]}"#);
    assert_eq!(p.as_deref(), Some("tools[0].server_label"));
    assert_eq!(m, "Unknown MCP server 'billing': server_label does not name a configured MCP server.");
    let long = "a".repeat(65);
    for label in ["", long.as_str(), "crm\u{e9}", "../crm", "CRM ", "crm\n", "\u{202e}crm"] {
        let body = serde_json::to_string(&json!({"tools":[{"type":"mcp","server_label":label}]})).unwrap();
        let (p, m) = err(&body);
        assert_eq!(p.as_deref(), Some("tools[0].server_label"));
        assert_eq!(m, "server_label does not name a configured MCP server.", "{label:?}");
    }
    // Labels are case-sensitive and exact.
    assert_eq!(param(r#"{"tools":[{"type":"mcp","server_label":"Crm"}]}"#), "tools[0].server_label");
    // Allowed unmanaged entries pass untouched next to managed ones.
    let body = r#"{"tools":[{"type":"mcp","server_label":"../x", "server_url":"https://x.example/mcp","headers":{"A":"b"}},{"type":"mcp","server_label":"crm"}]}"#;
    let r = rewrite_responses(body.as_bytes(), &permissive()).unwrap();
    let text = String::from_utf8(r.body.unwrap()).unwrap();
    assert!(text
        .contains(r#"{"type":"mcp","server_label":"../x", "server_url":"https://x.example/mcp","headers":{"A":"b"}}"#));
    assert_eq!(r.injected, ["crm"]);
}

#[test]
fn duplicate_managed_labels_are_rejected() {
    let body = r#"{"tools":[{"type":"mcp","server_label":"crm"},{"type":"mcp","server_label":"open"},{"type":"mcp","server_label":"crm"}]}"#;
    let (p, m) = err(body);
    assert_eq!(p.as_deref(), Some("tools[2].server_label"));
    assert!(m.contains("'crm'"));
    // Unmanaged duplicates are the provider's business.
    let body = r#"{"tools":[{"type":"mcp","server_label":"x"},{"type":"mcp","server_label":"x"}]}"#;
    assert!(rewrite_responses(body.as_bytes(), &permissive()).unwrap().body.is_none());
}

fn allowed(client: &str) -> Value {
    let body = format!(r#"{{"tools":[{{"type":"mcp","server_label":"crm","allowed_tools":{client}}}]}}"#);
    out(&body)["tools"][0]["allowed_tools"].clone()
}

#[test]
fn allowed_tools_are_intersected() {
    assert_eq!(allowed(r#"["write","delete","search","write"]"#), json!(["write", "search"]));
    assert_eq!(allowed("null"), json!(["search", "read", "write"]));
    assert_eq!(allowed(r#"{"tool_names":["read","nope"],"read_only":false}"#), json!({"tool_names":["read"]}));
    assert_eq!(allowed(r#"{"tool_names":null}"#), json!({"tool_names":["search","read","write"]}));
    // Position of the client's member is kept.
    let text = out_text(r#"{"tools":[{"allowed_tools":["read"],"type":"mcp","server_label":"crm"}]}"#);
    assert!(text.contains(r#"[{"allowed_tools":["read"],"type":"mcp""#), "{text}");
}

#[test]
fn allowed_tools_fail_closed() {
    // An empty intersection is never forwarded as [] (a provider may read it as "no filter").
    for client in [r#"["delete"]"#, "[]", r#"{"tool_names":["nope"]}"#, r#"{"tool_names":[]}"#] {
        let body = format!(r#"{{"tools":[{{"type":"mcp","server_label":"crm","allowed_tools":{client}}}]}}"#);
        let (p, message) = err(&body);
        assert_eq!(p.as_deref(), Some("tools[0].allowed_tools"), "{body}");
        assert!(message.contains("'crm'"), "{message}");
    }
    // read_only next to a narrowed list would widen it under an OR reading.
    let body = r#"{"tools":[{"type":"mcp","server_label":"crm","allowed_tools":{"read_only":true}}]}"#;
    assert_eq!(param(body), "tools[0].allowed_tools.read_only");
    // A client's own empty list is refused too, with or without a tenant list.
    let body = r#"{"tools":[{"type":"mcp","server_label":"open","allowed_tools":[]}]}"#;
    assert_eq!(param(body), "tools[0].allowed_tools");
    // A tenant that lists no tools at all allows none.
    let mut p = policy();
    p.servers.get_mut("crm").unwrap().allowed_tools = Some(vec![]);
    let (param, _) = err_with(r#"{"tools":[{"type":"mcp","server_label":"crm"}]}"#, &p);
    assert_eq!(param.as_deref(), Some("tools[0].allowed_tools"));
}

#[test]
fn allowed_tools_without_tenant_list_pass_as_given() {
    let text = out_text(r#"{"tools":[{"type":"mcp","server_label":"open","allowed_tools":{ "read_only" : true }}]}"#);
    assert!(text.contains(r#""allowed_tools":{ "read_only" : true }"#), "{text}");
    let v = out(r#"{"tools":[{"type":"mcp","server_label":"open","allowed_tools":null}]}"#);
    assert!(v["tools"][0].get("allowed_tools").is_none());
}

#[test]
fn allowed_tools_shape_is_checked() {
    for client in [
        r#""search""#,
        "1",
        "true",
        r#"["a",1]"#,
        "[null]",
        r#"{"tool_names":"a"}"#,
        r#"{"tool_names":[1]}"#,
        r#"{"read_only":"yes"}"#,
        r#"{"mode":"all"}"#,
        r#"{"mode":null}"#,
    ] {
        for label in ["crm", "open"] {
            let body = format!(r#"{{"tools":[{{"type":"mcp","server_label":"{label}","allowed_tools":{client}}}]}}"#);
            assert_eq!(param(&body), "tools[0].allowed_tools", "{body}");
        }
    }
}

fn approval(label: &str, client: &str) -> Value {
    let body = format!(r#"{{"tools":[{{"type":"mcp","server_label":"{label}","require_approval":{client}}}]}}"#);
    out(&body)["tools"][0]["require_approval"].clone()
}

#[test]
fn require_approval_is_clamped() {
    // Tenant "always": whatever the client asks, "always".
    for client in [r#""never""#, r#""always""#, "null", r#"{"never":{"tool_names":["x"]}}"#] {
        assert_eq!(approval("hdr", client), json!("always"), "{client}");
    }
    // Tenant "never": the client's value is at least as strict.
    assert_eq!(approval("crm", r#""always""#), json!("always"));
    assert_eq!(approval("crm", r#""never""#), json!("never"));
    assert_eq!(approval("crm", "null"), json!("never"));
    let filter = r#"{"always":{"tool_names":["write"],"read_only":false},"never":{"read_only":true}}"#;
    let text = out_text(&format!(r#"{{"tools":[{{"type":"mcp","server_label":"crm","require_approval":{filter}}}]}}"#));
    assert!(text.contains(&format!(r#""require_approval":{filter}"#)), "{text}");
    // Absent: explicit "never" (OpenAI's default would be "always").
    assert_eq!(out(r#"{"tools":[{"type":"mcp","server_label":"crm"}]}"#)["tools"][0]["require_approval"], "never");
}

#[test]
fn require_approval_shape_is_checked() {
    for client in [
        r#""sometimes""#,
        r#""ALWAYS""#,
        "1",
        "[]",
        r#"{"maybe":{}}"#,
        r#"{"always":"x"}"#,
        r#"{"always":{"tool_names":"a"}}"#,
        r#"{"never":{"extra":1}}"#,
    ] {
        for label in ["crm", "hdr"] {
            let body =
                format!(r#"{{"tools":[{{"type":"mcp","server_label":"{label}","require_approval":{client}}}]}}"#);
            assert_eq!(param(&body), "tools[0].require_approval", "{body}");
        }
    }
    assert_eq!(approval("crm", r#"{"always":null,"never":{}}"#), json!({"always":null,"never":{}}));
}

#[test]
fn credentials_are_injected_on_follow_ups() {
    let input = r#"[{"type":"mcp_approval_response","approval_request_id":"mcpr_1","approve":true},{"role":"user","content":"ok \u00e9"}]"#;
    let body = format!(
        r#"{{"model":"gpt-4.1","previous_response_id":"resp_123","input":{input},"tools":[{{"type":"mcp","server_label":"crm"}}]}}"#
    );
    let text = out_text(&body);
    assert!(text.contains(&format!(r#""input":{input}"#)), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["tools"][0]["authorization"], "tok-crm-SECRET");
    assert_eq!(v["tools"][0]["server_url"], "https://crm.example/mcp");
    assert_eq!(v["previous_response_id"], "resp_123");
    let conversation = r#"{"conversation":"conv_1","input":[],"tools":[{"type":"mcp","server_label":"hdr"}]}"#;
    assert_eq!(out(conversation)["tools"][0]["headers"]["X-Api-Key"], "k1-SECRET");
}

#[test]
fn untouched_bytes_are_kept() {
    let body = "{ \"temperature\" : 1.0000000000000000001 ,\n \"metadata\": {\"n\": \"\\u00e9\", \"k\" : [1, 2.50]},\n\
        \"tools\": [ {\"type\":\"function\", \"name\":\"f\", \"strict\":true, \"x\": 1e5} , \
        {\"type\":\"mcp\",\"server_label\":\"crm\",\"defer_loading\":true,\"future\":{\"a\": 1.50, \"b\":\"\\u00e9\"}} ],\
        \"stream\":true }";
    let text = out_text(body);
    for fragment in [
        r#""temperature":1.0000000000000000001"#,
        r#""metadata":{"n": "\u00e9", "k" : [1, 2.50]}"#,
        r#"{"type":"function", "name":"f", "strict":true, "x": 1e5}"#,
        r#""defer_loading":true,"future":{"a": 1.50, "b":"\u00e9"}"#,
        r#""stream":true}"#,
    ] {
        assert!(text.contains(fragment), "missing {fragment} in {text}");
    }
    let keys: Vec<_> = raw_members(text.as_bytes()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["temperature", "metadata", "tools", "stream"]);
    crate::provider::json::check_strict(text.as_bytes()).unwrap();
}

#[test]
fn unicode_and_escaped_labels_match_after_unescaping() {
    let v = out(r#"{"tools":[{"type":"mcp","server_label":"\u0063rm"}]}"#);
    assert_eq!(v["tools"][0]["server_url"], "https://crm.example/mcp");
    let v = out(r#"{"tools":[{"t\u0079pe":"mcp","server_label":"crm"}]}"#);
    assert_eq!(v["tools"][0]["authorization"], "tok-crm-SECRET");
}

#[test]
fn deep_and_broken_inputs_do_not_crash() {
    let deep = format!(r#"{{"input":{}{},"tools":[]}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(err(&deep).0, None);
    let deep_tool = format!(r#"{{"tools":[{{"type":"mcp","server_label":"crm","x":{}}}]}}"#, "{\"a\":".repeat(5_000));
    assert_eq!(err(&deep_tool).0, None);
}

// ---- golden fixtures ----

#[derive(serde::Deserialize)]
struct Fixture<'a> {
    policy: Value,
    #[serde(borrow)]
    request: &'a RawValue,
    expected: Option<Value>,
    expected_error: Option<Value>,
    injected: Option<Vec<String>>,
}

#[test]
fn golden_fixtures() {
    let files = fixture_files("openai");
    assert!(files.len() >= 5, "fixtures missing");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        let fx: Fixture<'_> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = policy_from_json(&fx.policy);
        let request = fx.request.get().as_bytes();
        let result = rewrite_responses(request, &policy);
        if let Some(want) = fx.expected_error {
            let e = result.expect_err(&format!("{name}: expected an error"));
            let GatewayError::BadRequest { param, .. } = e else { panic!("{name}: {e:?}") };
            assert_eq!(json!(param), want["param"], "{name}");
            continue;
        }
        let result = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expected = fx.expected.unwrap_or_else(|| panic!("{name}: no expected"));
        let output = result.body.clone().unwrap_or_else(|| request.to_vec());
        let got: Value = serde_json::from_slice(&output).unwrap();
        assert_eq!(got, expected, "{name}");
        if let Some(injected) = fx.injected {
            assert_eq!(result.injected, injected, "{name}");
        }
        assert_verbatim(request, &output, &expected, &name.to_string());
    }
}

// ---- property test ----

mod property {
    use proptest::prelude::*;

    use super::*;
    use crate::provider::json::test_support::{arb_members, arb_value, ws};

    fn arb_mcp_entry() -> impl Strategy<Value = String> {
        let label = prop_oneof![
            3 => Just("\"crm\""),
            3 => Just("\"hdr\""),
            3 => Just("\"open\""),
            1 => Just("\"other\""),
            1 => Just("\"../x\""),
            1 => Just("\"\""),
            1 => Just("7"),
            2 => Just("\"\\u0063rm\""),
        ];
        let allowed = prop_oneof![
            3 => Just(None),
            3 => Just(Some(r#"["search","x"]"#)),
            3 => Just(Some(r#"{"tool_names":["read"],"read_only":true}"#)),
            2 => Just(Some("null")),
            1 => Just(Some("3")),
        ];
        let approval = prop_oneof![
            3 => Just(None),
            3 => Just(Some(r#""never""#)),
            3 => Just(Some(r#""always""#)),
            3 => Just(Some(r#"{"never":{"read_only":true}}"#)),
            1 => Just(Some(r#""bad""#)),
        ];
        let owned = prop_oneof![
            10 => Just(None),
            1 => Just(Some(r#""server_url":"https://evil.example""#)),
            2 => Just(Some(r#""authorization":null"#)),
        ];
        (label, allowed, approval, owned, arb_members(2)).prop_map(|(label, allowed, approval, owned, extra)| {
            let mut parts = vec![r#""type":"mcp""#.to_owned(), format!(r#""server_label":{label}"#)];
            parts.extend(allowed.map(|a| format!(r#""allowed_tools":{a}"#)));
            parts.extend(approval.map(|a| format!(r#""require_approval":{a}"#)));
            parts.extend(owned.map(str::to_owned));
            parts.extend(extra.into_iter().map(|(k, v)| format!("\"z{k}\":{v}")));
            format!("{{{}}}", parts.join(","))
        })
    }

    fn arb_other_entry() -> impl Strategy<Value = String> {
        (prop_oneof![Just("function"), Just("web_search"), Just("mcp_like")], arb_members(3)).prop_map(|(ty, extra)| {
            let mut parts = vec![format!(r#""type" : "{ty}""#)];
            parts.extend(extra.into_iter().map(|(k, v)| format!("\"z{k}\": {v}")));
            format!("{{ {} }}", parts.join(" , "))
        })
    }

    fn arb_body() -> impl Strategy<Value = String> {
        let entry = prop_oneof![8 => arb_mcp_entry(), 6 => arb_other_entry(), 1 => arb_value()];
        let tools = prop_oneof![
            1 => Just(None),
            1 => Just(Some("null".to_owned())),
            12 => prop::collection::vec(entry, 0..5).prop_map(|e| Some(format!("[{}]", e.join(", ")))),
        ];
        (arb_members(4), tools, 0..5usize, ws()).prop_map(|(members, tools, at, space)| {
            let mut parts: Vec<String> = members.into_iter().map(|(k, v)| format!("\"m{k}\"{space}:{v}")).collect();
            if let Some(t) = tools {
                parts.insert(at.min(parts.len()), format!("\"tools\":{space}{t}"));
            }
            format!("{space}{{{}}}{space}", parts.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn rewrite_never_panics_and_keeps_bytes(body in arb_body(), allow in any::<bool>()) {
            let policy = McpPolicy { allow_unmanaged: allow, ..policy() };
            let Ok(result) = rewrite_responses(body.as_bytes(), &policy) else { return Ok(()) };
            let Some(output) = result.body else { return Ok(()) };
            crate::provider::json::check_strict(&output).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let ins = raw_members(body.as_bytes());
            let outs = raw_members(&output);
            prop_assert_eq!(ins.len(), outs.len());
            for ((ki, vi), (ko, vo)) in ins.iter().zip(&outs) {
                prop_assert_eq!(ki, ko);
                if ki != "tools" {
                    prop_assert_eq!(vi, vo);
                }
            }
            let tools_in = &ins.iter().find(|(k, _)| k == "tools").unwrap().1;
            let tools_out = &outs.iter().find(|(k, _)| k == "tools").unwrap().1;
            let entries_in: Vec<&RawValue> = serde_json::from_str(tools_in).unwrap();
            let entries_out: Vec<&RawValue> = serde_json::from_str(tools_out).unwrap();
            prop_assert_eq!(entries_in.len(), entries_out.len());
            for (a, b) in entries_in.iter().zip(&entries_out) {
                let va: Value = serde_json::from_str(a.get()).unwrap();
                let managed = va["type"] == "mcp"
                    && va["server_label"].as_str().is_some_and(|l| policy.servers.contains_key(l));
                if managed {
                    let vb: Value = serde_json::from_str(b.get()).unwrap();
                    let label = va["server_label"].as_str().unwrap();
                    prop_assert_eq!(&vb["server_url"], &json!(policy.servers[label].url));
                } else {
                    prop_assert_eq!(a.get(), b.get());
                }
            }
        }
    }
}
