//! Unit tests of `gemini`, and the golden fixtures of every provider the
//! table added (`tests/fixtures/{xai,groq,azure,gemini}/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;
use crate::provider::json::test_support::{assert_verbatim, fixture_files, policy_from_json};
use crate::provider::openai::rewrite_responses_for;
use crate::provider::Provider;

fn policy() -> McpPolicy {
    policy_from_json(&json!({"servers": {
        "crm": {"url": "https://crm.example/mcp", "bearer": "tok-crm-SECRET", "allowed_tools": ["search", "read"]},
        "hdr": {"url": "https://hdr.example/mcp", "headers": {"X-Api-Key": "k1-SECRET", "X-Org": "org-7"}},
        "open": {"url": "https://open.example/mcp"},
        "strict": {"url": "https://crm.example/mcp", "bearer": "tok-crm-SECRET", "require_approval": "always"}
    }}))
}

fn out(body: &str) -> Value {
    let r = rewrite_interactions(body.as_bytes(), &policy()).unwrap_or_else(|e| panic!("{e:?}"));
    serde_json::from_slice(&r.body.expect("rewritten")).unwrap()
}

fn err(body: &str) -> (Option<String>, String) {
    match rewrite_interactions(body.as_bytes(), &policy()) {
        Err(GatewayError::BadRequest { param, message }) => {
            assert!(!message.contains("SECRET"), "{message}");
            (param, message)
        }
        other => panic!("expected 400 for {body}, got {other:?}"),
    }
}

