//! Capability tokens for the MCP relay (README: "MCP relay").
//!
//! A token lets its bearer talk MCP to one tenant's one server through
//! `/mcp/{tenant}/{server}`, for the tools it names, until it expires:
//!
//! ```text
//! mcr1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "mcr1." ‖ claims part))>
//! ```
//!
//! The MAC key is a subkey of `MASTER_KEY` (HKDF-SHA256, [`TOKEN_KEY_INFO`]).
//! Tokens are minted under the current key and verify under the current or
//! the previous one (`MASTER_KEY_PREVIOUS`), so a rotation does not cut off
//! tokens in flight; dropping the previous key retires them. The tag is
//! checked (RustCrypto `hmac`, constant time) before the claims are parsed;
//! then expiry and audience. Pure: the caller passes the clock and the
//! random id. Never logs or echoes a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::crypto::MasterKey;
use crate::crypto::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Version prefix; also the start of the MAC input.
pub const TOKEN_PREFIX: &str = "mcr1.";
/// HKDF `info` of the token MAC key.
pub const TOKEN_KEY_INFO: &[u8] = b"mcpgate/relay-capability-token/v1";
/// Longest token accepted for verification (tool lists ride inside).
pub const MAX_TOKEN_LEN: usize = 96 * 1024;
const TAG_LEN: usize = 32;

/// What a token grants. `tools: None` means every tool the tenant allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    #[serde(rename = "ten")]
    pub tenant: String,
    #[serde(rename = "srv")]
    pub server: String,
    #[serde(rename = "tools")]
    pub tools: Option<Vec<String>>,
    /// Expiry, Unix seconds; the token is invalid from this second on.
    #[serde(rename = "exp")]
    pub expires_at: u64,
    /// Random id (128 bits, hex), for audit logs.
    #[serde(rename = "jti")]
    pub id: String,
    /// Per-user servers: the user the token acts for, as the user's hash
    /// sealed for this tenant, server and token id (`relay::user`); covered
    /// by the tag like every claim. Absent for tenant-level servers.
    #[serde(rename = "usr", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Why a token was refused. All are 401 at the relay; the names are for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Malformed,
    /// Tag mismatch: forged, tampered, or minted under another `MASTER_KEY`.
    BadSignature,
    Expired,
    /// Valid, but for another tenant or server.
    WrongAudience,
}

impl TokenError {
    /// A low-cardinality name for logs.
    #[must_use]
    pub const fn class(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::BadSignature => "token_bad_signature",
            Self::Expired => "token_expired",
            Self::WrongAudience => "token_wrong_audience",
        }
    }

    /// The caller-facing text; says no more than the class does.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Missing => "This MCP endpoint needs a capability token: send 'Authorization: Bearer <token>'.",
            Self::Malformed | Self::BadSignature => "The capability token is invalid.",
            Self::Expired => "The capability token has expired.",
            Self::WrongAudience => "The capability token is not valid for this MCP server.",
        }
    }
}

