//! Unit tests of `route`.

use super::*;
use crate::provider::routes::Rewrite;

fn status(m: &str, p: &str) -> u16 {
    classify(m, p).map_or_else(|e| e.wire().status, |_| 200)
}

fn provider(m: &str, p: &str) -> (String, Treatment) {
    match classify(m, p).unwrap() {
        Route::Provider { upstream_path, treatment, .. } => (upstream_path, treatment),
        r => panic!("{r:?}"),
    }
}

#[test]
fn provider_routes() {
    assert_eq!(
        classify("POST", "/openai/v1/responses").unwrap(),
        Route::Provider {
            provider: Provider::OpenAi,
            method: Method::Post,
            upstream_path: "/v1/responses".into(),
            treatment: Treatment::Rewrite(Rewrite::Responses)
        }
    );
    assert_eq!(provider("GET", "/openai/v1/responses/resp_1"), ("/v1/responses/resp_1".into(), Treatment::Pass));
    assert_eq!(provider("POST", "/anthropic/v1/messages/count_tokens").1, Treatment::Rewrite(Rewrite::Messages));
    assert_eq!(provider("GET", "/anthropic/v1/messages").1, Treatment::Pass);
    assert_eq!(provider("POST", "/openai/v1/chat/completions").1, Treatment::Pass);
}

#[test]
fn table_providers_route_and_shape() {
    assert_eq!(
        provider("POST", "/azure/openai/responses"),
        ("/openai/responses".into(), Treatment::Rewrite(Rewrite::Responses))
    );
    assert_eq!(provider("POST", "/gemini/v1beta/interactions").1, Treatment::Rewrite(Rewrite::Interactions));
    assert_eq!(provider("POST", "/groq/openai/v1/responses").1, Treatment::Rewrite(Rewrite::Responses));
    assert_eq!(provider("POST", "/xai/v1/respons%65s").1, Treatment::Rewrite(Rewrite::Responses));
    for p in ["/xai/v2/x", "/groq/v1/responses", "/gemini/v2/x", "/azure/v1/responses", "/xai/v1/../admin"] {
        assert_eq!(status("POST", p), 404, "{p}");
    }
    assert_eq!(shape_of("/gemini/v1beta/interactions"), Shape::Google);
    assert_eq!(shape_of("/azure/openai/v1/responses"), Shape::OpenAi);
    assert_eq!(shape_of("/anthropic/v1/messages"), Shape::Anthropic);
}

#[test]
fn every_spelling_of_a_policed_route_is_policed_or_refused() {
    // Decoded to the canonical path, which is what goes upstream.
    assert_eq!(
        provider("POST", "/openai/v1/respons%65s"),
        ("/v1/responses".into(), Treatment::Rewrite(Rewrite::Responses))
    );
    assert_eq!(provider("POST", "/anthropic/v1/%6Dessages").1, Treatment::Rewrite(Rewrite::Messages));
    assert_eq!(provider("POST", "/openai/v1/Responses").1, Treatment::Rewrite(Rewrite::Responses));
    for p in ["/openai/v1/responses/", "/anthropic/v1//messages", "/openai//v1/responses", "/openai/v1/responses%2F"] {
        assert_eq!(status("POST", p), 404, "{p}");
    }
}

#[test]
fn unknown_and_unsafe_paths_are_404() {
    for p in [
        "/",
        "/openai",
        "/openai/v1",
        "/openai/v1/",
        "/openai/v2/models",
        "/openaiv1/models",
        "/openai/v1/../admin",
        "/openai/v1/%2e%2e/x",
        "/openai/v1/a%2Fb",
        "/openai/v1/a%5cb",
        "/anthropic/v1/.%2E/x",
        "/admin",
        "/admin/tenants/a/b",
        "/admin/tenants/a/keys/k/x",
        "/admin/tenants/a/keys/",
    ] {
        assert_eq!(status("GET", p), 404, "{p}");
    }
}

