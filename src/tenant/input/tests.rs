//! Unit tests of `input`.

use super::*;

pub(crate) fn parse(s: &str) -> Result<Tenant, GatewayError> {
    parse_tenant(s.as_bytes(), ParseOptions::default())
}

/// The field a 400 names (panics on any other error).
pub(crate) fn param(e: GatewayError) -> String {
    match e {
        GatewayError::BadRequest { param, .. } => param.unwrap_or_default(),
        other => panic!("not a 400: {other:?}"),
    }
}

#[test]
fn parses_the_readme_example() {
    let t = parse(
        r#"{"providers":{"openai":{"api_key":"sk-1"},"anthropic":{"api_key":"sk-ant-1"}},
        "mcp_servers":{"crm":{"url":"https://mcp.example.com/mcp","auth":{"type":"bearer","token":"t0k"},
          "allowed_tools":["search","lookup"],"require_approval":"never"},
         "files":{"url":"https://files.example.com/mcp","auth":{"type":"headers","headers":{"X-Api-Key":"k"}}},
         "public":{"url":"https://docs.example.com/mcp","auth":{"type":"none"}}},
        "allow_unmanaged_mcp_servers":false}"#,
    )
    .unwrap();
    assert_eq!(t.openai_key.unwrap().expose(), "sk-1");
    assert_eq!(t.mcp.servers.len(), 3);
    let crm = &t.mcp.servers["crm"];
    assert!(matches!(&crm.auth, McpAuth::Bearer(s) if s.expose() == "t0k"));
    assert_eq!(crm.allowed_tools.as_deref(), Some(&["search".to_string(), "lookup".to_string()][..]));
    assert!(matches!(&t.mcp.servers["files"].auth, McpAuth::Headers(h) if h[0].0 == "X-Api-Key"));
    assert_eq!(t.mcp.servers["public"].require_approval, Approval::Never);
}

