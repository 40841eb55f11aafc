//! The token state of one OAuth credential, as its Durable Object stores it,
//! and every decision about it: use the cached token or ask the token
//! endpoint, how an answer changes the state (refresh-token rotation), and
//! the pending authorization of the connect flow.
//!
//! Pure: the Durable Object (`shell::oauth::object`) loads the state, calls
//! these functions, performs the I/O they ask for and persists the result
//! before anyone uses a new token. Every secret in the state is sealed with
//! [`Sealer`]; plaintext exists only in returned values.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use super::records::{AccessToken, Sealer};
use super::token::{is_fresh, Client, TokenFailure, TokenSet};
use crate::crypto::Secret;
use crate::crypto::{ct_eq, sha256_hex, CryptoError};
use crate::oauth::config::{ClientAuth, Grant, OAuthConfig};

/// Version of [`CredentialState`] written today.
pub const STATE_VERSION: u32 = 1;
/// How long an authorization link stays valid.
pub const PENDING_TTL_MS: u64 = 600_000;

/// The reconnect reason of a credential that was never connected (a
/// per-user server's user who has not run the connect flow yet).
pub const NOT_CONNECTED: &str = "it has not been connected yet";

/// A client the gateway used or registered, sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredClient {
    pub token_url: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_auth: String,
}

/// A dynamically registered client (RFC 7591), reused by later connects to the
/// same issuer with the same redirect URI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub issuer: String,
    pub redirect_uri: String,
    pub client: StoredClient,
}

/// An authorization link handed out and not yet used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConnect {
    pub tenant: String,
    pub server: String,
    pub credential_id: String,
    /// SHA-256 of the whole `state` value; compared in constant time.
    pub state_sha256: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    pub client: StoredClient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The issuer advertised RFC 9207 `iss` in authorization responses: the callback must carry it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iss_required: bool,
    pub expires_at_ms: u64,
}

/// The most recent failure, for the admin view. Holds our own words only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastError {
    pub at_ms: u64,
    pub kind: String,
    pub message: String,
}

/// Everything a credential's Durable Object keeps (storage key `state`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CredentialState {
    pub v: u32,
    /// The client of the last completed connect flow; used instead of the
    /// configured one (which it already merged) for later refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<StoredClient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Scope and resource of the last connect flow, sent on refreshes when the
    /// config names none (MCP: the same `resource` on every token request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The current refresh token (sealed). Replaces the configured one once used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// True once the configured refresh token has been spent or superseded.
    #[serde(default)]
    pub seed_consumed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_at_ms: u64,
    #[serde(default)]
    pub lifetime_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_at_ms: Option<u64>,
    /// Token endpoint calls made for this credential.
    #[serde(default)]
    pub token_requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingConnect>,
}

/// What to do to get an access token.
#[derive(Debug)]
pub enum Plan {
    /// The stored token is fresh.
    Use(AccessToken),
    /// Ask the token endpoint.
    Request { client: Client, refresh_token: Option<Secret> },
    /// No grant to use: the server must be (re)connected. The reason is safe to show.
    Reconnect(String),
}

impl StoredClient {
    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn seal(c: &Client, s: &Sealer<'_>) -> Result<Self, CryptoError> {
        Ok(Self {
            token_url: c.token_url.clone(),
            client_id: c.client_id.clone(),
            client_secret: c.secret.as_ref().map(|x| s.seal("client_secret", x)).transpose()?,
            client_auth: c.auth.as_str().to_string(),
        })
    }

    /// # Errors
    /// [`CryptoError::Open`] if the secret does not open.
    pub fn open(&self, s: &Sealer<'_>) -> Result<Client, CryptoError> {
        Ok(Client {
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            secret: self.client_secret.as_deref().map(|e| s.open("client_secret", e)).transpose()?,
            auth: ClientAuth::from_name(&self.client_auth),
        })
    }
}

/// The configured client, when the config names both endpoint and client.
#[must_use]
pub fn configured_client(cfg: &OAuthConfig) -> Option<Client> {
    Some(Client {
        token_url: cfg.token_url.clone()?,
        client_id: cfg.client_id.clone()?,
        secret: cfg.client_secret.clone(),
        auth: cfg.client_auth,
    })
}