#[test]
fn methods() {
    assert_eq!(status("POST", "/healthz"), 405);
    assert_eq!(status("GET", "/healthz"), 200);
    assert_eq!(status("PATCH", "/admin/tenants/acme"), 405);
    assert_eq!(status("POST", "/admin/tenants/acme"), 405);
    assert_eq!(status("PUT", "/admin/tenants/acme/keys"), 405);
    assert_eq!(status("GET", "/admin/tenants/acme/keys/key_1"), 405);
    assert_eq!(status("DELETE", "/admin/tenants/acme/keys/key_1"), 200);
    assert_eq!(
        classify("DELETE", "/admin/tenants/acme").unwrap(),
        Route::Admin(AdminOp::DeleteTenant { tenant: "acme".into() })
    );
    assert_eq!(
        classify("DELETE", "/admin/tenants/acme/keys/key_1").unwrap(),
        Route::Admin(AdminOp::DeleteKey { tenant: "acme".into(), key_id: "key_1".into() })
    );
}

#[test]
fn oauth_routes() {
    assert_eq!(
        classify("POST", "/admin/tenants/acme/mcp_servers/crm/oauth/connect").unwrap(),
        Route::Admin(AdminOp::OAuth { tenant: "acme".into(), server: "crm".into(), action: OAuthAction::Connect })
    );
    assert!(matches!(
        classify("GET", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
        Route::Admin(AdminOp::OAuth { action: OAuthAction::Status, .. })
    ));
    assert!(matches!(
        classify("DELETE", "/admin/tenants/acme/mcp_servers/crm/oauth").unwrap(),
        Route::Admin(AdminOp::OAuth { action: OAuthAction::Disconnect, .. })
    ));
    assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/connect"), 405);
    assert_eq!(status("PUT", "/admin/tenants/acme/mcp_servers/crm/oauth"), 405);
    assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm/oauth/x"), 404);
    assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/a%20b/oauth"), 404);
    assert_eq!(status("GET", "/admin/tenants/acme/mcp_servers/crm"), 404);
    assert_eq!(classify("GET", "/oauth/callback").unwrap(), Route::OAuthCallback);
    assert_eq!(status("POST", "/oauth/callback"), 405);
    assert_eq!(classify("POST", "/admin/maintenance/reseal").unwrap(), Route::Admin(AdminOp::Reseal { write: true }));
    assert_eq!(classify("GET", "/admin/maintenance/reseal").unwrap(), Route::Admin(AdminOp::Reseal { write: false }));
    assert_eq!(status("DELETE", "/admin/maintenance/reseal"), 405);
    assert_eq!(status("POST", "/admin/maintenance/other"), 404);
}

#[test]
fn list_openapi_and_console_routes() {
    assert_eq!(classify("GET", "/admin/tenants").unwrap(), Route::Admin(AdminOp::ListTenants));
    assert_eq!(classify("GET", "/admin/openapi.json").unwrap(), Route::Admin(AdminOp::OpenApi));
    assert_eq!(status("POST", "/admin/tenants"), 405);
    assert_eq!(status("DELETE", "/admin/openapi.json"), 405);
    assert_eq!(classify("GET", "/admin/").unwrap(), Route::Console(ConsoleAsset::Page));
    assert_eq!(classify("GET", "/admin/index.html").unwrap(), Route::Console(ConsoleAsset::Page));
    assert_eq!(classify("GET", "/admin/console.js").unwrap(), Route::Console(ConsoleAsset::Script));
    assert_eq!(classify("GET", "/admin/console.css").unwrap(), Route::Console(ConsoleAsset::Style));
    assert_eq!(status("POST", "/admin/"), 405);
    for p in ["/admin/tenants/", "/admin/x.js", "/admin/console.js/", "/admin//"] {
        assert_ne!(status("GET", p), 200, "{p}");
    }
}

#[test]
fn tenant_writes_are_serialized_and_reads_are_not() {
    let op = |m: &str, p: &str| match classify(m, p).unwrap() {
        Route::Admin(op) => op,
        r => panic!("{r:?}"),
    };
    for (m, p) in [
        ("PUT", "/admin/tenants/acme"),
        ("DELETE", "/admin/tenants/acme"),
        ("POST", "/admin/tenants/acme/keys"),
        ("DELETE", "/admin/tenants/acme/keys/key_1"),
    ] {
        assert_eq!(op(m, p).serialized_tenant(), Some("acme"), "{m} {p}");
    }
    for (m, p) in [
        ("GET", "/admin/tenants/acme"),
        ("GET", "/admin/tenants/acme/keys"),
        ("GET", "/admin/tenants/acme/usage"),
        ("POST", "/admin/tenants/acme/mcp_servers/crm/oauth/connect"),
        ("POST", "/admin/maintenance/reseal"),
    ] {
        assert_eq!(op(m, p).serialized_tenant(), None, "{m} {p}");
    }
}

#[test]
fn user_routes() {
    let user = |m: &str, p: &str| match classify(m, p).unwrap() {
        Route::Admin(AdminOp::User { tenant, user, op }) => (tenant, user, op),
        other => panic!("{other:?}"),
    };
    assert_eq!(user("DELETE", "/admin/tenants/acme/users/u-1"), ("acme".into(), "u-1".into(), UserOp::Delete));
    assert_eq!(
        user("PUT", "/admin/tenants/acme/users/alice@example.com/mcp_servers/gh/credential").2,
        UserOp::PutCredential { server: "gh".into() }
    );
    assert_eq!(
        user("DELETE", "/admin/tenants/acme/users/u:1/mcp_servers/gh/credential").2,
        UserOp::DeleteCredential { server: "gh".into() }
    );
    assert_eq!(
        user("POST", "/admin/tenants/acme/users/u-1/mcp_servers/gh/oauth/connect").2,
        UserOp::OAuth { server: "gh".into(), action: OAuthAction::Connect }
    );
    assert_eq!(
        user("GET", "/admin/tenants/acme/users/u-1/mcp_servers/gh/oauth").2,
        UserOp::OAuth { server: "gh".into(), action: OAuthAction::Status }
    );
    assert_eq!(
        classify("GET", "/admin/tenants/acme/users").unwrap(),
        Route::Admin(AdminOp::ListUsers { tenant: "acme".into() })
    );
    assert_eq!(status("POST", "/admin/tenants/acme/users"), 405);
    assert_eq!(status("GET", "/admin/tenants/acme/users/u-1/mcp_servers/gh/credential"), 405);
    assert_eq!(status("PUT", "/admin/tenants/acme/users/u-1"), 405);
    assert_eq!(status("GET", "/admin/tenants/acme/users/bad%20id"), 400);
    assert_eq!(status("GET", "/admin/tenants/acme/users/u-1/other"), 404);
}

#[test]
fn tenant_ids_are_checked() {
    assert_eq!(status("PUT", "/admin/tenants/a%20b"), 400);
    assert_eq!(status("PUT", &format!("/admin/tenants/{}", "a".repeat(65))), 400);
    assert_eq!(status("PUT", "/admin/tenants/Acme_1-x"), 200);
}

#[test]
fn query_params() {
    let u = "https://gw/admin/tenants/a/usage?from=2026-11-01&to=2026%2D11%2D30&x&q=a+b#frag";
    assert_eq!(query_param(u, "from").as_deref(), Some("2026-11-01"));
    assert_eq!(query_param(u, "to").as_deref(), Some("2026-11-30"));
    assert_eq!(query_param(u, "x").as_deref(), Some(""));
    assert_eq!(query_param(u, "q").as_deref(), Some("a b"));
    assert_eq!(query_param(u, "none"), None);
    assert_eq!(query_param("https://gw/x?bad=%zz&ok=1", "bad"), None);
    assert_eq!(query_param("https://gw/x?t=%2", "t"), None);
    assert_eq!(query_param("https://gw/x", "t"), None);
}

#[test]
fn relay_routes() {
    assert_eq!(
        classify("POST", "/mcp/acme/crm").unwrap(),
        Route::Relay { tenant: "acme".into(), server: "crm".into(), method: RelayMethod::Post }
    );
    assert!(matches!(classify("GET", "/mcp/acme/crm").unwrap(), Route::Relay { method: RelayMethod::Get, .. }));
    assert!(matches!(classify("DELETE", "/mcp/a/b").unwrap(), Route::Relay { method: RelayMethod::Delete, .. }));
    assert_eq!(status("PUT", "/mcp/acme/crm"), 405);
    assert_eq!(status("OPTIONS", "/mcp/acme/crm"), 405);
    for p in ["/mcp/", "/mcp/acme", "/mcp/acme/", "/mcp/acme/crm/x", "/mcp/a%20b/crm", "/mcp/acme/../crm", "/mcp//crm"]
    {
        assert_eq!(status("POST", p), 404, "{p}");
    }
    assert_eq!(shape_of("/mcp/acme/crm"), Shape::JsonRpc);
}

#[test]
fn shapes() {
    assert_eq!(shape_of("/anthropic/v1/messages"), Shape::Anthropic);
    assert_eq!(shape_of("/openai/v1/x"), Shape::OpenAi);
    assert_eq!(shape_of("/admin/tenants/x"), Shape::OpenAi);
}
