//! Stored forms of OAuth credentials: the `oauth2` auth of a tenant record
//! (secrets sealed) and the access-token cache record in KV. Keys are built
//! in `kv_schema`; this module only shapes and seals values.
//!
//! Every secret is an envelope from [`crate::crypto`], bound to the tenant
//! and a field path naming the server (and, for tokens, the credential id),
//! so a value copied to another tenant, server or credential does not open.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::crypto::{Aad, CryptoError, MasterKey};
use crate::crypto::{Secret, REDACTED};
use crate::oauth::config::{ClientAuth, Grant, OAuthConfig};

/// The `oauth2` auth of a stored MCP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredOAuth {
    pub credential_id: String,
    pub grant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The authorization server the tenant named (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

fn field(server: &str, name: &str) -> String {
    format!("mcp_servers.{server}.auth.{name}")
}

/// Seals an `oauth2` config of `server`.
///
/// # Errors
/// [`CryptoError::Rng`] if no nonce can be drawn.
pub fn seal_oauth(key: &MasterKey, tenant: &str, server: &str, c: &OAuthConfig) -> Result<StoredOAuth, CryptoError> {
    let seal = |name: &str, s: &Secret| key.seal(&Aad::new(tenant, &field(server, name)), s);
    Ok(StoredOAuth {
        credential_id: c.credential_id.clone(),
        grant: c.grant.as_str().to_string(),
        token_url: c.token_url.clone(),
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.as_ref().map(|s| seal("client_secret", s)).transpose()?,
        client_auth: c.client_auth.as_str().to_string(),
        scope: c.scope.clone(),
        resource: c.resource.clone(),
        issuer: c.issuer.clone(),
        refresh_token: match &c.grant {
            Grant::RefreshToken(t) => Some(seal("refresh_token", t)?),
            Grant::ClientCredentials | Grant::AuthorizationCode => None,
        },
    })
}

/// Opens a stored `oauth2` config.
///
/// # Errors
/// [`CryptoError::Open`] if an envelope fails, or the grant is unknown or
/// lacks its refresh token.
pub fn open_oauth(key: &MasterKey, tenant: &str, server: &str, s: &StoredOAuth) -> Result<OAuthConfig, CryptoError> {
    let open = |name: &str, env: &str| key.open(&Aad::new(tenant, &field(server, name)), env);
    let grant = match s.grant.as_str() {
        "client_credentials" => Grant::ClientCredentials,
        "authorization_code" => Grant::AuthorizationCode,
        "refresh_token" => {
            Grant::RefreshToken(open("refresh_token", s.refresh_token.as_deref().ok_or(CryptoError::Open)?)?)
        }
        _ => return Err(CryptoError::Open),
    };
    Ok(OAuthConfig {
        token_url: s.token_url.clone(),
        client_id: s.client_id.clone(),
        client_secret: s.client_secret.as_deref().map(|e| open("client_secret", e)).transpose()?,
        client_auth: ClientAuth::from_name(&s.client_auth),
        scope: s.scope.clone(),
        resource: s.resource.clone(),
        issuer: s.issuer.clone(),
        grant,
        credential_id: s.credential_id.clone(),
    })
}

/// The admin view of an `oauth2` auth: the input shape, secrets `"[redacted]"`.
#[must_use]
pub fn redacted_oauth(s: &StoredOAuth) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), "oauth2".into());
    m.insert("grant".into(), s.grant.clone().into());
    let mut put = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    };
    put("token_url", s.token_url.as_ref());
    put("client_id", s.client_id.as_ref());
    put("scope", s.scope.as_ref());
    put("resource", s.resource.as_ref());
    put("issuer", s.issuer.as_ref());
    if s.client_secret.is_some() {
        m.insert("client_secret".into(), REDACTED.into());
        m.insert("client_auth".into(), s.client_auth.clone().into());
    }
    if s.refresh_token.is_some() {
        m.insert("refresh_token".into(), REDACTED.into());
    }
    serde_json::Value::Object(m)
}

/// Seals values of one credential's token state (Durable Object storage and
/// the KV cache): field paths carry the server and the credential id.
pub struct Sealer<'a> {
    pub key: &'a MasterKey,
    pub tenant: &'a str,
    pub server: &'a str,
    pub credential_id: &'a str,
}

impl Sealer<'_> {
    fn aad(&self, name: &str) -> Aad {
        Aad::new(self.tenant, &format!("oauth.{}.{}.{name}", self.server, self.credential_id))
    }

    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn seal(&self, name: &str, value: &Secret) -> Result<String, CryptoError> {
        self.key.seal(&self.aad(name), value)
    }

    /// # Errors
    /// [`CryptoError::Open`] on any mismatch.
    pub fn open(&self, name: &str, envelope: &str) -> Result<Secret, CryptoError> {
        self.key.open(&self.aad(name), envelope)
    }

    /// The value under the current key, `None` if it already is (see [`MasterKey::reseal`]).
    ///
    /// # Errors
    /// [`CryptoError::Open`] on any mismatch.
    pub fn reseal(&self, name: &str, envelope: &str) -> Result<Option<String>, CryptoError> {
        self.key.reseal(&self.aad(name), envelope)
    }
}

