//! Unit tests of `storage`.

use super::*;
use crate::crypto::Secret;
use crate::tenant::input::{parse_tenant, ParseOptions};
use base64::Engine;

fn master() -> MasterKey {
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([3u8; 32])).unwrap()
}

const BODY: &str = r#"{"providers":{"openai":{"api_key":"sk-plain-openai"},"anthropic":{"api_key":"sk-ant-plain"}},
    "mcp_servers":{"crm":{"url":"https://crm.example/mcp","auth":{"type":"bearer","token":"tok-plain"},"allowed_tools":["a"],"require_approval":"always"},
    "files":{"url":"https://files.example/mcp","auth":{"type":"headers","headers":{"X-Api-Key":"hdr-plain"}}}}}"#;

#[test]
fn stored_form_holds_no_plaintext_and_round_trips() {
    let k = master();
    let t = parse_tenant(BODY.as_bytes(), ParseOptions::default()).unwrap();
    let stored = seal_tenant(&k, "acme", &t).unwrap();
    let json = serde_json::to_string(&stored).unwrap();
    for plain in ["sk-plain-openai", "sk-ant-plain", "tok-plain", "hdr-plain"] {
        assert!(!json.contains(plain));
    }
    let back = open_tenant(&k, "acme", &stored, Opening::Provider(Provider::OpenAi)).unwrap();
    assert_eq!(back.openai_key.unwrap().expose(), "sk-plain-openai");
    assert!(back.anthropic_key.is_none());
    assert_eq!(back.mcp.servers["crm"].require_approval, Approval::Always);
    assert!(matches!(&back.mcp.servers["files"].auth, McpAuth::Headers(h) if h[0].1.expose() == "hdr-plain"));
    let one = open_server(&k, "acme", "crm", &stored.mcp_servers["crm"]).unwrap();
    assert!(matches!(&one.auth, McpAuth::Bearer(t) if t.expose() == "tok-plain"));
    assert!(open_server(&k, "acme", "files", &stored.mcp_servers["crm"]).is_err(), "bound to its server name");
    // A record copied under another tenant id does not open.
    assert!(open_tenant(&k, "evil", &stored, Opening::Provider(Provider::Anthropic)).is_err());
}

