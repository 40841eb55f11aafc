//! The stored form of a user's credentials (`uc:` records, keys built in
//! [`crate::tenant::storage`]) and the admin writes about users.
//!
//! One record per (tenant, user) holds the user's static credential for
//! every per-user server: a request naming several per-user servers still
//! costs one KV read. Each secret is sealed with an AAD naming the tenant,
//! the user's hash and the server, so a value copied to another user,
//! server or tenant does not open.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::storage::{gateway_key, tenant_key, user_key, KvOp, TenantRecord, RECORD_VERSION};
use super::users::{UserCredential, UserCredentialKind, UserId};
use crate::crypto::{Aad, CryptoError, MasterKey};

/// `uc:{tenant}:{user hash}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub v: u32,
    /// The user id (admin-only storage; never logged).
    pub user: String,
    #[serde(default)]
    pub credentials: BTreeMap<String, StoredUserCredential>,
    pub updated_at: String,
}

/// One sealed credential; the same tagged shape as a server's `auth`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredUserCredential {
    Bearer { token: String },
    Headers { headers: Vec<(String, String)> },
}

/// The KV metadata of a `uc:` record: what a listing shows without reading records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserMeta {
    pub user: String,
}

fn field(user: &UserId, server: &str, name: &str) -> String {
    format!("users.{}.mcp_servers.{server}.auth.{name}", user.hash())
}

impl UserRecord {
    #[must_use]
    pub fn new(user: &UserId, now: &str) -> Self {
        Self {
            v: RECORD_VERSION,
            user: user.as_str().to_string(),
            credentials: BTreeMap::new(),
            updated_at: now.into(),
        }
    }

    /// Sets (replaces) the user's credential for `server`.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn set(
        &mut self,
        key: &MasterKey,
        tenant: &str,
        user: &UserId,
        server: &str,
        cred: &UserCredential,
        now: &str,
    ) -> Result<(), CryptoError> {
        let seal = |name: &str, s: &crate::crypto::Secret| key.seal(&Aad::new(tenant, &field(user, server, name)), s);
        let stored = match cred {
            UserCredential::Bearer(t) => StoredUserCredential::Bearer { token: seal("token", t)? },
            UserCredential::Headers(h) => StoredUserCredential::Headers {
                headers: h.iter().map(|(n, v)| Ok((n.clone(), seal(&format!("headers.{n}"), v)?))).collect::<Result<
                    _,
                    CryptoError,
                >>(
                )?,
            },
        };
        self.credentials.insert(server.to_string(), stored);
        now.clone_into(&mut self.updated_at);
        Ok(())
    }

    /// The user's credential for `server`, opened; `None` if there is none.
    ///
    /// # Errors
    /// [`CryptoError::Open`] if an envelope fails (another user's, server's
    /// or tenant's value, a wrong `MASTER_KEY`).
    pub fn open(
        &self,
        key: &MasterKey,
        tenant: &str,
        user: &UserId,
        server: &str,
    ) -> Result<Option<UserCredential>, CryptoError> {
        if self.user != user.as_str() {
            return Err(CryptoError::Open);
        }
        let open = |name: &str, env: &str| key.open(&Aad::new(tenant, &field(user, server, name)), env);
        Ok(match self.credentials.get(server) {
            None => None,
            Some(StoredUserCredential::Bearer { token }) => Some(UserCredential::Bearer(open("token", token)?)),
            Some(StoredUserCredential::Headers { headers }) => Some(UserCredential::Headers(
                headers
                    .iter()
                    .map(|(n, e)| Ok((n.clone(), open(&format!("headers.{n}"), e)?)))
                    .collect::<Result<_, CryptoError>>()?,
            )),
        })
    }

    /// The admin view: which servers have a credential, never the values.
    #[must_use]
    pub fn view(&self, tenant: &str) -> serde_json::Value {
        let servers: serde_json::Map<String, serde_json::Value> = self
            .credentials
            .iter()
            .map(|(name, c)| {
                let kind = match c {
                    StoredUserCredential::Bearer { .. } => UserCredentialKind::Bearer,
                    StoredUserCredential::Headers { .. } => UserCredentialKind::Headers,
                };
                (name.clone(), serde_json::json!({"type": kind.as_str()}))
            })
            .collect();
        serde_json::json!({"tenant_id": tenant, "user": self.user, "credentials": servers, "updated_at": self.updated_at})
    }
}