impl CredentialState {
    /// The refresh token to use: the stored one, else the configured one if unspent.
    ///
    /// # Errors
    /// [`CryptoError::Open`] if the stored token does not open.
    pub fn current_refresh_token(&self, cfg: &OAuthConfig, s: &Sealer<'_>) -> Result<Option<Secret>, CryptoError> {
        if let Some(env) = &self.refresh_token {
            return s.open("refresh_token", env).map(Some);
        }
        match &cfg.grant {
            Grant::RefreshToken(seed) if !self.seed_consumed => Ok(Some(seed.clone())),
            Grant::RefreshToken(_) | Grant::ClientCredentials | Grant::AuthorizationCode => Ok(None),
        }
    }

    /// The stored access token if fresh at `now_ms`.
    #[must_use]
    pub fn fresh_token(&self, s: &Sealer<'_>, now_ms: u64) -> Option<AccessToken> {
        let env = self.access_token.as_deref()?;
        if !is_fresh(now_ms, self.expires_at_ms, self.lifetime_ms) {
            return None;
        }
        let token = s.open("access_token", env).ok()?;
        Some(AccessToken { token, expires_at_ms: self.expires_at_ms, lifetime_ms: self.lifetime_ms })
    }

    /// The scope to send: configured, else the connect flow's.
    #[must_use]
    pub fn scope<'a>(&'a self, cfg: &'a OAuthConfig) -> Option<&'a str> {
        cfg.scope.as_deref().or(self.scope.as_deref())
    }

    /// The resource indicator to send: configured, else the connect flow's.
    #[must_use]
    pub fn resource<'a>(&'a self, cfg: &'a OAuthConfig) -> Option<&'a str> {
        cfg.resource.as_deref().or(self.resource.as_deref())
    }

    /// Decides how to get a token at `now_ms`.
    ///
    /// # Errors
    /// [`CryptoError::Open`] if stored secrets do not open.
    pub fn plan(&self, cfg: &OAuthConfig, s: &Sealer<'_>, now_ms: u64) -> Result<Plan, CryptoError> {
        if let Some(t) = self.fresh_token(s, now_ms) {
            return Ok(Plan::Use(t));
        }
        let client = match &self.client {
            Some(c) => Some(c.open(s)?),
            None => configured_client(cfg),
        };
        if matches!(cfg.grant, Grant::ClientCredentials) {
            return Ok(match client {
                Some(client) => Plan::Request { client, refresh_token: None },
                None => Plan::Reconnect("its OAuth client is not configured".into()),
            });
        }
        let refresh = self.current_refresh_token(cfg, s)?;
        Ok(match (client, refresh) {
            (Some(client), Some(rt)) => Plan::Request { client, refresh_token: Some(rt) },
            _ => Plan::Reconnect(self.reconnect_reason()),
        })
    }

    fn reconnect_reason(&self) -> String {
        match (&self.last_error, self.connected_at_ms) {
            (Some(e), _) if e.kind == "reconnect_required" => e.message.clone(),
            (_, None) => NOT_CONNECTED.into(),
            (_, Some(_)) => "its access token expired and the authorization server issued no refresh token".into(),
        }
    }

