//! Unit tests of `batches`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;
use crate::provider::json::test_support::policy_from_json;

fn policy(allow_unmanaged: bool) -> McpPolicy {
    policy_from_json(&json!({
        "allow_unmanaged": allow_unmanaged,
        "servers": {"crm": {"url": "https://crm.example/mcp", "bearer": "tok-crm-secret", "allowed_tools": ["search"]}}
    }))
}

fn status(r: Result<(), GatewayError>) -> u16 {
    r.map_or_else(|e| e.wire().status, |()| 200)
}

#[test]
fn every_batch_request_is_completed_and_policed() {
    let body = json!({"requests": [
        {"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": [],
            "mcp_servers": [{"type": "url", "name": "crm", "url": "https://x"}]}},
        {"custom_id": "b", "params": {"model": "m", "max_tokens": 5, "messages": []}}
    ]});
    let r = rewrite_message_batches(body.to_string().as_bytes(), None, &policy(false)).unwrap();
    let out: Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
    let server = &out["requests"][0]["params"]["mcp_servers"][0];
    assert_eq!(server["url"], "https://crm.example/mcp");
    assert_eq!(server["authorization_token"], "tok-crm-secret");
    assert_eq!(out["requests"][1], body["requests"][1]);
    assert_eq!(r.injected, vec!["crm"]);
    assert!(r.beta.unwrap().contains("mcp-client-"));
}

#[test]
fn a_batch_request_naming_an_unmanaged_server_is_refused_with_its_path() {
    let body = json!({"requests": [
        {"custom_id": "a", "params": {"model": "m", "mcp_servers": [{"type": "url", "name": "evil", "url": "https://evil.example"}]}}
    ]});
    let e = rewrite_message_batches(body.to_string().as_bytes(), None, &policy(false)).unwrap_err();
    assert_eq!(e.wire().status, 400);
    assert!(e.message().starts_with("requests[0].params:"), "{}", e.message());
    let ok = rewrite_message_batches(body.to_string().as_bytes(), None, &policy(true)).unwrap();
    assert!(ok.body.is_none() && ok.injected.is_empty());
    let token = json!({"requests": [{"custom_id": "a", "params": {"mcp_servers": [{"name": "crm", "url": "u", "authorization_token": "mine"}]}}]});
    assert_eq!(
        rewrite_message_batches(token.to_string().as_bytes(), None, &policy(true)).unwrap_err().wire().status,
        400
    );
    for bad in [r#"{"requests": {}}"#, r#"{"requests": [1]}"#, r#"{"requests": [{"params": []}]}"#, "[]", "{"] {
        assert_eq!(
            rewrite_message_batches(bad.as_bytes(), None, &policy(false)).unwrap_err().wire().status,
            400,
            "{bad}"
        );
    }
}

fn form(purpose: &str, file: &str) -> Vec<u8> {
    format!(
        "--b1\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--b1\r\ncontent-disposition: form-data; name=\"file\"; filename=\"x.jsonl\"\r\n\r\n{file}\r\n--b1--\r\n"
    )
    .into_bytes()
}

const CT: Option<&str> = Some("multipart/form-data; boundary=b1");

#[test]
fn batch_files_with_mcp_tools_are_refused() {
    let plain = r#"{"custom_id":"1","method":"POST","url":"/v1/responses","body":{"model":"m","input":"hi"}}"#;
    let managed = r#"{"custom_id":"2","method":"POST","url":"/v1/responses","body":{"model":"m","tools":[{"type":"mcp","server_label":"crm"}]}}"#;
    let unmanaged = r#"{"custom_id":"3","method":"POST","url":"/v1/responses","body":{"tools":[{"type":"\u006dcp","server_label":"x","server_url":"https://evil"}]}}"#;
    assert_eq!(status(check_file_upload(CT, &form("batch", plain), &policy(false))), 200);
    assert_eq!(status(check_file_upload(CT, &form("batch", &format!("{plain}\n{managed}\n")), &policy(true))), 400);
    assert_eq!(status(check_file_upload(CT, &form("batch", unmanaged), &policy(false))), 400);
    assert_eq!(status(check_file_upload(CT, &form("batch", unmanaged), &policy(true))), 200);
    assert_eq!(status(check_file_upload(CT, &form("batch", "not json"), &policy(false))), 400);
    // Other purposes are not request lists.
    assert_eq!(status(check_file_upload(CT, &form("user_data", managed), &policy(false))), 200);
    assert_eq!(status(check_file_upload(Some("application/json"), b"{}", &policy(false))), 400);
}

#[test]
fn uploads_for_batch_are_refused() {
    assert_eq!(status(check_upload(br#"{"purpose":"batch","filename":"x","bytes":1,"mime_type":"text/jsonl"}"#)), 400);
    assert_eq!(status(check_upload(br#"{"purpose":"assistants"}"#)), 200);
    assert_eq!(status(check_upload(b"nope")), 400);
}

#[test]
fn realtime_sessions_never_name_a_managed_server() {
    let managed = br#"{"session":{"type":"realtime","tools":[{"type":"mcp","server_label":"crm"}]}}"#;
    let unmanaged =
        br#"{"session":{"type":"realtime","tools":[{"type":"mcp","server_label":"x","server_url":"https://x"}]}}"#;
    assert_eq!(status(check_realtime(None, managed, &policy(true))), 400);
    assert_eq!(status(check_realtime(None, unmanaged, &policy(true))), 200);
    assert_eq!(status(check_realtime(None, unmanaged, &policy(false))), 400);
    assert_eq!(status(check_realtime(None, br#"{"tools":[{"type":"mcp","server_label":"crm"}]}"#, &policy(true))), 400);
    assert_eq!(status(check_realtime(None, b"", &policy(true))), 200);
    let call = "--b1\r\ncontent-disposition: form-data; name=\"sdp\"\r\n\r\nv=0\r\n--b1\r\ncontent-disposition: form-data; name=\"session\"\r\n\r\n{\"tools\":[{\"type\":\"mcp\",\"server_label\":\"crm\"}]}\r\n--b1--";
    assert_eq!(status(check_realtime(CT, call.as_bytes(), &policy(true))), 400);
}
