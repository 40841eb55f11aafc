//! Credential identity. Each `oauth2` server of a tenant gets a random
//! `credential_id` when it is written; its token state (Durable Object and
//! KV cache) is named by (tenant, server, credential id). A `PUT` that leaves
//! a server's URL and OAuth config unchanged keeps the id, so rotated refresh
//! tokens survive unrelated edits; any change starts a fresh credential, so
//! no token obtained under an old config is ever used for a new one.

#![forbid(unsafe_code)]

use crate::crypto::ct_eq;
use crate::crypto::Secret;
use crate::oauth::config::{Grant, OAuthConfig};
use crate::tenant::{McpAuth, McpServer, Tenant};

fn same_secret(a: Option<&Secret>, b: Option<&Secret>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => ct_eq(a.expose().as_bytes(), b.expose().as_bytes()),
        _ => false,
    }
}

fn same_config(url_a: &str, a: &OAuthConfig, url_b: &str, b: &OAuthConfig) -> bool {
    let grant = match (&a.grant, &b.grant) {
        (Grant::RefreshToken(x), Grant::RefreshToken(y)) => same_secret(Some(x), Some(y)),
        (Grant::ClientCredentials, Grant::ClientCredentials) | (Grant::AuthorizationCode, Grant::AuthorizationCode) => {
            true
        }
        _ => false,
    };
    grant
        && url_a == url_b
        && a.token_url == b.token_url
        && a.client_id == b.client_id
        && same_secret(a.client_secret.as_ref(), b.client_secret.as_ref())
        && a.client_auth == b.client_auth
        && a.scope == b.scope
        && a.resource == b.resource
        && a.issuer == b.issuer
}

fn oauth_of(s: &McpServer) -> Option<&OAuthConfig> {
    match &s.auth {
        McpAuth::OAuth2(c) => Some(c),
        McpAuth::None | McpAuth::Bearer(_) | McpAuth::Headers(_) => None,
    }
}

/// A credential that a write retires: its token state should be forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub server: String,
    pub credential_id: String,
}

/// Gives every `oauth2` server of `new` a credential id: the old one when
/// `old` has the same server with the same URL and config, else `fresh()`.
/// Returns the old credentials that are no longer used.
///
/// # Errors
/// Whatever `fresh` fails with.
pub fn assign_ids<E>(
    new: &mut Tenant,
    old: Option<&Tenant>,
    mut fresh: impl FnMut() -> Result<String, E>,
) -> Result<Vec<Retired>, E> {
    let mut kept: Vec<&str> = Vec::new();
    for (name, server) in &mut new.mcp.servers {
        let url = server.url.clone();
        let McpAuth::OAuth2(cfg) = &mut server.auth else { continue };
        let previous = old
            .and_then(|t| t.mcp.servers.get(name))
            .and_then(|s| oauth_of(s).map(|c| (s.url.as_str(), c)))
            .filter(|(old_url, c)| same_config(old_url, c, &url, cfg));
        cfg.credential_id = match previous {
            Some((_, c)) => {
                kept.push(c.credential_id.as_str());
                c.credential_id.clone()
            }
            None => fresh()?,
        };
    }
    let retired = old
        .map(|t| {
            t.mcp
                .servers
                .iter()
                .filter_map(|(name, s)| oauth_of(s).map(|c| (name, c)))
                .filter(|(_, c)| !kept.contains(&c.credential_id.as_str()))
                .map(|(name, c)| Retired { server: name.clone(), credential_id: c.credential_id.clone() })
                .collect()
        })
        .unwrap_or_default();
    Ok(retired)
}

/// Every `oauth2` credential of a tenant (for deletion).
#[must_use]
pub fn all_credentials(t: &Tenant) -> Vec<Retired> {
    t.mcp
        .servers
        .iter()
        .filter_map(|(name, s)| {
            oauth_of(s).map(|c| Retired { server: name.clone(), credential_id: c.credential_id.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::input::{parse_tenant, ParseOptions};

    fn tenant(json: &str) -> Tenant {
        parse_tenant(json.as_bytes(), ParseOptions::default()).unwrap()
    }

    fn id(t: &Tenant, name: &str) -> String {
        oauth_of(&t.mcp.servers[name]).unwrap().credential_id.clone()
    }

    const A: &str = r#"{"mcp_servers":{
        "crm":{"url":"https://crm/mcp","auth":{"type":"oauth2","token_url":"https://as/t","client_id":"c","refresh_token":"rt-1"}},
        "docs":{"url":"https://docs/mcp","auth":{"type":"oauth2"}},
        "plain":{"url":"https://p/mcp","auth":{"type":"none"}}}}"#;

    #[test]
    fn ids_survive_unrelated_edits_and_change_with_the_credential() {
        let mut n = 0;
        let mut fresh = || -> Result<String, ()> {
            n += 1;
            Ok(format!("id{n}"))
        };
        let mut first = tenant(A);
        assert!(assign_ids(&mut first, None, &mut fresh).unwrap().is_empty());
        assert_eq!((id(&first, "crm"), id(&first, "docs")), ("id1".into(), "id2".into()));

        // Same credentials, other fields changed: ids kept.
        let mut second =
            tenant(&A.replace(r#""auth":{"type":"none"}"#, r#""auth":{"type":"none"},"require_approval":"always""#));
        assert!(assign_ids(&mut second, Some(&first), &mut fresh).unwrap().is_empty());
        assert_eq!(id(&second, "crm"), "id1");

        // A new refresh token and a new URL: new ids, old ones retired.
        let mut third = tenant(&A.replace("rt-1", "rt-2").replace("https://docs/mcp", "https://docs2/mcp"));
        let retired = assign_ids(&mut third, Some(&second), &mut fresh).unwrap();
        assert_eq!(id(&third, "crm"), "id3");
        assert_eq!(id(&third, "docs"), "id4");
        assert_eq!(retired.len(), 2);

        // A removed server is retired too.
        let mut fourth = tenant(r#"{}"#);
        let retired = assign_ids(&mut fourth, Some(&third), &mut fresh).unwrap();
        assert_eq!(retired.iter().map(|r| r.server.as_str()).collect::<Vec<_>>(), vec!["crm", "docs"]);
        assert_eq!(all_credentials(&third).len(), 2);
    }
}