#[test]
fn stored_closed_sets_fail_closed() {
    let good = r#"{"url":"https://a.example/mcp","auth":{"type":"none"},"require_approval":"always","mode":"relay"}"#;
    let s: StoredServer = serde_json::from_str(good).unwrap();
    assert_eq!((s.require_approval, s.mode()), (Approval::Always, McpMode::Relay));
    let old = r#"{"url":"https://a.example/mcp","auth":{"type":"none"},"require_approval":"never"}"#;
    assert_eq!(serde_json::from_str::<StoredServer>(old).unwrap().mode(), McpMode::Direct);
    // An unknown value is never read as a default that could widen access.
    for bad in [
        r#"{"url":"u","auth":{"type":"none"},"require_approval":"sometimes"}"#,
        r#"{"url":"u","auth":{"type":"none"},"require_approval":"Never"}"#,
        r#"{"url":"u","auth":{"type":"none"},"require_approval":"never","mode":"tunnel"}"#,
        r#"{"url":"u","auth":{"type":"kerberos"},"require_approval":"never"}"#,
    ] {
        assert!(serde_json::from_str::<StoredServer>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<StoredTenant>(r#"{"unknown_routes":"maybe"}"#).is_err());
    let t: StoredTenant = serde_json::from_str(r#"{"unknown_routes":"pass"}"#).unwrap();
    assert_eq!(t.unknown_routes, UnknownRoutes::Pass);
    assert_eq!(serde_json::from_str::<StoredTenant>("{}").unwrap().unknown_routes, UnknownRoutes::Refuse);
}

#[test]
fn relay_mode_and_service_round_trip() {
    let k = master();
    let body = r#"{"mcp_servers":{"priv":{"url":"http://crm.internal/mcp","service":"PRIVATE_MCP","auth":{"type":"none"}},
        "pub":{"url":"https://a.example/mcp","mode":"relay","auth":{"type":"none"}},
        "old":{"url":"https://b.example/mcp","auth":{"type":"none"}}}}"#;
    let t = parse_tenant(body.as_bytes(), ParseOptions::default()).unwrap();
    let stored = seal_tenant(&k, "acme", &t).unwrap();
    let json = serde_json::to_value(&stored).unwrap();
    assert!(json["mcp_servers"]["old"].get("mode").is_none(), "direct servers keep the old record shape");
    let back = open_tenant(&k, "acme", &stored, Opening::McpOnly).unwrap();
    assert_eq!(back.mcp.servers["priv"].mode, McpMode::Relay);
    assert_eq!(back.mcp.servers["priv"].service.as_deref(), Some("PRIVATE_MCP"));
    assert_eq!(back.mcp.servers["pub"].mode, McpMode::Relay);
    assert_eq!(back.mcp.servers["old"].mode, McpMode::Direct);
    let view = redacted_view("acme", &stored);
    assert_eq!(view["mcp_servers"]["priv"]["service"], "PRIVATE_MCP");
    assert_eq!(view["mcp_servers"]["old"]["mode"], "direct");
}

#[test]
fn redacted_view_has_no_secrets() {
    let k = master();
    let t = parse_tenant(BODY.as_bytes(), ParseOptions::default()).unwrap();
    let stored = seal_tenant(&k, "acme", &t).unwrap();
    let view = redacted_view("acme", &stored).to_string();
    assert!(!view.contains("v1:") && !view.contains("plain"));
    assert!(view.contains(r#""X-Api-Key":"[redacted]""#));
    assert!(view.contains(r#""api_key":"[redacted]""#));
}

#[test]
fn more_provider_keys_are_sealed_bound_and_redacted() {
    let k = master();
    let body = r#"{"providers":{"xai":{"api_key":"xai-plain"},"groq":{"api_key":"gsk-plain"},
        "gemini":{"api_key":"gem-plain"},"azure_openai":{"endpoint":"https://acme.openai.azure.com","api_key":"az-plain"}}}"#;
    let t = parse_tenant(body.as_bytes(), ParseOptions::default()).unwrap();
    let stored = seal_tenant(&k, "acme", &t).unwrap();
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains("plain"), "{json}");
    assert!(json.contains("https://acme.openai.azure.com"));
    for (p, plain) in [
        (Provider::Xai, "xai-plain"),
        (Provider::Groq, "gsk-plain"),
        (Provider::Gemini, "gem-plain"),
        (Provider::AzureOpenAi, "az-plain"),
    ] {
        assert!(has_provider_key(&stored, p));
        let opened = open_tenant(&k, "acme", &stored, Opening::Provider(p)).unwrap();
        assert_eq!(opened.provider_key(p).map(Secret::expose), Some(plain));
        for other in Provider::ALL.into_iter().filter(|o| *o != p) {
            assert!(opened.provider_key(other).is_none(), "{p:?} opened {other:?} too");
        }
        assert!(open_tenant(&k, "evil", &stored, Opening::Provider(p)).is_err());
    }
    assert_eq!(
        open_tenant(&k, "acme", &stored, Opening::Provider(Provider::AzureOpenAi))
            .unwrap()
            .provider_endpoint(Provider::AzureOpenAi),
        Some("https://acme.openai.azure.com")
    );
    let view = redacted_view("acme", &stored);
    assert_eq!(view["providers"]["azure_openai"]["endpoint"], "https://acme.openai.azure.com");
    assert_eq!(view["providers"]["gemini"]["api_key"], REDACTED);
    assert!(!view.to_string().contains("plain") && !view.to_string().contains("v1:"));
    // A key sealed for one provider does not open as another's.
    let mut swapped = stored.clone();
    swapped.groq_key = stored.xai_key.clone();
    assert!(open_tenant(&k, "acme", &swapped, Opening::Provider(Provider::Groq)).is_err());
}

#[test]
fn plans_keep_keys_and_tenant_in_step() {
    let entry =
        KeyEntry { id: "key_1".into(), sha256: "ab".into(), created_at: "t".into(), user: None, act_as_users: false };
    let (rec, ops) = plan_put_tenant("acme", None, StoredTenant::default(), "t0");
    assert_eq!(ops.len(), 1);
    let ops = plan_add_key("acme", rec.clone(), entry.clone(), "t1");
    assert!(matches!(&ops[0], KvOp::Put { key, .. } if key == "gk:ab"));
    let rec = TenantRecord { keys: vec![entry], ..rec };
    let (_, ops) = plan_put_tenant("acme", Some(rec.clone()), StoredTenant::default(), "t2");
    assert_eq!(ops.len(), 2, "replacing a tenant rewrites its key records");
    assert!(plan_remove_key("acme", rec.clone(), "key_other", "t").is_none());
    let ops = plan_remove_key("acme", rec.clone(), "key_1", "t").unwrap();
    assert_eq!(ops[0], KvOp::Delete { key: "gk:ab".into() });
    assert_eq!(plan_rewrite("acme", &rec).len(), 2, "a rewrite covers the record and every key copy");
    let ops = plan_delete_tenant("acme", &rec);
    assert_eq!(ops, vec![KvOp::Delete { key: "gk:ab".into() }, KvOp::Delete { key: "tenant:acme".into() }]);
}

#[test]
fn tenant_listing_keys() {
    assert_eq!(tenant_id_of_key(&tenant_key("acme")), Some("acme"));
    assert_eq!(tenant_id_of_key("gk:ab"), None);
    assert_eq!(tenant_id_of_key("tenant:a b"), None);
    assert!(tenant_key("x").starts_with(tenant_list_prefix()));
    assert_eq!(tenant_id_of_key(&oauth_token_key("acme", "crm", "c")), None);
    assert_eq!(tenant_id_of_key(tenant_list_prefix()), None);
}

#[test]
fn storage_doc_lists_every_prefix() {
    let doc = include_str!("../../../docs/storage-schema.md");
    for p in PREFIXES {
        assert!(doc.contains(&format!("`{p}")), "docs/storage-schema.md does not document {p}");
    }
}
