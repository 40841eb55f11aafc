//! Users inside a tenant: the pure rules of per-user MCP credentials.
//!
//! - A user id is opaque, chosen by the tenant's backend: 1–128 characters
//!   of `A-Z a-z 0-9 . _ @ : -` (safe in a URL path segment and a header
//!   without escaping; an email fits but is never required). It is stored
//!   only inside sealed or admin-only records; KV keys and logs carry
//!   [`user_hash`] instead.
//! - Which user a request is for follows from the gateway key's scope and
//!   the `mcpgate-user` header ([`request_user`]).
//! - A server marked `per_user` takes its credential from the user's record
//!   ([`UserCredential`]); what happens when the user has none is the
//!   server's [`OnMissing`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{sha256_hex, Secret};
use crate::http::error::GatewayError;

/// The request header a tenant-wide `act_as_users` key names the user in.
pub const USER_HEADER: &str = "mcpgate-user";
pub const MAX_USER_ID_LEN: usize = 128;
/// The response header naming per-user servers left out of a request.
pub const OMITTED_HEADER: &str = "mcpgate-omitted-servers";

/// A validated user id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// # Errors
    /// A 400 naming `param` when `s` breaks the user-id rules; the value is never echoed.
    pub fn parse(s: &str, param: &str) -> Result<Self, GatewayError> {
        if is_valid_user_id(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(GatewayError::bad_param(
                param,
                format!("{param} must be 1-{MAX_USER_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_', '@', ':' or '-'."),
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hex of the id: what KV keys and Durable Object names carry.
    #[must_use]
    pub fn hash(&self) -> String {
        user_hash(&self.0)
    }

    /// A short hash for log lines (never the id itself).
    #[must_use]
    pub fn log_hash(&self) -> String {
        self.hash()[..16].to_string()
    }
}

#[must_use]
pub fn is_valid_user_id(s: &str) -> bool {
    (1..=MAX_USER_ID_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b':' | b'-'))
}

#[must_use]
pub fn user_hash(user: &str) -> String {
    sha256_hex(user.as_bytes())
}

/// Whether `s` has the form of a [`user_hash`] (64 lowercase hex digits).
#[must_use]
pub fn is_user_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whom a gateway key acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// A tenant-wide key; it cannot name a user.
    Tenant,
    /// A tenant-wide backend key that may name a user per request.
    ActAsUsers,
    /// A key issued for one user.
    User(UserId),
}

impl KeyScope {
    /// From a stored key record's fields. A record naming both a user and
    /// `act_as_users` is never written; read, it is the narrower user key.
    #[must_use]
    pub fn of(user: Option<&str>, act_as_users: bool) -> Self {
        match (user, act_as_users) {
            (Some(u), _) => Self::User(UserId(u.to_string())),
            (None, true) => Self::ActAsUsers,
            (None, false) => Self::Tenant,
        }
    }
}

fn forbidden(message: &str) -> GatewayError {
    GatewayError::UserForbidden { message: message.to_string() }
}

/// The user a request acts for, from the key's scope and the `mcpgate-user`
/// header (`None`: no user; per-user servers are then unavailable).
///
/// # Errors
/// 403 when a tenant-wide key without `act_as_users` sends the header or a
/// user key names another user; 400 for a malformed header value.
pub fn request_user(scope: &KeyScope, header: Option<&str>) -> Result<Option<UserId>, GatewayError> {
    match (scope, header) {
        (KeyScope::Tenant, None) => Ok(None),
        (KeyScope::Tenant, Some(_)) => Err(forbidden(
            "This gateway key cannot act for users: only keys created with \"act_as_users\": true may send the \
             mcpgate-user header.",
        )),
        (KeyScope::ActAsUsers, None) => Ok(None),
        (KeyScope::ActAsUsers, Some(h)) => UserId::parse(h.trim(), USER_HEADER).map(Some),
        (KeyScope::User(u), None) => Ok(Some(u.clone())),
        (KeyScope::User(u), Some(h)) if h.trim() == u.as_str() => Ok(Some(u.clone())),
        (KeyScope::User(_), Some(_)) => {
            Err(forbidden("This gateway key belongs to one user and cannot act for another."))
        }
    }
}

/// What a request naming a per-user server gets when its user has no credential for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    /// 424 `mcp_user_connect_required` naming the server.
    #[default]
    Error,
    /// The server is left out of the request; the answer says so in `mcpgate-omitted-servers`.
    Omit,
}