#[test]
fn more_providers() {
    let t = parse(
        r#"{"providers":{"xai":{"api_key":"xai-1"},"groq":{"api_key":"gsk-1"},"gemini":{"api_key":"AIza-1"},
        "azure_openai":{"endpoint":"https://acme.openai.azure.com/","api_key":"az-1"}}}"#,
    )
    .unwrap();
    assert_eq!(t.xai_key.unwrap().expose(), "xai-1");
    assert_eq!(t.groq_key.unwrap().expose(), "gsk-1");
    assert_eq!(t.gemini_key.unwrap().expose(), "AIza-1");
    let az = t.azure_openai.unwrap();
    assert_eq!((az.endpoint.as_str(), az.api_key.expose()), ("https://acme.openai.azure.com", "az-1"));
    for (body, path) in [
        (r#"{"providers":{"azure_openai":{"api_key":"k"}}}"#, "providers.azure_openai"),
        (
            r#"{"providers":{"azure_openai":{"endpoint":"http://acme.openai.azure.com","api_key":"k"}}}"#,
            "providers.azure_openai.endpoint",
        ),
        (
            r#"{"providers":{"azure_openai":{"endpoint":"https://a.b/openai/v1","api_key":"k"}}}"#,
            "providers.azure_openai.endpoint",
        ),
        (
            r#"{"providers":{"azure_openai":{"endpoint":"https://a.b?x=1","api_key":"k"}}}"#,
            "providers.azure_openai.endpoint",
        ),
        (
            r#"{"providers":{"azure_openai":{"endpoint":"http://127.0.0.1:9","api_key":"k"}}}"#,
            "providers.azure_openai.endpoint",
        ),
        (r#"{"providers":{"azure_openai":{"endpoint":"https://a.b","api_key":""}}}"#, "providers.azure_openai.api_key"),
        (r#"{"providers":{"gemini":{"api_key":"k","region":"eu"}}}"#, "providers.gemini"),
        (r#"{"providers":{"mistral":{"api_key":"k"}}}"#, "providers"),
    ] {
        assert_eq!(param(parse(body).unwrap_err()), path, "{body}");
    }
    let local = r#"{"providers":{"azure_openai":{"endpoint":"http://127.0.0.1:9","api_key":"k"}}}"#;
    let t = parse_tenant(local.as_bytes(), ParseOptions { allow_insecure_urls: true }).unwrap();
    assert_eq!(t.azure_openai.unwrap().endpoint, "http://127.0.0.1:9");
}

#[test]
fn unknown_fields_are_named() {
    let e = parse(r#"{"mcp_servers":{"crm":{"url":"https://a.b/","auth":{"type":"none"},"colour":1}}}"#).unwrap_err();
    assert_eq!(param(e.clone()), "mcp_servers.crm");
    assert!(e.message().contains("colour"), "{}", e.message());
    let e = parse(r#"{"provider":{}}"#).unwrap_err();
    assert!(e.message().contains("provider"));
    let e = parse(r#"{"mcp_servers":{"crm":{"url":"https://a.b/","auth":{"type":"bearer","token":"x","extra":1}}}}"#)
        .unwrap_err();
    assert_eq!(param(e), "mcp_servers.crm.auth");
}

#[test]
fn urls_are_checked() {
    let bad = [
        "http://example.com/mcp",
        "https://exa mple.com/",
        "https://example.com/#frag",
        "https://:443/x",
        "https://example.com:99999/",
        "https://exämple.com/",
        "https:/example.com",
        "https://[zz]/",
        "ftp://example.com",
        "https://user:pw@example.com/",
        "not a url",
        "http://127.0.0.1:9/x",
    ];
    for u in bad {
        let body = format!(r#"{{"mcp_servers":{{"s":{{"url":"{u}","auth":{{"type":"none"}}}}}}}}"#);
        assert_eq!(param(parse(&body).unwrap_err()), "mcp_servers.s.url", "{u}");
    }
    let body = r#"{"mcp_servers":{"s":{"url":"http://127.0.0.1:9/x","auth":{"type":"none"}}}}"#;
    assert!(parse_tenant(body.as_bytes(), ParseOptions { allow_insecure_urls: true }).is_ok());
    for good in ["https://mcp.example.com/mcp?x=1", "https://a.b:8443/", "https://[2001:db8::1]:443/mcp", "HTTPS://A.B"]
    {
        let body = format!(r#"{{"mcp_servers":{{"s":{{"url":"{good}","auth":{{"type":"none"}}}}}}}}"#);
        let t = parse(&body).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        assert_eq!(t.mcp.servers["s"].url, good, "stored as given");
    }
}

#[test]
fn modes_and_services() {
    let srv = |extra: &str, url: &str| {
        parse(&format!(r#"{{"mcp_servers":{{"s":{{"url":"{url}","auth":{{"type":"none"}}{extra}}}}}}}"#))
    };
    let t = srv("", "https://a.b/").unwrap();
    assert_eq!((t.mcp.servers["s"].mode, t.mcp.servers["s"].service.clone()), (McpMode::Direct, None));
    assert_eq!(srv(r#","mode":"relay""#, "https://a.b/").unwrap().mcp.servers["s"].mode, McpMode::Relay);
    assert_eq!(srv(r#","mode":null"#, "https://a.b/").unwrap().mcp.servers["s"].mode, McpMode::Direct);
    // A service implies relay, and its URL is only the address behind the binding.
    let t = srv(r#","service":"PRIVATE_MCP""#, "http://crm.internal/mcp").unwrap();
    assert_eq!(t.mcp.servers["s"].mode, McpMode::Relay);
    assert_eq!(t.mcp.servers["s"].service.as_deref(), Some("PRIVATE_MCP"));
    assert_eq!(param(srv(r#","service":"P","mode":"direct""#, "https://a.b/").unwrap_err()), "mcp_servers.s.mode");
    assert_eq!(param(srv(r#","mode":"tunnel""#, "https://a.b/").unwrap_err()), "mcp_servers.s.mode");
    for bad in [r#""""#, r#""9x""#, r#""a-b""#, "5"] {
        let e = srv(&format!(r#","service":{bad}"#), "https://a.b/").unwrap_err();
        assert_eq!(param(e), "mcp_servers.s.service", "{bad}");
    }
    assert_eq!(param(srv(r#","mode":"relay""#, "http://crm.internal/mcp").unwrap_err()), "mcp_servers.s.url");
}

#[test]
fn secrets_are_checked_but_never_quoted() {
    let e = parse(
        r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"none"},"allowed_tools":"sk-wrong-place"}}}"#,
    )
    .unwrap_err();
    assert!(!e.message().contains("sk-wrong-place"), "{}", e.message());
    assert!(e.message().contains("expected a sequence, found string"), "{}", e.message());
    let e = parse(r#"{"providers":{"openai":{"api_key":"sk-abc\ndef"}}}"#).unwrap_err();
    assert!(!e.message().contains("sk-abc"));
    assert_eq!(param(e), "providers.openai.api_key");
    let e =
        parse(r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"headers","headers":{"Bad Name":"v"}}}}}"#)
            .unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.auth.headers");
    let e =
        parse(r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"headers","headers":{"X-K":"a\u0000b"}}}}}"#)
            .unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.auth.headers.X-K");
}

#[test]
fn names_and_enums_are_checked() {
    let e = parse(r#"{"mcp_servers":{"../x":{"url":"https://a.b/","auth":{"type":"none"}}}}"#).unwrap_err();
    assert_eq!(param(e), "mcp_servers");
    let long = "a".repeat(65);
    let e = parse(&format!(r#"{{"mcp_servers":{{"{long}":{{"url":"https://a.b/","auth":{{"type":"none"}}}}}}}}"#))
        .unwrap_err();
    assert_eq!(param(e), "mcp_servers");
    let e =
        parse(r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"none"},"require_approval":"sometimes"}}}"#)
            .unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.require_approval");
    let e = parse(r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"oauth"}}}}"#).unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.auth.type");
    let e = parse(r#"{"allow_unmanaged_mcp_servers":"yes"}"#).unwrap_err();
    assert_eq!(param(e), "allow_unmanaged_mcp_servers");
    let e = parse(r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":{"type":"none"},"allowed_tools":"search"}}}"#)
        .unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.allowed_tools");
    let e = parse(r#"{"mcp_servers":{"s":{"url":5,"auth":{"type":"none"}}}}"#).unwrap_err();
    assert_eq!(param(e), "mcp_servers.s.url");
    let e = parse(r#"{"mcp_servers":[]}"#).unwrap_err();
    assert_eq!(param(e), "mcp_servers");
    assert!(parse("[]").is_err());
    assert!(parse(r#"{"providers":{},"providers":{}}"#).is_err());
}

#[test]
fn empty_tenant_is_valid() {
    let t = parse("{}").unwrap();
    assert!(t.openai_key.is_none() && t.mcp.servers.is_empty() && !t.mcp.allow_unmanaged);
    assert_eq!(t.rate_limit_rpm, None);
    let t = parse(r#"{"rate_limit":{"requests_per_minute":30}}"#).unwrap();
    assert_eq!(t.rate_limit_rpm, Some(30));
    assert_eq!(
        param(parse(r#"{"rate_limit":{"requests_per_minute":0}}"#).unwrap_err()),
        "rate_limit.requests_per_minute"
    );
    assert_eq!(param(parse(r#"{"rate_limit":{"rpm":3}}"#).unwrap_err()), "rate_limit");
    // serde's structs would take these arrays as field lists; the admin API does not.
    for (body, path) in [
        (r#"{"rate_limit":[5]}"#, "rate_limit"),
        (r#"{"providers":[]}"#, "providers"),
        (r#"{"providers":{"openai":["sk-x"]}}"#, "providers.openai"),
        (r#"{"mcp_servers":{"s":["https://a.b/",{"type":"none"}]}}"#, "mcp_servers.s"),
        (r#"{"mcp_servers":{"s":{"url":"https://a.b/","auth":["bearer","t0k"]}}}"#, "mcp_servers.s.auth"),
    ] {
        assert_eq!(param(parse(body).unwrap_err()), path, "{body}");
    }
}

mod property {
    use super::*;
    use crate::provider::json::test_support::arb_value;
    use proptest::prelude::*;

    const PLANTED: &str = "sk-planted-secret-value";

    /// A value for a field: well-formed, arbitrary JSON, or a planted secret in the wrong place.
    fn field(good: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![
            Just(good.to_string()),
            arb_value(),
            Just(format!("\"{PLANTED}\"")),
            Just(format!("[\"{PLANTED}\"]"))
        ]
    }

    fn server() -> impl Strategy<Value = String> {
        (
            field(r#""https://mcp.example.com/mcp""#),
            field(r#"{"type":"bearer","token":"tok-123456"}"#),
            field(r#"["search","lookup"]"#),
            field(r#""always""#),
            proptest::bool::ANY,
        )
            .prop_map(|(url, auth, tools, approval, extra)| {
                let extra = if extra { r#","colour":1"# } else { "" };
                format!(r#"{{"url":{url},"auth":{auth},"allowed_tools":{tools},"require_approval":{approval}{extra}}}"#)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any admin body: a tenant or a 400 that names a field, never a
        /// panic, and never the text of a submitted value.
        #[test]
        fn parse_tenant_is_total_and_never_echoes_values(
            providers in field(r#"{"openai":{"api_key":"sk-openai-1"}}"#),
            s1 in server(),
            s2 in server(),
            name in prop_oneof![Just("crm"), Just(""), Just("../x"), Just("é"), Just("a-b_c")],
            unmanaged in field("true"),
            limit in field(r#"{"requests_per_minute":5}"#),
        ) {
            let body = format!(
                r#"{{"providers":{providers},"mcp_servers":{{"{name}":{s1},"other":{s2}}},"allow_unmanaged_mcp_servers":{unmanaged},"rate_limit":{limit}}}"#
            );
            match parse_tenant(body.as_bytes(), ParseOptions::default()) {
                // Accepted: exactly the two servers submitted, under their names.
                Ok(t) => {
                    let names: Vec<&str> = t.mcp.servers.keys().map(String::as_str).collect();
                    let mut want = vec![name, "other"];
                    want.sort_unstable();
                    prop_assert_eq!(names, want);
                }
                Err(e) => {
                    prop_assert_eq!(e.wire().status, 400);
                    prop_assert!(!e.message().contains(PLANTED), "{}", e.message());
                    prop_assert!(!e.message().contains("tok-123456"));
                    let GatewayError::BadRequest { param, .. } = &e else { unreachable!() };
                    prop_assert!(param.is_some(), "{}", e.message());
                }
            }
        }
    }
}