    /// Records a token response. A new refresh token replaces the old one;
    /// without one, the refresh token just used stays current.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn apply_tokens(
        &mut self,
        s: &Sealer<'_>,
        now_ms: u64,
        set: TokenSet,
        used_refresh: Option<&Secret>,
    ) -> Result<AccessToken, CryptoError> {
        let token = AccessToken {
            token: set.access_token,
            expires_at_ms: now_ms.saturating_add(set.lifetime_ms),
            lifetime_ms: set.lifetime_ms,
        };
        self.v = STATE_VERSION;
        self.access_token = Some(s.seal("access_token", &token.token)?);
        self.expires_at_ms = token.expires_at_ms;
        self.lifetime_ms = token.lifetime_ms;
        if let Some(rt) = set.refresh_token.as_ref().or(used_refresh) {
            self.refresh_token = Some(s.seal("refresh_token", rt)?);
            self.seed_consumed = true;
        }
        self.last_refresh_at_ms = Some(now_ms);
        self.connected_at_ms.get_or_insert(now_ms);
        self.token_requests += 1;
        self.last_error = None;
        Ok(token)
    }

    /// Records a failed token request. A rejected grant is dropped so later
    /// requests fail fast until the server is reconnected.
    pub fn apply_failure(&mut self, cfg: &OAuthConfig, now_ms: u64, f: &TokenFailure) {
        self.v = STATE_VERSION;
        self.token_requests += 1;
        self.last_error = Some(LastError { at_ms: now_ms, kind: f.kind().into(), message: f.describe() });
        if f.needs_reconnect() && !matches!(cfg.grant, Grant::ClientCredentials) {
            self.refresh_token = None;
            self.seed_consumed = true;
            self.access_token = None;
        }
    }

    /// Stores a pending authorization for `state` (only its hash is kept).
    pub fn set_pending(&mut self, state: &str, pending: PendingConnect) {
        self.v = STATE_VERSION;
        self.pending = Some(PendingConnect { state_sha256: sha256_hex(state.as_bytes()), ..pending });
    }

    /// Takes the pending authorization that `state` belongs to; single use.
    ///
    /// # Errors
    /// A safe message when there is none, it expired, or `state` differs.
    pub fn take_pending(&mut self, state: &str, now_ms: u64) -> Result<PendingConnect, &'static str> {
        let p = self.pending.as_ref().ok_or("This authorization link is unknown or was already used.")?;
        if !ct_eq(p.state_sha256.as_bytes(), sha256_hex(state.as_bytes()).as_bytes()) {
            return Err("This authorization link is unknown or was already used.");
        }
        let p = self.pending.take().ok_or("This authorization link is unknown or was already used.")?;
        if p.expires_at_ms <= now_ms {
            return Err("This authorization link has expired; create a new one.");
        }
        Ok(p)
    }

    /// Records a completed connect flow: its client and tokens replace whatever
    /// grant the credential had.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] if no nonce can be drawn.
    pub fn apply_connected(
        &mut self,
        s: &Sealer<'_>,
        now_ms: u64,
        set: TokenSet,
        pending: &PendingConnect,
    ) -> Result<AccessToken, CryptoError> {
        self.client = Some(pending.client.clone());
        self.issuer.clone_from(&pending.issuer);
        self.scope.clone_from(&pending.scope);
        self.resource.clone_from(&pending.resource);
        self.refresh_token = None;
        self.seed_consumed = true;
        self.connected_at_ms = Some(now_ms);
        self.apply_tokens(s, now_ms, set, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::oauth::config::parse_oauth2;
    use crate::tenant::input::ParseOptions;
    use base64::Engine;

    fn master() -> MasterKey {
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([9u8; 32])).unwrap()
    }

    fn cfg(json: &str) -> OAuthConfig {
        parse_oauth2(json, "p", ParseOptions::default()).unwrap()
    }

    fn set(at: &str, rt: Option<&str>, lifetime_ms: u64) -> TokenSet {
        TokenSet { access_token: Secret::new(at), refresh_token: rt.map(Secret::new), lifetime_ms }
    }

    const REFRESH: &str = r#"{"type":"oauth2","token_url":"https://as/t","client_id":"c","refresh_token":"rt-0","grant":"refresh_token"}"#;

    #[test]
    fn refresh_rotates_and_the_seed_is_used_once() {
        let k = master();
        let s = Sealer { key: &k, tenant: "t", server: "crm", credential_id: "c1" };
        let c = cfg(REFRESH);
        let mut st = CredentialState::default();
        let Plan::Request { client, refresh_token } = st.plan(&c, &s, 0).unwrap() else { panic!() };
        assert_eq!(client.token_url, "https://as/t");
        assert_eq!(refresh_token.as_ref().unwrap().expose(), "rt-0");
        let t = st.apply_tokens(&s, 1_000, set("at-1", Some("rt-1"), 4_000), refresh_token.as_ref()).unwrap();
        assert_eq!(t.expires_at_ms, 5_000);
        let json = serde_json::to_string(&st).unwrap();
        assert!(!json.contains("rt-1") && !json.contains("at-1"), "sealed at rest");
        // Fresh until the margin (2 s before expiry).
        assert!(matches!(st.plan(&c, &s, 2_999).unwrap(), Plan::Use(t) if t.token.expose() == "at-1"));
        let Plan::Request { refresh_token, .. } = st.plan(&c, &s, 3_000).unwrap() else { panic!() };
        assert_eq!(refresh_token.as_ref().unwrap().expose(), "rt-1", "the rotated token replaced the seed");
        // No rotation: the token just used stays current.
        st.apply_tokens(&s, 3_000, set("at-2", None, 4_000), refresh_token.as_ref()).unwrap();
        let Plan::Request { refresh_token, .. } = st.plan(&c, &s, 9_000).unwrap() else { panic!() };
        assert_eq!(refresh_token.unwrap().expose(), "rt-1");
        assert_eq!(st.token_requests, 2);
    }

    #[test]
    fn rejection_drops_the_grant_and_asks_for_reconnect() {
        let k = master();
        let s = Sealer { key: &k, tenant: "t", server: "crm", credential_id: "c1" };
        let c = cfg(REFRESH);
        let mut st = CredentialState::default();
        st.apply_failure(&c, 10, &TokenFailure::Rejected { error: "invalid_grant".into() });
        let Plan::Reconnect(why) = st.plan(&c, &s, 20).unwrap() else { panic!() };
        assert!(why.contains("invalid_grant"), "{why}");
        assert_eq!(st.last_error.as_ref().unwrap().kind, "reconnect_required");
        // An outage keeps the grant.
        let mut st = CredentialState::default();
        st.apply_failure(&c, 10, &TokenFailure::Unreachable);
        assert!(matches!(st.plan(&c, &s, 20).unwrap(), Plan::Request { .. }));
    }

    #[test]
    fn client_credentials_and_unconnected_servers() {
        let k = master();
        let s = Sealer { key: &k, tenant: "t", server: "svc", credential_id: "c1" };
        let cc = cfg(
            r#"{"type":"oauth2","token_url":"https://as/t","client_id":"c","client_secret":"s","grant":"client_credentials"}"#,
        );
        let mut st = CredentialState::default();
        assert!(matches!(st.plan(&cc, &s, 0).unwrap(), Plan::Request { refresh_token: None, .. }));
        st.apply_failure(&cc, 1, &TokenFailure::Rejected { error: "invalid_client".into() });
        assert!(matches!(st.plan(&cc, &s, 2).unwrap(), Plan::Request { .. }), "client credentials are config: retry");
        let ac = cfg(r#"{"type":"oauth2"}"#);
        let Plan::Reconnect(why) = CredentialState::default().plan(&ac, &s, 0).unwrap() else { panic!() };
        assert_eq!(why, "it has not been connected yet");
    }

    #[test]
    fn connect_flow_state_is_single_use_and_expires() {
        let k = master();
        let s = Sealer { key: &k, tenant: "t", server: "docs", credential_id: "c1" };
        let client =
            Client { token_url: "https://as/t".into(), client_id: "dyn".into(), secret: None, auth: ClientAuth::Basic };
        let pending = PendingConnect {
            tenant: "t".into(),
            server: "docs".into(),
            credential_id: "c1".into(),
            state_sha256: String::new(),
            code_verifier: s.seal("code_verifier", &Secret::new("v")).unwrap(),
            redirect_uri: "https://gw/oauth/callback".into(),
            client: StoredClient::seal(&client, &s).unwrap(),
            scope: None,
            resource: Some("https://mcp/".into()),
            issuer: Some("https://as".into()),
            iss_required: false,
            expires_at_ms: 1_000,
        };
        let mut st = CredentialState::default();
        st.set_pending("state-1", pending.clone());
        assert!(st.take_pending("state-2", 0).is_err());
        let p = st.take_pending("state-1", 0).unwrap();
        assert!(st.take_pending("state-1", 0).is_err(), "single use");
        st.set_pending("state-1", pending);
        assert!(st.take_pending("state-1", 1_000).unwrap_err().contains("expired"));
        // Completing replaces any earlier grant and uses the flow's client from then on.
        let ac = cfg(r#"{"type":"oauth2"}"#);
        st.apply_connected(&s, 5, set("at", Some("rt"), 60_000), &p).unwrap();
        let Plan::Request { client, refresh_token } = st.plan(&ac, &s, 59_000).unwrap() else { panic!() };
        assert_eq!(client.client_id, "dyn");
        assert_eq!(refresh_token.unwrap().expose(), "rt");
        assert_eq!(st.connected_at_ms, Some(5));
        assert_eq!(st.resource(&ac), Some("https://mcp/"));
    }
}