impl OnMissing {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Omit => "omit",
        }
    }

    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The kind of credential a per-user server takes from each user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserCredentialKind {
    Bearer,
    Headers,
    OAuth2,
}

impl UserCredentialKind {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Headers => "headers",
            Self::OAuth2 => "oauth2",
        }
    }
}

/// A server's per-user setting (stored on the server as `per_user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerUser {
    pub credential: UserCredentialKind,
    #[serde(default, skip_serializing_if = "OnMissing::is_default")]
    pub on_missing: OnMissing,
}

/// One user's static credential for one server, in plaintext.
#[derive(Debug, Clone)]
pub enum UserCredential {
    Bearer(Secret),
    Headers(Vec<(String, Secret)>),
}

impl UserCredential {
    #[must_use]
    pub const fn kind(&self) -> UserCredentialKind {
        match self {
            Self::Bearer(_) => UserCredentialKind::Bearer,
            Self::Headers(_) => UserCredentialKind::Headers,
        }
    }

    #[must_use]
    pub fn into_auth(self) -> crate::tenant::McpAuth {
        match self {
            Self::Bearer(t) => crate::tenant::McpAuth::Bearer(t),
            Self::Headers(h) => crate::tenant::McpAuth::Headers(h),
        }
    }
}

/// What the request path decides for each per-user server a request names.
#[derive(Debug, Clone, Default)]
pub struct UserPlan {
    /// Servers whose credential comes from the user's record.
    pub from_record: Vec<String>,
    /// Per-user `oauth2` servers: the user's own OAuth credential.
    pub oauth: Vec<String>,
}

/// The per-user servers among `referenced`, split by where their credential lives.
#[must_use]
pub fn plan(per_user: &BTreeMap<String, PerUser>, referenced: &[String]) -> UserPlan {
    let mut out = UserPlan::default();
    for name in referenced {
        match per_user.get(name).map(|p| p.credential) {
            None => {}
            Some(UserCredentialKind::OAuth2) => out.oauth.push(name.clone()),
            Some(UserCredentialKind::Bearer | UserCredentialKind::Headers) => out.from_record.push(name.clone()),
        }
    }
    out
}

/// The credential id of one user's OAuth credential for a server: the
/// server's credential id (which changes when the tenant re-registers the
/// client) joined with the user's hash, so each (tenant, server, user) has
/// its own Durable Object, token cache and single-flight refresh.
#[must_use]
pub fn user_credential_id(server_credential_id: &str, user: &UserId) -> String {
    user_credential_id_of_hash(server_credential_id, &user.hash())
}

/// [`user_credential_id`] from the user's hash (what a relay token carries).
#[must_use]
pub fn user_credential_id_of_hash(server_credential_id: &str, user_hash: &str) -> String {
    format!("{server_credential_id}.u{}", &user_hash[..32.min(user_hash.len())])
}

