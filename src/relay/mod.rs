//! The MCP relay (README: "MCP relay"): providers reach a tenant's
//! relay-mode MCP servers through `/mcp/{tenant}/{server}` with a
//! short-lived capability token instead of the tenant's credential.
//!
//! On the provider path, [`relay_policy`] rewrites a copy of the tenant's MCP
//! policy before the request rewrite: a relay server's URL becomes the relay
//! URL and its credential a freshly minted token, so the rewriters inject
//! those (as a bearer, which also lets header-credential servers work with
//! Anthropic). At the relay endpoint, [`token`] verifies the token,
//! [`policy`] enforces the tools, [`filter`] filters `tools/list` answers and [`headers`] swaps the credentials.
//! Everything here is pure; the I/O is in `shell::relay`.

pub mod filter;
pub mod headers;
pub mod policy;
pub mod token;
pub mod user;

use crate::http::error::GatewayError;
use crate::tenant::input::{check_url, ParseOptions};
use std::collections::BTreeMap;

use crate::crypto::MasterKey;
use crate::tenant::users::{PerUser, UserId};
use crate::tenant::{McpAuth, McpMode, McpPolicy};
use token::{id_hex, Capability, TokenKey};

/// `RELAY_TOKEN_TTL_SECONDS` when unset.
pub const DEFAULT_TTL_SECS: u64 = 600;
/// Longest lifetime a deployment may configure (one day).
pub const MAX_TTL_SECS: u64 = 86_400;

/// The relay endpoint of one server.
#[must_use]
pub fn relay_url(base: &str, tenant: &str, server: &str) -> String {
    format!("{base}/mcp/{tenant}/{server}")
}

/// Token lifetime from `RELAY_TOKEN_TTL_SECONDS`: 1 s to one day, default 600 s.
#[must_use]
pub fn ttl_secs(var: Option<&str>) -> u64 {
    var.and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0).map_or(DEFAULT_TTL_SECS, |n| n.min(MAX_TTL_SECS))
}

/// Where providers reach the gateway: `PUBLIC_BASE_URL`, or else the origin
/// the request came in on. Must be an origin (`https://host[:port]`; loopback
/// `http://` when insecure MCP URLs are allowed): the routes live at the root.
///
/// # Errors
/// [`GatewayError::Internal`] (a deployment mistake, logged by the caller).
pub fn public_base_url(
    configured: Option<&str>,
    request_url: &str,
    allow_insecure: bool,
) -> Result<String, GatewayError> {
    let bad = || GatewayError::Internal { message: "PUBLIC_BASE_URL is not a usable https:// origin".into() };
    let base = match configured.map(str::trim).filter(|s| !s.is_empty()) {
        Some(c) => c.trim_end_matches('/').to_string(),
        None => {
            let (scheme, rest) = request_url.split_once("://").ok_or_else(bad)?;
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!("{scheme}://{}", &rest[..end])
        }
    };
    let after_scheme = base.split_once("://").map_or("", |(_, r)| r);
    if after_scheme.contains(['/', '?', '#']) {
        return Err(bad());
    }
    let opts = ParseOptions { allow_insecure_urls: allow_insecure };
    check_url(&base, "PUBLIC_BASE_URL", opts, false).map_err(|_| bad())
}

/// What the provider path needs to mint tokens.
pub struct Minter<'a> {
    pub key: &'a TokenKey,
    pub tenant: &'a str,
    pub base_url: &'a str,
    /// Unix seconds.
    pub now: u64,
    pub ttl: u64,
    /// Per-user servers' tokens are bound to the request's user.
    pub users: UserBinding<'a>,
}

/// What binds a per-user server's token to its user (`relay::user`).
pub struct UserBinding<'a> {
    pub master: &'a MasterKey,
    /// The tenant's per-user servers.
    pub per_user: &'a BTreeMap<String, PerUser>,
    /// The request's user; without one, per-user servers never reach the
    /// minting (they were refused or left out before).
    pub user: Option<&'a UserId>,
}