/// `oat:…` in KV: the current access token of a credential, the read path of
/// requests. Written by the credential's Durable Object after each token
/// request; a record whose token is no longer fresh is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    pub v: u32,
    pub access_token: String,
    pub expires_at_ms: u64,
    pub lifetime_ms: u64,
}

/// A usable access token and its timing.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at_ms: u64,
    pub lifetime_ms: u64,
}

impl AccessToken {
    /// Sealed for the KV cache.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn to_record(&self, s: &Sealer<'_>) -> Result<AccessTokenRecord, CryptoError> {
        Ok(AccessTokenRecord {
            v: 1,
            access_token: s.seal("access_token", &self.token)?,
            expires_at_ms: self.expires_at_ms,
            lifetime_ms: self.lifetime_ms,
        })
    }

    /// The cached token if it is still fresh at `now_ms`.
    #[must_use]
    pub fn from_record(r: &AccessTokenRecord, s: &Sealer<'_>, now_ms: u64) -> Option<Self> {
        if !super::token::is_fresh(now_ms, r.expires_at_ms, r.lifetime_ms) {
            return None;
        }
        let token = s.open("access_token", &r.access_token).ok()?;
        Some(Self { token, expires_at_ms: r.expires_at_ms, lifetime_ms: r.lifetime_ms })
    }

    /// KV expiration TTL for the record: until expiry, at least KV's 60 s
    /// minimum, at most 30 days (a missing record only costs a Durable Object call).
    #[must_use]
    pub fn kv_ttl_secs(&self, now_ms: u64) -> u64 {
        (self.expires_at_ms.saturating_sub(now_ms) / 1000).clamp(60, 30 * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::config::parse_oauth2;
    use crate::tenant::input::ParseOptions;
    use base64::Engine;

    fn master() -> MasterKey {
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([5u8; 32])).unwrap()
    }

    #[test]
    fn oauth_config_round_trips_sealed() {
        let k = master();
        let mut c = parse_oauth2(
            r#"{"type":"oauth2","token_url":"https://as/t","client_id":"cid","client_secret":"cs-PLAIN","grant":"refresh_token","refresh_token":"rt-PLAIN","scope":"s"}"#,
            "p",
            ParseOptions::default(),
        )
        .unwrap();
        c.credential_id = "cred1".into();
        let stored = seal_oauth(&k, "acme", "crm", &c).unwrap();
        let json = serde_json::to_string(&stored).unwrap();
        assert!(!json.contains("PLAIN"));
        let back = open_oauth(&k, "acme", "crm", &stored).unwrap();
        assert!(matches!(&back.grant, Grant::RefreshToken(t) if t.expose() == "rt-PLAIN"));
        assert_eq!(back.client_secret.unwrap().expose(), "cs-PLAIN");
        assert_eq!(back.credential_id, "cred1");
        assert!(open_oauth(&k, "acme", "other", &stored).is_err(), "bound to the server");
        let view = redacted_oauth(&stored).to_string();
        assert!(!view.contains("PLAIN") && !view.contains("v1:"));
        assert!(view.contains(r#""refresh_token":"[redacted]""#) && view.contains(r#""client_secret":"[redacted]""#));
        assert!(!view.contains("credential_id"));
    }

    #[test]
    fn cache_record_is_sealed_and_checked_for_freshness() {
        let k = master();
        let s = Sealer { key: &k, tenant: "acme", server: "crm", credential_id: "c1" };
        let t = AccessToken { token: Secret::new("at-PLAIN"), expires_at_ms: 10_000, lifetime_ms: 4_000 };
        let rec = t.to_record(&s).unwrap();
        assert!(!serde_json::to_string(&rec).unwrap().contains("PLAIN"));
        assert_eq!(AccessToken::from_record(&rec, &s, 7_000).unwrap().token.expose(), "at-PLAIN");
        assert!(AccessToken::from_record(&rec, &s, 8_000).is_none(), "within the margin");
        let other = Sealer { credential_id: "c2", ..s };
        assert!(AccessToken::from_record(&rec, &other, 7_000).is_none(), "bound to the credential");
        assert_eq!(t.kv_ttl_secs(0), 60);
        let long = AccessToken { expires_at_ms: 3_600_000, ..t };
        assert_eq!(long.kv_ttl_secs(0), 3600);
        let forever = AccessToken { expires_at_ms: u64::MAX, ..long };
        assert_eq!(forever.kv_ttl_secs(0), 30 * 86_400);
    }
}