/// How a missing credential is handled for the servers `missing`.
///
/// # Errors
/// 424 `mcp_user_connect_required` for the first server whose `on_missing`
/// is `error` (or when no user is known at all).
pub fn handle_missing(
    per_user: &BTreeMap<String, PerUser>,
    missing: &[String],
    user_known: bool,
) -> Result<Vec<String>, GatewayError> {
    let mut omitted = Vec::new();
    for name in missing {
        let on_missing = per_user.get(name).map_or(OnMissing::Error, |p| p.on_missing);
        match on_missing {
            OnMissing::Omit => omitted.push(name.clone()),
            OnMissing::Error => {
                return Err(GatewayError::McpUserConnectRequired { server: name.clone(), no_user: !user_known })
            }
        }
    }
    Ok(omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_rules() {
        for ok in ["u-123", "a", "alice@example.com", "org:team.member_1", &"x".repeat(128)] {
            assert!(is_valid_user_id(ok), "{ok}");
        }
        for bad in ["", "with space", "a/b", "ü", "a\nb", "a%2Fb", "a+b", &"x".repeat(129)] {
            assert!(!is_valid_user_id(bad), "{bad}");
        }
        let e = UserId::parse("bad id", "user").unwrap_err();
        assert!(
            matches!(&e, GatewayError::BadRequest { param: Some(p), message } if p == "user" && !message.contains("bad id"))
        );
    }

    #[test]
    fn hashes_are_stable_and_hide_the_id() {
        let u = UserId::parse("u-123", "user").unwrap();
        assert_eq!(u.hash(), sha256_hex(b"u-123"));
        assert_eq!(u.log_hash().len(), 16);
        assert!(!u.log_hash().contains("u-123"));
        let cid = user_credential_id("c0ffee", &u);
        assert!(cid.starts_with("c0ffee.u") && cid.len() == "c0ffee.u".len() + 32);
        let v = UserId::parse("u-124", "user").unwrap();
        assert_ne!(cid, user_credential_id("c0ffee", &v));
        assert_eq!(cid, user_credential_id_of_hash("c0ffee", &u.hash()));
        assert!(is_user_hash(&u.hash()));
        for bad in ["", "u-123", &u.hash()[..63], &u.hash().to_uppercase(), &format!("{}0", u.hash())] {
            assert!(!is_user_hash(bad), "{bad}");
        }
    }

    #[test]
    fn key_scope_and_header() {
        let alice = UserId::parse("alice", "u").unwrap();
        // Tenant-wide key: no user; the header is refused.
        assert_eq!(request_user(&KeyScope::Tenant, None).unwrap(), None);
        assert!(matches!(request_user(&KeyScope::Tenant, Some("alice")), Err(GatewayError::UserForbidden { .. })));
        // Backend key acting for users: the header names the user, optional, validated.
        assert_eq!(request_user(&KeyScope::ActAsUsers, None).unwrap(), None);
        assert_eq!(request_user(&KeyScope::ActAsUsers, Some("alice")).unwrap(), Some(alice.clone()));
        assert!(matches!(request_user(&KeyScope::ActAsUsers, Some("a b")), Err(GatewayError::BadRequest { .. })));
        // A user key: its user; naming itself is fine, naming another is 403.
        let scope = KeyScope::User(alice.clone());
        assert_eq!(request_user(&scope, None).unwrap(), Some(alice.clone()));
        assert_eq!(request_user(&scope, Some("alice")).unwrap(), Some(alice));
        assert!(matches!(request_user(&scope, Some("bob")), Err(GatewayError::UserForbidden { .. })));
        assert!(matches!(request_user(&scope, Some("")), Err(GatewayError::UserForbidden { .. })));
        // A record with both fields is read as the narrower user key.
        assert!(matches!(KeyScope::of(Some("alice"), true), KeyScope::User(_)));
        assert_eq!(KeyScope::of(None, true), KeyScope::ActAsUsers);
        assert_eq!(KeyScope::of(None, false), KeyScope::Tenant);
    }

    #[test]
    fn per_user_is_stored_strictly() {
        let p: PerUser = serde_json::from_str(r#"{"credential":"bearer","on_missing":"omit"}"#).unwrap();
        assert_eq!(p.on_missing, OnMissing::Omit);
        let p: PerUser = serde_json::from_str(r#"{"credential":"oauth2"}"#).unwrap();
        assert_eq!((p.credential, p.on_missing), (UserCredentialKind::OAuth2, OnMissing::Error));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"credential":"oauth2"}"#);
        for bad in [
            r#"{"credential":"bearer","on_missing":"skip"}"#,
            r#"{"credential":"bearer","on_missing":"Omit"}"#,
            r#"{"credential":"kerberos"}"#,
            r#"{"credential":"bearer","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<PerUser>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans_and_missing() {
        let mut per_user = BTreeMap::new();
        per_user
            .insert("gh".to_string(), PerUser { credential: UserCredentialKind::Bearer, on_missing: OnMissing::Error });
        per_user.insert(
            "drive".to_string(),
            PerUser { credential: UserCredentialKind::OAuth2, on_missing: OnMissing::Omit },
        );
        let refs = vec!["shared".to_string(), "drive".to_string(), "gh".to_string()];
        let p = plan(&per_user, &refs);
        assert_eq!((p.from_record, p.oauth), (vec!["gh".to_string()], vec!["drive".to_string()]));
        assert_eq!(handle_missing(&per_user, &["drive".into()], true).unwrap(), vec!["drive".to_string()]);
        let e = handle_missing(&per_user, &["drive".into(), "gh".into()], true).unwrap_err();
        assert!(matches!(e, GatewayError::McpUserConnectRequired { ref server, no_user: false } if server == "gh"));
        assert!(plan(&per_user, &["shared".into()]).from_record.is_empty());
    }
}