/// Writes for `DELETE /admin/tenants/{id}/users/{user}`: the user's gateway
/// keys first (no key outlives its user), the tenant record without them,
/// then the user's credential record. OAuth token state is dropped by the caller.
#[must_use]
pub fn plan_delete_user(tenant_id: &str, mut record: TenantRecord, user: &UserId, now: &str) -> Vec<KvOp> {
    let (gone, kept): (Vec<_>, Vec<_>) =
        record.keys.into_iter().partition(|k| k.user.as_deref() == Some(user.as_str()));
    record.keys = kept;
    now.clone_into(&mut record.updated_at);
    let mut ops: Vec<KvOp> = gone.iter().map(|k| KvOp::Delete { key: gateway_key(&k.sha256) }).collect();
    ops.push(KvOp::Put { key: tenant_key(tenant_id), value: serde_json::to_string(&record).unwrap_or_default() });
    ops.push(KvOp::Delete { key: user_key(tenant_id, &user.hash()) });
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use crate::tenant::storage::{KeyEntry, StoredTenant};
    use base64::Engine;

    fn master() -> MasterKey {
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([5u8; 32])).unwrap()
    }

    fn uid(s: &str) -> UserId {
        UserId::parse(s, "user").unwrap()
    }

    #[test]
    fn credentials_are_bound_to_tenant_user_and_server() {
        let k = master();
        let (alice, bob) = (uid("alice"), uid("bob"));
        let mut rec = UserRecord::new(&alice, "t0");
        rec.set(&k, "acme", &alice, "gh", &UserCredential::Bearer(Secret::new(String::from("tok-alice"))), "t1")
            .unwrap();
        let hdr = UserCredential::Headers(vec![("X-Key".into(), Secret::new(String::from("hdr-alice")))]);
        rec.set(&k, "acme", &alice, "files", &hdr, "t1").unwrap();
        let json = serde_json::to_string(&rec).unwrap();
        assert!(!json.contains("tok-alice") && !json.contains("hdr-alice"));
        let back: UserRecord = serde_json::from_str(&json).unwrap();
        assert!(
            matches!(back.open(&k, "acme", &alice, "gh").unwrap(), Some(UserCredential::Bearer(t)) if t.expose() == "tok-alice")
        );
        assert!(
            matches!(back.open(&k, "acme", &alice, "files").unwrap(), Some(UserCredential::Headers(h)) if h[0].1.expose() == "hdr-alice")
        );
        assert!(back.open(&k, "acme", &alice, "other").unwrap().is_none());
        // Copied to another user, tenant or server, it does not open.
        assert!(back.open(&k, "acme", &bob, "gh").is_err());
        let mut as_bob = back.clone();
        as_bob.user = "bob".into();
        assert!(as_bob.open(&k, "acme", &bob, "gh").is_err());
        assert!(back.open(&k, "evil", &alice, "gh").is_err());
        let mut moved = back.clone();
        let c = moved.credentials.remove("gh").unwrap();
        moved.credentials.insert("files2".into(), c);
        assert!(moved.open(&k, "acme", &alice, "files2").is_err());
        let view = back.view("acme").to_string();
        assert!(!view.contains("v1:") && view.contains(r#""gh":{"type":"bearer"}"#));
        // Unknown credential types are never read as something else.
        assert!(serde_json::from_str::<UserRecord>(
            r#"{"v":1,"user":"a","credentials":{"x":{"type":"basic"}},"updated_at":"t"}"#
        )
        .is_err());
    }

    #[test]
    fn deleting_a_user_takes_their_keys_only() {
        let key = |id: &str, user: Option<&str>| KeyEntry {
            id: id.into(),
            sha256: format!("h{id}"),
            created_at: "t".into(),
            user: user.map(Into::into),
            act_as_users: false,
        };
        let record = TenantRecord {
            v: 1,
            tenant: StoredTenant::default(),
            keys: vec![key("1", Some("alice")), key("2", None), key("3", Some("bob")), key("4", Some("alice"))],
            updated_at: "t".into(),
        };
        let ops = plan_delete_user("acme", record, &uid("alice"), "t9");
        assert_eq!(ops[0], KvOp::Delete { key: "gk:h1".into() });
        assert_eq!(ops[1], KvOp::Delete { key: "gk:h4".into() });
        let KvOp::Put { key, value } = &ops[2] else { panic!() };
        assert_eq!(key, "tenant:acme");
        let kept: TenantRecord = serde_json::from_str(value).unwrap();
        assert_eq!(kept.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), vec!["2", "3"]);
        assert_eq!(ops[3], KvOp::Delete { key: format!("uc:acme:{}", uid("alice").hash()) });
        assert_eq!(ops.len(), 4);
    }
}