/// The policy the rewriters should inject, with every relay-mode server
/// pointed at the relay and given a fresh token; `None` when the tenant has
/// no relay server (the original policy applies as is).
///
/// # Errors
/// [`GatewayError::Internal`] if no random token id can be drawn;
/// 424 `mcp_user_connect_required` for a per-user server without a user.
pub fn relay_policy(
    policy: &McpPolicy,
    m: &Minter<'_>,
    random_id: &mut dyn FnMut() -> Option<[u8; 16]>,
) -> Result<Option<McpPolicy>, GatewayError> {
    if !policy.servers.values().any(|s| s.mode == McpMode::Relay) {
        return Ok(None);
    }
    let mut out = policy.clone();
    for (name, server) in &mut out.servers {
        if server.mode != McpMode::Relay {
            continue;
        }
        let random_failed = || GatewayError::Internal { message: "random source failed".into() };
        let id = id_hex(&random_id().ok_or_else(random_failed)?);
        let user = match (m.users.per_user.contains_key(name), m.users.user) {
            (false, _) => None,
            (true, Some(u)) => {
                Some(user::seal(m.users.master, m.tenant, name, &id, &u.hash()).map_err(|_| random_failed())?)
            }
            (true, None) => return Err(GatewayError::McpUserConnectRequired { server: name.clone(), no_user: true }),
        };
        let cap = Capability {
            tenant: m.tenant.to_string(),
            server: name.clone(),
            tools: server.allowed_tools.clone(),
            expires_at: m.now.saturating_add(m.ttl),
            id,
            user,
        };
        server.url = relay_url(m.base_url, m.tenant, name);
        server.auth = McpAuth::Bearer(m.key.mint(&cap));
        server.service = None;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;
    use crate::crypto::MasterKey;
    use crate::crypto::Secret;
    use crate::provider::{anthropic, openai};
    use crate::tenant::{Approval, McpServer};

    fn server(mode: McpMode, auth: McpAuth) -> McpServer {
        McpServer {
            url: "https://real.example/mcp".into(),
            auth,
            allowed_tools: Some(vec!["search".into()]),
            require_approval: Approval::Never,
            mode,
            service: None,
        }
    }

    fn tenant_policy() -> McpPolicy {
        let mut servers = BTreeMap::new();
        servers.insert("crm".into(), server(McpMode::Relay, McpAuth::Bearer(Secret::new("real-bearer-SECRET"))));
        servers.insert(
            "files".into(),
            server(McpMode::Relay, McpAuth::Headers(vec![("X-Key".into(), Secret::new("real-header-SECRET"))])),
        );
        servers.insert("direct".into(), server(McpMode::Direct, McpAuth::Bearer(Secret::new("direct-SECRET"))));
        McpPolicy { servers, allow_unmanaged: false }
    }

    fn master() -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([5u8; 32])).unwrap()
    }

    fn key() -> TokenKey {
        TokenKey::from_master(&master())
    }

    const NO_USERS: BTreeMap<String, PerUser> = BTreeMap::new();

    fn relayed(p: &McpPolicy) -> McpPolicy {
        let k = key();
        let mk = master();
        let users = UserBinding { master: &mk, per_user: &NO_USERS, user: None };
        let m = Minter { key: &k, tenant: "acme", base_url: "https://gw.example", now: 1_000, ttl: 600, users };
        let mut n = 0u8;
        relay_policy(p, &m, &mut || {
            n += 1;
            Some([n; 16])
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn relay_servers_get_the_relay_url_and_a_token() {
        let out = relayed(&tenant_policy());
        let crm = &out.servers["crm"];
        assert_eq!(crm.url, "https://gw.example/mcp/acme/crm");
        let McpAuth::Bearer(tok) = &crm.auth else { panic!("bearer") };
        let cap = key().verify(tok.expose(), "acme", "crm", 1_599).unwrap();
        assert_eq!(cap.tools, Some(vec!["search".to_string()]));
        assert_eq!(cap.expires_at, 1_600);
        assert!(matches!(&out.servers["files"].auth, McpAuth::Bearer(_)), "header credentials become a bearer");
        assert!(matches!(&out.servers["direct"].auth, McpAuth::Bearer(t) if t.expose() == "direct-SECRET"));
        assert_eq!(out.servers["direct"].url, "https://real.example/mcp");
        let McpAuth::Bearer(files) = &out.servers["files"].auth else { panic!() };
        assert_ne!(tok.expose(), files.expose(), "every token has its own id");
    }

    /// A per-user server's token names the request's user (sealed); a
    /// tenant-level server's names none; without a user there is no token.
    #[test]
    fn per_user_tokens_bind_the_user() {
        use crate::tenant::users::{OnMissing, UserCredentialKind};
        let mut per_user = BTreeMap::new();
        per_user.insert(
            "crm".to_string(),
            PerUser { credential: UserCredentialKind::Bearer, on_missing: OnMissing::Error },
        );
        let mut p = tenant_policy();
        p.servers.get_mut("crm").unwrap().auth = McpAuth::Bearer(Secret::new("alice-SECRET"));
        let (k, mk) = (key(), master());
        let alice = UserId::parse("alice", "u").unwrap();
        let users = UserBinding { master: &mk, per_user: &per_user, user: Some(&alice) };
        let m = Minter { key: &k, tenant: "acme", base_url: "https://gw.example", now: 0, ttl: 60, users };
        let out = relay_policy(&p, &m, &mut || Some([7; 16])).unwrap().unwrap();
        let McpAuth::Bearer(t) = &out.servers["crm"].auth else { panic!("bearer") };
        assert!(!t.expose().contains("alice-SECRET"));
        let cap = k.verify(t.expose(), "acme", "crm", 1).unwrap();
        assert_eq!(user::bound_user(&mk, &cap, true).unwrap(), Some(alice.hash()));
        let McpAuth::Bearer(f) = &out.servers["files"].auth else { panic!("bearer") };
        assert_eq!(k.verify(f.expose(), "acme", "files", 1).unwrap().user, None);
        let users = UserBinding { master: &mk, per_user: &per_user, user: None };
        let m = Minter { key: &k, tenant: "acme", base_url: "https://gw.example", now: 0, ttl: 60, users };
        let e = relay_policy(&p, &m, &mut || Some([7; 16])).unwrap_err();
        assert!(matches!(e, GatewayError::McpUserConnectRequired { ref server, no_user: true } if server == "crm"));
    }

    #[test]
    fn no_relay_server_no_copy() {
        let mut p = tenant_policy();
        p.servers.retain(|n, _| n == "direct");
        let k = key();
        let mk = master();
        let users = UserBinding { master: &mk, per_user: &NO_USERS, user: None };
        let m = Minter { key: &k, tenant: "acme", base_url: "https://gw.example", now: 0, ttl: 1, users };
        assert!(relay_policy(&p, &m, &mut || None).unwrap().is_none());
        p.servers.insert("crm".into(), server(McpMode::Relay, McpAuth::None));
        assert!(relay_policy(&p, &m, &mut || None).is_err(), "no randomness, no token");
    }

    /// The rewriters see only the relay URL and the token: no real credential
    /// reaches either provider, and Anthropic accepts header-credential servers.
    #[test]
    fn rewritten_bodies_carry_no_real_credential() {
        let out = relayed(&tenant_policy());
        let oai = openai::rewrite_responses(
            br#"{"model":"m","tools":[{"type":"mcp","server_label":"crm"},{"type":"mcp","server_label":"files"}]}"#,
            &out,
        )
        .unwrap();
        let text = String::from_utf8(oai.body.unwrap()).unwrap();
        assert!(text.contains("https://gw.example/mcp/acme/files") && text.contains("mcr1."), "{text}");
        assert!(!text.contains("real-") && !text.contains("\"headers\""), "{text}");
        let ant = anthropic::rewrite_messages(
            br#"{"model":"m","max_tokens":1,"messages":[],"mcp_servers":[{"type":"url","name":"files","url":"x"}]}"#,
            None,
            &out,
        )
        .unwrap();
        let text = String::from_utf8(ant.body.unwrap()).unwrap();
        assert!(text.contains("\"authorization_token\":\"mcr1.") && !text.contains("real-"), "{text}");
    }

    #[test]
    fn base_url_and_ttl() {
        assert_eq!(public_base_url(Some("https://gw.example/"), "http://x/", false).unwrap(), "https://gw.example");
        assert_eq!(
            public_base_url(None, "https://w.example.workers.dev/openai/v1/responses?x=1", false).unwrap(),
            "https://w.example.workers.dev"
        );
        assert_eq!(public_base_url(None, "http://127.0.0.1:8787/a", true).unwrap(), "http://127.0.0.1:8787");
        assert!(public_base_url(None, "http://127.0.0.1:8787/a", false).is_err());
        assert!(public_base_url(Some("http://gw.example"), "", true).is_err());
        assert!(public_base_url(Some("not a url"), "", true).is_err());
        assert!(public_base_url(Some("https://gw.example/?q=1"), "", true).is_err());
        assert!(public_base_url(Some("https://gw.example/prefix"), "", true).is_err());
        assert!(public_base_url(Some("https://user@gw.example"), "", true).is_err());
        assert!(public_base_url(None, "no scheme", true).is_err());
        assert_eq!(ttl_secs(None), 600);
        assert_eq!(ttl_secs(Some(" 5 ")), 5);
        assert_eq!(ttl_secs(Some("0")), 600);
        assert_eq!(ttl_secs(Some("x")), 600);
        assert_eq!(ttl_secs(Some("999999999")), MAX_TTL_SECS);
    }
}