#[test]
fn bearer_becomes_an_authorization_header() {
    let v = out(r#"{"model":"m","input":"hi","tools":[{"type":"mcp_server","name":"crm"}]}"#);
    assert_eq!(
        v["tools"][0],
        json!({"type": "mcp_server", "name": "crm", "url": "https://crm.example/mcp",
               "headers": {"Authorization": "Bearer tok-crm-SECRET"}, "allowed_tools": [{"tools": ["search", "read"]}]})
    );
}

#[test]
fn header_credentials_and_no_credentials() {
    let v = out(
        r#"{"tools":[{"type":"mcp_server","name":"hdr"},{"type":"mcp_server","name":"open"},{"type":"google_search"}]}"#,
    );
    assert_eq!(v["tools"][0]["headers"], json!({"X-Api-Key": "k1-SECRET", "X-Org": "org-7"}));
    assert!(v["tools"][0].get("allowed_tools").is_none());
    assert_eq!(v["tools"][1], json!({"type": "mcp_server", "name": "open", "url": "https://open.example/mcp"}));
    assert_eq!(v["tools"][2], json!({"type": "google_search"}));
}

#[test]
fn allowed_tools_are_narrowed_per_entry() {
    let v = out(
        r#"{"tools":[{"type":"mcp_server","name":"crm","allowed_tools":[{"mode":"auto","tools":["write","read"]},{"mode":"any"}]}]}"#,
    );
    assert_eq!(
        v["tools"][0]["allowed_tools"],
        json!([{"mode": "auto", "tools": ["read"]}, {"mode": "any", "tools": ["search", "read"]}])
    );
    let v = out(r#"{"tools":[{"type":"mcp_server","name":"crm","allowed_tools":[]}]}"#);
    assert_eq!(v["tools"][0]["allowed_tools"], json!([{"tools": ["search", "read"]}]));
    let v = out(r#"{"tools":[{"type":"mcp_server","name":"open","allowed_tools":[{"tools":["x"]}]}]}"#);
    assert_eq!(v["tools"][0]["allowed_tools"], json!([{"tools": ["x"]}]), "no tenant list: the client's stands");
    assert_eq!(
        err(r#"{"tools":[{"type":"mcp_server","name":"crm","allowed_tools":[{"tools":["write"]}]}]}"#).0.as_deref(),
        Some("tools[0].allowed_tools")
    );
    for bad in [r#""search""#, r#"["search"]"#, r#"[{"tools":"search"}]"#, r#"[{"names":["a"]}]"#, r#"[{"mode":1}]"#] {
        let body = format!(r#"{{"tools":[{{"type":"mcp_server","name":"crm","allowed_tools":{bad}}}]}}"#);
        assert_eq!(err(&body).0.as_deref(), Some("tools[0].allowed_tools"), "{bad}");
    }
}

#[test]
fn approval_policies_cannot_be_dropped() {
    let (param, message) = err(r#"{"tools":[{"type":"mcp_server","name":"strict"}]}"#);
    assert_eq!(param.as_deref(), Some("tools[0].name"));
    assert!(message.contains("'strict'") && message.contains("approval"), "{message}");
}

#[test]
fn client_cannot_set_owned_fields_or_unknown_servers() {
    assert_eq!(
        err(r#"{"tools":[{"type":"mcp_server","name":"crm","url":"https://evil"}]}"#).0.as_deref(),
        Some("tools[0].url")
    );
    assert_eq!(
        err(r#"{"tools":[{"type":"mcp_server","name":"crm","headers":{"A":"b"}}]}"#).0.as_deref(),
        Some("tools[0].headers")
    );
    assert_eq!(err(r#"{"tools":[{"type":"mcp_server","name":"nope"}]}"#).0.as_deref(), Some("tools[0].name"));
    assert_eq!(err(r#"{"tools":[{"type":"mcp_server"}]}"#).0.as_deref(), Some("tools[0].name"));
    assert_eq!(
        err(r#"{"tools":[{"type":"mcp_server","name":"crm"},{"type":"mcp_server","name":"crm"}]}"#).0.as_deref(),
        Some("tools[1].name")
    );
    assert_eq!(err(r#"{"tools":{}}"#).0.as_deref(), Some("tools"));
    let unmanaged = McpPolicy { allow_unmanaged: true, ..policy() };
    let body = br#"{"tools":[{"type":"mcp_server","name":"other","url":"https://x"}]}"#;
    assert!(rewrite_interactions(body, &unmanaged).unwrap().body.is_none());
}

#[test]
fn bodies_without_managed_servers_pass_unchanged() {
    for body in [r#"{"model":"m","input":"x"}"#, r#"{"tools":null}"#, r#"{"tools":[{"type":"function","name":"f"}]}"#] {
        assert!(rewrite_interactions(body.as_bytes(), &policy()).unwrap().body.is_none(), "{body}");
    }
}

// ---- golden fixtures of the table's new providers ----

#[derive(serde::Deserialize)]
struct Fixture<'a> {
    policy: Value,
    #[serde(borrow)]
    request: &'a RawValue,
    expected: Option<Value>,
    expected_error: Option<Value>,
    injected: Option<Vec<String>>,
}

fn rewrite_for(provider: Provider, body: &[u8], policy: &McpPolicy) -> Result<Rewritten, GatewayError> {
    match provider {
        Provider::Gemini => rewrite_interactions(body, policy),
        _ => rewrite_responses_for(body, policy, provider.spec()),
    }
}

#[test]
fn golden_fixtures() {
    for provider in [Provider::Xai, Provider::Groq, Provider::AzureOpenAi, Provider::Gemini] {
        let files = fixture_files(provider.spec().name);
        assert!(files.len() >= 3, "{provider:?}: fixtures missing");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.display().to_string();
            let fx: Fixture<'_> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let policy = policy_from_json(&fx.policy);
            let request = fx.request.get().as_bytes();
            let result = rewrite_for(provider, request, &policy);
            if let Some(want) = fx.expected_error {
                let e = result.expect_err(&format!("{name}: expected an error"));
                let GatewayError::BadRequest { param, message } = e else { panic!("{name}: {e:?}") };
                assert_eq!(json!(param), want["param"], "{name}");
                if let Some(part) = want["message_contains"].as_str() {
                    assert!(message.contains(part), "{name}: {message}");
                }
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
            assert_verbatim(request, &output, &expected, &name);
        }
    }
}
