//! Unit tests of `anthropic` (kept apart so the module stays readable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::crypto::Secret;
use crate::provider::json::test_support::{assert_verbatim, fixture_files, policy_from_json, raw_members};
use crate::tenant::{Approval, McpMode};

const NEW: &str = BETA_MCP_2025_11_20;
const OLD: &str = BETA_MCP_2025_04_04;

fn server(url: &str, auth: McpAuth, allowed: Option<&[&str]>) -> McpServer {
    McpServer {
        url: url.into(),
        auth,
        allowed_tools: allowed.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        require_approval: Approval::Never,
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
        ),
    );
    servers.insert("open".to_owned(), server("https://open.example/mcp", McpAuth::None, None));
    servers.insert(
        "hdr".to_owned(),
        server("https://hdr.example/mcp", McpAuth::Headers(vec![("X-Key".into(), Secret::new("k-SECRET"))]), None),
    );
    McpPolicy { servers, allow_unmanaged: false }
}

fn permissive() -> McpPolicy {
    McpPolicy { allow_unmanaged: true, ..policy() }
}

fn rw_with(body: &str, beta: Option<&str>, policy: &McpPolicy) -> AnthropicRewrite {
    rewrite_messages(body.as_bytes(), beta, policy).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn rw(body: &str, beta: Option<&str>) -> AnthropicRewrite {
    rw_with(body, beta, &policy())
}

fn out_text(body: &str, beta: Option<&str>) -> String {
    String::from_utf8(rw(body, beta).body.expect("rewritten")).unwrap()
}

fn out(body: &str, beta: Option<&str>) -> Value {
    serde_json::from_str(&out_text(body, beta)).unwrap()
}

fn err_with(body: &str, beta: Option<&str>, policy: &McpPolicy) -> (Option<String>, String) {
    match rewrite_messages(body.as_bytes(), beta, policy) {
        Err(e @ GatewayError::BadRequest { .. }) => {
            assert_eq!(e.wire().status, 400);
            let GatewayError::BadRequest { param, message } = e else { unreachable!() };
            assert!(!message.contains("SECRET"), "{message}");
            (param, message)
        }
        other => panic!("expected 400 for {body}, got {other:?}"),
    }
}

fn param(body: &str) -> String {
    err_with(body, None, &policy()).0.unwrap_or_else(|| panic!("no param for {body}"))
}

#[test]
fn no_mcp_servers_means_no_change() {
    for body in [
        r#"{"model":"claude","messages":[]}"#,
        r#"{"mcp_servers":null,"tools":[{"type":"mcp_toolset","mcp_server_name":"crm"}]}"#,
        r#"{"mcp_servers":[]}"#,
    ] {
        assert_eq!(rw(body, Some("foo")), AnthropicRewrite { body: None, beta: None, injected: vec![] }, "{body}");
    }
}

#[test]
fn rejects_malformed_servers() {
    assert_eq!(param(r#"{"mcp_servers":{}}"#), "mcp_servers");
    assert_eq!(param(r#"{"mcp_servers":[{"name":"open","url":"u"},[]]}"#), "mcp_servers[1]");
    assert_eq!(param(r#"{"mcp_servers":[{"type":"url","url":"u"}]}"#), "mcp_servers[0].name");
    assert_eq!(param(r#"{"mcp_servers":[{"name":1}]}"#), "mcp_servers[0].name");
    assert_eq!(param(r#"{"mcp_servers":[{"name":"open"}],"tools":{}}"#), "tools");
    assert_eq!(param(r#"{"mcp_servers":[{"name":"open"}],"tools":[1]}"#), "tools[0]");
    assert_eq!(param(r#"{"mcp_servers":[{"name":"open"}],"tools":[{"type":2}]}"#), "tools[0].type");
    assert_eq!(
        param(r#"{"mcp_servers":[{"name":"open"}],"tools":[{"type":"mcp_toolset"}]}"#),
        "tools[0].mcp_server_name"
    );
    for body in ["[]", "{\"a\":1,\"a\":1}", "{\"mcp_servers\":[{\"name\":\"crm\",\"name\":\"x\"}]}"] {
        assert_eq!(err_with(body, None, &policy()).0, None, "{body}");
    }
}

#[test]
fn managed_server_is_completed_in_place() {
    let body = r#"{"model":"claude-sonnet-4-5","mcp_servers":[{"type":"url","url":"https://placeholder.invalid","name":"crm","x":1.50}],"max_tokens":1024}"#;
    let r = rw(body, Some(OLD));
    assert_eq!(
        String::from_utf8(r.body.unwrap()).unwrap(),
        r#"{"model":"claude-sonnet-4-5","mcp_servers":[{"type":"url","url":"https://crm.example/mcp","name":"crm","x":1.50,"authorization_token":"tok-crm-SECRET","tool_configuration":{"allowed_tools":["search","read","write"]}}],"max_tokens":1024}"#
    );
    assert_eq!(r.beta, None);
    assert_eq!(r.injected, ["crm"]);
    // type added when absent; no url needed from the client.
    let v = out(r#"{"mcp_servers":[{"name":"open"}]}"#, Some(NEW));
    assert_eq!(v["mcp_servers"][0], json!({"name":"open","type":"url","url":"https://open.example/mcp"}));
}

#[test]
fn client_tokens_are_rejected_and_null_dropped() {
    let (p, m) =
        err_with(r#"{"mcp_servers":[{"name":"open"},{"name":"crm","authorization_token":"mine"}]}"#, None, &policy());
    assert_eq!(p.as_deref(), Some("mcp_servers[1].authorization_token"));
    assert_eq!(m, "MCP server 'crm' is managed by the gateway; do not send authorization_token.");
    let v = out(r#"{"mcp_servers":[{"name":"open","authorization_token":null}]}"#, Some(NEW));
    assert!(v["mcp_servers"][0].get("authorization_token").is_none());
    let v = out(r#"{"mcp_servers":[{"name":"crm","authorization_token":null}]}"#, Some(NEW));
    assert_eq!(v["mcp_servers"][0]["authorization_token"], "tok-crm-SECRET");
}

#[test]
fn header_credentials_are_rejected_for_anthropic() {
    let (p, m) = err_with(r#"{"mcp_servers":[{"name":"open"},{"name":"hdr"}]}"#, None, &policy());
    assert_eq!(p.as_deref(), Some("mcp_servers[1]"));
    assert!(m.contains("'hdr'") && m.contains("bearer token"), "{m}");
}

#[test]
fn unknown_names() {
    let (p, m) = err_with(r#"{"mcp_servers":[{"name":"billing","url":"https://b.example"}]}"#, None, &policy());
    assert_eq!(p.as_deref(), Some("mcp_servers[0].name"));
    assert_eq!(m, "Unknown MCP server 'billing': name does not name a configured MCP server.");
    let long = "n".repeat(65);
    for name in ["", long.as_str(), "crm\u{e9}", "../crm", "crm "] {
        let body = serde_json::to_string(&json!({"mcp_servers":[{"name":name,"url":"https://x.example"}]})).unwrap();
        let (p, m) = err_with(&body, None, &policy());
        assert_eq!(p.as_deref(), Some("mcp_servers[0].name"));
        assert_eq!(m, "name does not name a configured MCP server.", "{name:?}");
    }
    let body =
        r#"{"mcp_servers":[{"type":"url", "url":"https://x.example","name":"x","authorization_token":"theirs"}]}"#;
    let r = rw_with(body, Some(OLD), &permissive());
    assert_eq!(r, AnthropicRewrite { body: None, beta: None, injected: vec![] });
    let r = rw_with(body, Some("foo"), &permissive());
    assert_eq!(r.body, None);
    assert_eq!(r.beta.as_deref(), Some("foo,mcp-client-2025-11-20"));
}

#[test]
fn duplicate_managed_names_are_rejected() {
    let (p, _) = err_with(r#"{"mcp_servers":[{"name":"crm"},{"name":"crm"}]}"#, None, &policy());
    assert_eq!(p.as_deref(), Some("mcp_servers[1].name"));
    let dup_toolset = r#"{"mcp_servers":[{"name":"crm"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"crm"},{"type":"mcp_toolset","mcp_server_name":"crm"}]}"#;
    let (p, _) = err_with(dup_toolset, None, &policy());
    assert_eq!(p.as_deref(), Some("tools[1].mcp_server_name"));
}

#[test]
fn beta_flags_are_chosen_and_merged() {
    let plain = r#"{"mcp_servers":[{"name":"open"}]}"#;
    assert_eq!(rw(plain, None).beta.as_deref(), Some(NEW));
    assert_eq!(rw(plain, Some("foo, bar")).beta.as_deref(), Some("foo,bar,mcp-client-2025-11-20"));
    assert_eq!(rw(plain, Some(" foo,,foo , ,bar ")).beta.as_deref(), Some("foo,bar,mcp-client-2025-11-20"));
    assert_eq!(rw(plain, Some("")).beta.as_deref(), Some(NEW));
    assert_eq!(rw(plain, Some(&format!("foo, {OLD}"))).beta, None);
    assert_eq!(rw(plain, Some(NEW)).beta, None);
    assert_eq!(rw(plain, Some("MCP-Client-2025-11-20")).beta, None);
    // Inference from the body.
    let with_config = r#"{"mcp_servers":[{"name":"open","tool_configuration":{"enabled":true}}]}"#;
    assert_eq!(rw(with_config, Some("foo")).beta.as_deref(), Some("foo,mcp-client-2025-04-04"));
    let null_config = r#"{"mcp_servers":[{"name":"open","tool_configuration":null}]}"#;
    assert_eq!(rw(null_config, None).beta.as_deref(), Some(NEW));
    let both = r#"{"mcp_servers":[{"name":"open","tool_configuration":{}}],"tools":[{"type":"mcp_toolset","mcp_server_name":"open"}]}"#;
    assert_eq!(rw(both, None).beta.as_deref(), Some(NEW));
    let unmanaged_config =
        r#"{"mcp_servers":[{"name":"x","url":"https://x.example","tool_configuration":{"allowed_tools":[]}}]}"#;
    assert_eq!(rw_with(unmanaged_config, None, &permissive()).beta.as_deref(), Some(OLD));
    // Both flags: choose one.
    let (p, m) = err_with(plain, Some(&format!("{OLD},{NEW}")), &policy());
    assert_eq!(p, None);
    assert!(m.contains("choose one"), "{m}");
}

fn tool_configuration(client: Option<&str>, beta: &str) -> Value {
    let body = client.map_or_else(
        || r#"{"mcp_servers":[{"name":"crm"}]}"#.to_owned(),
        |c| format!(r#"{{"mcp_servers":[{{"name":"crm","tool_configuration":{c}}}]}}"#),
    );
    out(&body, Some(beta))["mcp_servers"][0].get("tool_configuration").cloned().unwrap_or(Value::Null)
}

#[test]
fn tool_configuration_is_intersected() {
    assert_eq!(tool_configuration(None, OLD), json!({"allowed_tools":["search","read","write"]}));
    assert_eq!(tool_configuration(Some("null"), OLD), json!({"allowed_tools":["search","read","write"]}));
    assert_eq!(
        tool_configuration(Some(r#"{"enabled":false,"allowed_tools":["delete","read","read"],"future":{"a":1}}"#), OLD),
        json!({"enabled":false,"allowed_tools":["read"],"future":{"a":1}})
    );
    assert_eq!(
        tool_configuration(Some(r#"{"enabled":true}"#), OLD),
        json!({"enabled":true,"allowed_tools":["search","read","write"]})
    );
    // Under the toolset beta a client-sent configuration is still narrowed, none is added.
    assert_eq!(tool_configuration(Some(r#"{"allowed_tools":["write","x"]}"#), NEW), json!({"allowed_tools":["write"]}));
    assert_eq!(tool_configuration(None, NEW), Value::Null);
    // No tenant list: untouched bytes.
    let text =
        out_text(r#"{"mcp_servers":[{"name":"open","tool_configuration":{ "allowed_tools" : ["any"] }}]}"#, Some(OLD));
    assert!(text.contains(r#""tool_configuration":{ "allowed_tools" : ["any"] }"#), "{text}");
}

#[test]
fn tool_configuration_shape_is_checked() {
    for config in [r#""all""#, "[]", r#"{"enabled":"yes"}"#, r#"{"allowed_tools":"a"}"#, r#"{"allowed_tools":[1]}"#] {
        for name in ["crm", "open"] {
            let body = format!(r#"{{"mcp_servers":[{{"name":"{name}","tool_configuration":{config}}}]}}"#);
            assert_eq!(param(&body), "mcp_servers[0].tool_configuration", "{body}");
        }
    }
}

#[test]
fn toolsets_are_added_for_managed_servers() {
    let body = r#"{"mcp_servers":[{"name":"crm"},{"name":"open"}],"messages":[]}"#;
    let v = out(body, None);
    assert_eq!(
        v["tools"],
        json!([
            {"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},
             "configs":{"search":{"enabled":true},"read":{"enabled":true},"write":{"enabled":true}}},
            {"type":"mcp_toolset","mcp_server_name":"open"}
        ])
    );
    let text = out_text(body, None);
    assert!(text.ends_with(r#""messages":[],"tools":[{"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},"configs":{"search":{"enabled":true},"read":{"enabled":true},"write":{"enabled":true}}},{"type":"mcp_toolset","mcp_server_name":"open"}]}"#), "{text}");
    // Existing tools kept in front; null tools replaced in place.
    let v = out(r#"{"tools":[{"name":"calc","input_schema":{}}],"mcp_servers":[{"name":"open"}]}"#, Some(NEW));
    assert_eq!(v["tools"], json!([{"name":"calc","input_schema":{}},{"type":"mcp_toolset","mcp_server_name":"open"}]));
    let text = out_text(r#"{"tools":null,"mcp_servers":[{"name":"open"}]}"#, None);
    assert!(text.starts_with(r#"{"tools":[{"type":"mcp_toolset""#), "{text}");
    // Old shape: never add toolsets.
    let v = out(body, Some(OLD));
    assert!(v.get("tools").is_none());
}

fn toolset(client: &str) -> Value {
    let body = format!(r#"{{"mcp_servers":[{{"name":"crm"}}],"tools":[{client}]}}"#);
    let v = out(&body, None);
    assert_eq!(v["tools"].as_array().unwrap().len(), 1);
    v["tools"][0].clone()
}

#[test]
fn client_toolsets_are_narrowed() {
    assert_eq!(
        toolset(
            r#"{"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":true,"defer_loading":true},
               "configs":{"write":{"enabled":false},"delete":{"enabled":true},"read":{"defer_loading":true}},
               "cache_control":{"type":"ephemeral"}}"#
        ),
        json!({"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false,"defer_loading":true},
               "configs":{"search":{"enabled":true},"read":{"defer_loading":true,"enabled":true},"write":{"enabled":false}},
               "cache_control":{"type":"ephemeral"}})
    );
    // Client allowlist.
    assert_eq!(
        toolset(
            r#"{"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},"configs":{"read":{"enabled":true},"delete":{"enabled":true}}}"#
        ),
        json!({"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},
               "configs":{"search":{"enabled":false},"read":{"enabled":true},"write":{"enabled":false}}})
    );
    // Bare toolset.
    assert_eq!(
        toolset(r#"{"mcp_server_name":"crm","type":"mcp_toolset","default_config":null}"#),
        json!({"mcp_server_name":"crm","type":"mcp_toolset","default_config":{"enabled":false},
               "configs":{"search":{"enabled":true},"read":{"enabled":true},"write":{"enabled":true}}})
    );
    // Per-tool null falls back to the default.
    assert_eq!(
        toolset(
            r#"{"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},"configs":{"read":{"enabled":null},"write":{"enabled":true}}}"#
        )["configs"]["read"],
        json!({"enabled":false})
    );
}

#[test]
fn empty_tool_sets_fail_closed() {
    // A toolset that would enable none of the tenant's tools is refused, naming the server.
    let body = r#"{"mcp_servers":[{"name":"crm"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"crm","default_config":{"enabled":false},"configs":{"delete":{"enabled":true}}}]}"#;
    let (p, message) = err_with(body, Some(NEW), &policy());
    assert_eq!(p.as_deref(), Some("tools[0]"));
    assert!(message.contains("'crm'"), "{message}");
    // tool_configuration: an empty intersection, or an empty client list.
    for config in [r#"{"allowed_tools":[]}"#, r#"{"allowed_tools":["delete"]}"#] {
        let body = format!(r#"{{"mcp_servers":[{{"name":"crm","tool_configuration":{config}}}]}}"#);
        let (p, _) = err_with(&body, Some(OLD), &policy());
        assert!(p.unwrap().starts_with("mcp_servers[0].tool_configuration"), "{body}");
    }
    // A tenant that allows no tools: refused under either beta.
    let mut none = policy();
    none.servers.get_mut("crm").unwrap().allowed_tools = Some(vec![]);
    for beta in [OLD, NEW] {
        let (p, _) = err_with(r#"{"mcp_servers":[{"name":"crm"}]}"#, Some(beta), &none);
        assert!(p.is_some(), "{beta}");
    }
}

#[test]
fn unknown_mcp_betas_are_refused() {
    let body = r#"{"mcp_servers":[{"name":"crm"}]}"#;
    let (p, message) = err_with(body, Some("mcp-client-2027-01-01"), &policy());
    assert_eq!(p.as_deref(), Some("anthropic-beta"));
    assert!(message.contains("mcp-client-2027-01-01"), "{message}");
    // Even without mcp_servers: a future connector may read configuration elsewhere.
    assert!(err_with(r#"{"messages":[]}"#, Some("x,MCP-Client-2099-09-09"), &policy()).0.is_some());
    assert!(rewrite_messages(br#"{"messages":[]}"#, Some("other-beta,mcp-client-2025-11-20"), &policy()).is_ok());
}

#[test]
fn toolsets_without_tenant_list_or_unmanaged_are_untouched() {
    let open = r#"{"type":"mcp_toolset","mcp_server_name":"open", "configs":{"x":{"enabled":true}}}"#;
    let other = r#"{"type":"mcp_toolset","mcp_server_name":"x","default_config":{"enabled":true}}"#;
    let body = format!(
        r#"{{"mcp_servers":[{{"name":"open"}},{{"name":"x","url":"https://x.example"}}],"tools":[{open},{other}]}}"#
    );
    let r = rw_with(&body, None, &permissive());
    let text = String::from_utf8(r.body.unwrap()).unwrap();
    assert!(text.contains(&format!(r#""tools":[{open},{other}]"#)), "{text}");
    assert_eq!(r.injected, ["open"]);
}

#[test]
fn toolset_shape_is_checked() {
    for (field, toolset) in [
        ("default_config", r#""default_config":[]"#),
        ("default_config", r#""default_config":{"enabled":"no"}"#),
        ("default_config", r#""default_config":{"defer_loading":1}"#),
        ("configs", r#""configs":[]"#),
        ("configs", r#""configs":{"read":true}"#),
        ("configs", r#""configs":{"read":{"enabled":1}}"#),
    ] {
        for name in ["crm", "open"] {
            let body = format!(
                r#"{{"mcp_servers":[{{"name":"{name}"}}],"tools":[{{"type":"mcp_toolset","mcp_server_name":"{name}",{toolset}}}]}}"#
            );
            assert_eq!(param(&body), format!("tools[0].{field}"), "{body}");
        }
    }
    // Client toolsets for managed servers are narrowed even under the old beta.
    let body = r#"{"mcp_servers":[{"name":"crm"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"crm"}]}"#;
    let v = out(body, Some(OLD));
    assert_eq!(v["tools"][0]["default_config"], json!({"enabled":false}));
}

#[test]
fn untouched_bytes_are_kept() {
    let messages = r#"[ {"role":"user","content":"caf\u00e9 \ud83d\ude00"} ]"#;
    let body = format!(
        "{{\n  \"model\" : \"claude\",\n  \"temperature\": 1.0000000000000000001,\n  \"messages\": {messages},\n  \
         \"mcp_servers\": [ {{\"name\":\"crm\", \"x-future\" : [1.0, 2e3]}} ],\n  \"tools\": [ {{\"name\":\"calc\" , \"input_schema\":{{}}}} ]\n}}"
    );
    let text = out_text(&body, None);
    for fragment in [
        r#""temperature":1.0000000000000000001"#,
        &format!(r#""messages":{messages}"#),
        r#""x-future":[1.0, 2e3]"#,
        r#""tools":[{"name":"calc" , "input_schema":{}},"#,
    ] {
        assert!(text.contains(fragment), "missing {fragment} in {text}");
    }
    crate::provider::json::check_strict(text.as_bytes()).unwrap();
}

#[test]
fn deep_and_broken_inputs_do_not_crash() {
    let deep = format!(r#"{{"messages":{}{},"mcp_servers":[]}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(err_with(&deep, None, &policy()).0, None);
    let bytes = b"{\"mcp_servers\":[{\"name\":\"\xff\"}]}";
    assert_eq!(rewrite_messages(bytes, None, &policy()).unwrap_err().wire().status, 400);
    let bytes = b"{\"mcp_servers\":[{\"name\":\"crm\"}],\"x\":\"\xc3\x28\"}";
    assert_eq!(rewrite_messages(bytes, None, &policy()).unwrap_err().wire().status, 400);
}

// ---- golden fixtures ----

#[derive(serde::Deserialize)]
struct Fixture<'a> {
    policy: Value,
    beta: Option<String>,
    #[serde(borrow)]
    request: &'a RawValue,
    expected: Option<Value>,
    expected_beta: Option<String>,
    expected_error: Option<Value>,
    injected: Option<Vec<String>>,
}

#[test]
fn golden_fixtures() {
    let files = fixture_files("anthropic");
    assert!(files.len() >= 5, "fixtures missing");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        let fx: Fixture<'_> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = policy_from_json(&fx.policy);
        let request = fx.request.get().as_bytes();
        let result = rewrite_messages(request, fx.beta.as_deref(), &policy);
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
        assert_eq!(result.beta, fx.expected_beta, "{name}");
        if let Some(injected) = fx.injected {
            assert_eq!(result.injected, injected, "{name}");
        }
        assert_verbatim(request, &output, &expected, &name);
    }
}

// ---- property test ----

mod property {
    use proptest::prelude::*;

    use super::*;
    use crate::provider::json::test_support::{arb_members, arb_value};

    const NAMES: [&str; 6] = ["\"crm\"", "\"open\"", "\"hdr\"", "\"other\"", "\"../x\"", "\"\\u0063rm\""];

    fn arb_server() -> impl Strategy<Value = String> {
        let name = prop_oneof![4 => Just(NAMES[0]), 4 => Just(NAMES[1]), 1 => Just(NAMES[2]), 2 => Just(NAMES[3]), 1 => Just(NAMES[4]), 2 => Just(NAMES[5])];
        let config = prop_oneof![
            4 => Just(None),
            2 => Just(Some(r#"{"enabled":true,"allowed_tools":["read","x"],"more":[1.0]}"#)),
            1 => Just(Some("null")),
            1 => Just(Some("[]")),
        ];
        let token = prop_oneof![8 => Just(None), 1 => Just(Some("null")), 1 => Just(Some(r#""tok""#))];
        (name, config, token, prop::bool::ANY, arb_members(2)).prop_map(|(name, config, token, ty, extra)| {
            let mut parts = vec![format!(r#""name":{name}"#), r#""url" : "https://c.example""#.to_owned()];
            if ty {
                parts.insert(0, r#""type":"url""#.to_owned());
            }
            parts.extend(config.map(|c| format!(r#""tool_configuration":{c}"#)));
            parts.extend(token.map(|t| format!(r#""authorization_token":{t}"#)));
            parts.extend(extra.into_iter().map(|(k, v)| format!("\"z{k}\":{v}")));
            format!("{{{}}}", parts.join(","))
        })
    }

    fn arb_tool() -> impl Strategy<Value = String> {
        let name = prop_oneof![Just(NAMES[0]), Just(NAMES[1]), Just(NAMES[3])];
        let toolset = (name, prop_oneof![
            Just(""),
            Just(r#","default_config":{"enabled":true,"defer_loading":false}"#),
            Just(r#","configs":{"read":{"enabled":false},"x":{"defer_loading":true}},"cache_control":{"type":"ephemeral"}"#),
            Just(r#","configs":{"read":1}"#),
        ])
            .prop_map(|(n, rest)| format!(r#"{{"type":"mcp_toolset","mcp_server_name":{n}{rest}}}"#));
        let other = arb_members(3).prop_map(|m| {
            let parts: Vec<String> = m.into_iter().map(|(k, v)| format!("\"z{k}\" : {v}")).collect();
            format!(r#"{{"name":"calc", {}}}"#, parts.join(", ")).replace(", }", "}")
        });
        prop_oneof![3 => toolset, 4 => other, 1 => arb_value()]
    }

    fn arb_body() -> impl Strategy<Value = String> {
        let servers = prop_oneof![
            1 => Just(None),
            8 => prop::collection::vec(arb_server(), 0..4).prop_map(|s| Some(format!("[{}]", s.join(", ")))),
        ];
        let tools = prop_oneof![
            2 => Just(None),
            1 => Just(Some("null".to_owned())),
            5 => prop::collection::vec(arb_tool(), 0..4).prop_map(|t| Some(format!("[ {} ]", t.join(",")))),
        ];
        (arb_members(3), servers, tools).prop_map(|(members, servers, tools)| {
            let mut parts: Vec<String> = members.into_iter().map(|(k, v)| format!("\"m{k}\": {v}")).collect();
            parts.extend(servers.map(|s| format!("\"mcp_servers\": {s}")));
            parts.extend(tools.map(|t| format!("\"tools\":{t}")));
            format!("{{ {} }}", parts.join(",\n"))
        })
    }

    fn beta() -> impl Strategy<Value = Option<&'static str>> {
        prop_oneof![
            Just(None),
            Just(Some("foo")),
            Just(Some("mcp-client-2025-04-04")),
            Just(Some("x, mcp-client-2025-11-20")),
            Just(Some("mcp-client-2025-04-04,mcp-client-2025-11-20")),
        ]
    }

    fn entries(members: &[(String, String)], key: &str) -> Vec<String> {
        members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| {
                serde_json::from_str::<Vec<&RawValue>>(v).map(|e| e.iter().map(|r| r.get().to_owned()).collect())
            })
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn rewrite_never_panics_and_keeps_bytes(body in arb_body(), beta in beta(), allow in any::<bool>()) {
            let policy = McpPolicy { allow_unmanaged: allow, ..policy() };
            let Ok(result) = rewrite_messages(body.as_bytes(), beta, &policy) else { return Ok(()) };
            if let Some(b) = &result.beta {
                prop_assert_eq!(b.matches("mcp-client-").count(), 1);
            }
            let Some(output) = result.body else { return Ok(()) };
            crate::provider::json::check_strict(&output).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let ins = raw_members(body.as_bytes());
            let outs = raw_members(&output);
            for (k, v) in &ins {
                if k != "tools" && k != "mcp_servers" {
                    let got = outs.iter().find(|(ko, _)| ko == k).map(|(_, vo)| vo);
                    prop_assert_eq!(got, Some(v));
                }
            }
            // Non-toolset tools and toolsets of servers outside the policy keep their bytes, in order.
            let keep = |e: &String| {
                let v: Value = serde_json::from_str(e).unwrap();
                v["type"] != "mcp_toolset"
                    || !v["mcp_server_name"].as_str().is_some_and(|n| policy.servers.contains_key(n))
            };
            let tools_in: Vec<String> = entries(&ins, "tools").into_iter().filter(keep).collect();
            let tools_out: Vec<String> = entries(&outs, "tools").into_iter().filter(keep).collect();
            prop_assert_eq!(tools_in, tools_out);
            // Unmanaged servers keep their bytes; managed ones get the configured url.
            let servers_in = entries(&ins, "mcp_servers");
            let servers_out = entries(&outs, "mcp_servers");
            prop_assert_eq!(servers_in.len(), servers_out.len());
            for (a, b) in servers_in.iter().zip(&servers_out) {
                let va: Value = serde_json::from_str(a).unwrap();
                if let Some(s) = va["name"].as_str().and_then(|n| policy.servers.get(n)) {
                    let vb: Value = serde_json::from_str(b).unwrap();
                    prop_assert_eq!(&vb["url"], &json!(s.url));
                } else {
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