/// The MAC keys for capability tokens: the current one (minting and
/// verifying) first, then the previous one (verifying only). Not printable.
pub struct TokenKey(Vec<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    #[must_use]
    pub fn from_master(master: &MasterKey) -> Self {
        Self(master.subkeys(TOKEN_KEY_INFO))
    }

    /// HMAC-SHA256 keyed with a subkey. RFC 2104 zero-pads a short key to
    /// the 64-byte block, which is done here so construction is infallible.
    fn mac_with(key: &[u8; 32]) -> HmacSha256 {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(key);
        <HmacSha256 as KeyInit>::new(&block.into())
    }

    /// The MAC under the current key (a ring always holds one).
    fn mac(&self) -> HmacSha256 {
        Self::mac_with(self.0.first().unwrap_or(&[0u8; 32]))
    }

    /// Mints a token for `cap`.
    #[must_use]
    pub fn mint(&self, cap: &Capability) -> Secret {
        // Serializing strings, an optional string list and an integer cannot fail.
        let claims = serde_json::to_vec(cap).unwrap_or_default();
        let signed = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(claims));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = mac.finalize().into_bytes();
        Secret::new(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Verifies `token` for `tenant`/`server` at Unix second `now`.
    ///
    /// # Errors
    /// The first check that fails, in this order: shape, tag, claims, expiry, audience.
    pub fn verify(&self, token: &str, tenant: &str, server: &str, now: u64) -> Result<Capability, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(TOKEN_PREFIX) {
            return Err(TokenError::Malformed);
        }
        let (signed, tag_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let claims_b64 = signed.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Malformed)?;
        if claims_b64.is_empty() || claims_b64.contains('.') {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let signed_by_ring = self.0.iter().any(|k| {
            let mut mac = Self::mac_with(k);
            mac.update(signed.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        if !signed_by_ring {
            return Err(TokenError::BadSignature);
        }
        let claims = URL_SAFE_NO_PAD.decode(claims_b64).map_err(|_| TokenError::Malformed)?;
        let cap: Capability = serde_json::from_slice(&claims).map_err(|_| TokenError::Malformed)?;
        if now >= cap.expires_at {
            return Err(TokenError::Expired);
        }
        if cap.tenant != tenant || cap.server != server {
            return Err(TokenError::WrongAudience);
        }
        Ok(cap)
    }
}

/// Lowercase hex of a random id.
#[must_use]
pub fn id_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn master(b: u8) -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    fn cap(exp: u64) -> Capability {
        Capability {
            tenant: "acme".into(),
            server: "crm".into(),
            tools: Some(vec!["search".into(), "lookup".into()]),
            expires_at: exp,
            id: id_hex(&[9; 16]),
            user: None,
        }
    }

    #[test]
    fn round_trip() {
        let k = TokenKey::from_master(&master(1));
        let t = k.mint(&cap(1000));
        assert!(t.expose().starts_with(TOKEN_PREFIX));
        assert!(t.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "a token68 value");
        assert_eq!(k.verify(t.expose(), "acme", "crm", 999).unwrap(), cap(1000));
        let all = Capability { tools: None, ..cap(1000) };
        assert_eq!(k.verify(k.mint(&all).expose(), "acme", "crm", 0).unwrap().tools, None);
    }

    #[test]
    fn expiry_is_exclusive() {
        let k = TokenKey::from_master(&master(1));
        let t = k.mint(&cap(1000));
        assert_eq!(k.verify(t.expose(), "acme", "crm", 1000), Err(TokenError::Expired));
        assert_eq!(k.verify(t.expose(), "acme", "crm", 5000), Err(TokenError::Expired));
    }

    #[test]
    fn wrong_audience() {
        let k = TokenKey::from_master(&master(1));
        let t = k.mint(&cap(1000));
        assert_eq!(k.verify(t.expose(), "globex", "crm", 1), Err(TokenError::WrongAudience));
        assert_eq!(k.verify(t.expose(), "acme", "files", 1), Err(TokenError::WrongAudience));
    }

    #[test]
    fn another_master_key_rejects() {
        let t = TokenKey::from_master(&master(1)).mint(&cap(1000));
        let rotated = TokenKey::from_master(&master(2));
        assert_eq!(rotated.verify(t.expose(), "acme", "crm", 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn tokens_survive_a_rotation_while_the_previous_key_is_held() {
        let t = TokenKey::from_master(&master(1)).mint(&cap(1000));
        let rotating = master(2).with_previous(&STANDARD.encode([1u8; 32])).unwrap();
        assert_eq!(TokenKey::from_master(&rotating).verify(t.expose(), "acme", "crm", 1).unwrap(), cap(1000));
        // New tokens are minted under the new key: the old ring cannot verify them.
        let fresh = TokenKey::from_master(&rotating).mint(&cap(1000));
        assert_eq!(
            TokenKey::from_master(&master(1)).verify(fresh.expose(), "acme", "crm", 1),
            Err(TokenError::BadSignature)
        );
        assert!(TokenKey::from_master(&master(2)).verify(fresh.expose(), "acme", "crm", 1).is_ok());
        assert_eq!(TokenKey::from_master(&rotating).verify(t.expose(), "acme", "crm", 1000), Err(TokenError::Expired));
    }

    #[test]
    fn the_key_is_a_subkey_not_the_master_key() {
        let m = master(1);
        assert_ne!(TokenKey::from_master(&m).0[0], [1u8; 32]);
        assert!(format!("{:?}", TokenKey::from_master(&m)).contains("redacted"));
    }

    #[test]
    fn every_tampered_byte_is_refused() {
        let k = TokenKey::from_master(&master(1));
        let t = k.mint(&cap(1000)).expose().to_string();
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            for repl in [b'A', b'x', b'-', b'.'] {
                if bytes[i] == repl {
                    continue;
                }
                let mut b = bytes.to_vec();
                b[i] = repl;
                let bad = String::from_utf8(b).unwrap();
                assert!(k.verify(&bad, "acme", "crm", 1).is_err(), "byte {i} -> {}", repl as char);
            }
        }
    }

    #[test]
    fn forged_claims_with_a_copied_tag_are_refused() {
        let k = TokenKey::from_master(&master(1));
        let t = k.mint(&cap(1000)).expose().to_string();
        let tag = t.rsplit_once('.').unwrap().1;
        let mut forged_cap = cap(u64::MAX);
        forged_cap.tools = None;
        let forged =
            format!("{TOKEN_PREFIX}{}.{tag}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_cap).unwrap()));
        assert_eq!(k.verify(&forged, "acme", "crm", 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn malformed_tokens() {
        let k = TokenKey::from_master(&master(1));
        assert_eq!(k.verify("", "acme", "crm", 1), Err(TokenError::Missing));
        for bad in ["x", "mcr1.", "mcr1..", "mcr1.abc", "mcr1.abc.def", "mcr2.abc.def", "mcr1.a.b.c", "mgk_abc"] {
            assert_eq!(k.verify(bad, "acme", "crm", 1), Err(TokenError::Malformed), "{bad}");
        }
        let huge = format!("{TOKEN_PREFIX}{}", "a".repeat(MAX_TOKEN_LEN));
        assert_eq!(k.verify(&huge, "acme", "crm", 1), Err(TokenError::Malformed));
        // A valid tag over claims that are not our JSON.
        let signed = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(b"[1,2]"));
        let mut mac = k.mac();
        mac.update(signed.as_bytes());
        let tok = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(k.verify(&tok, "acme", "crm", 1), Err(TokenError::Malformed));
    }

    /// The same derivation in plain steps, as the e2e suite's JS minter does it.
    #[test]
    fn known_answer() {
        use hkdf::Hkdf;
        let hk = Hkdf::<Sha256>::new(Some(b"mcpgate/subkey/v1"), &[1u8; 32]);
        let mut okm = [0u8; 32];
        hk.expand(TOKEN_KEY_INFO, &mut okm).unwrap();
        let k = TokenKey::from_master(&master(1));
        assert_eq!(k.0, vec![okm]);
        let mut a = k.mac();
        let mut b = <HmacSha256 as Mac>::new_from_slice(&okm).unwrap();
        a.update(b"x");
        b.update(b"x");
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes(), "padding the key is plain HMAC");
    }
}
