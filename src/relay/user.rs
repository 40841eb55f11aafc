//! Capability tokens for per-user servers carry their user.
//!
//! The token's `usr` claim is the user's hash (what KV keys and OAuth
//! credential ids are built from), sealed with AES-GCM under `MASTER_KEY`
//! with associated data naming the tenant, the server and the token id: the
//! provider holding the token learns nothing about the user, and the claim
//! cannot be moved to another token, server or tenant. The token's tag
//! covers the claim too, so a token minted for Alice can only ever name
//! Alice: the relay resolves the credential of the user the token names and
//! of no one else.
//!
//! A token for a per-user server must name a user; a token for a
//! tenant-level server must not (a server switched between the two since
//! the token was minted gets the token refused, never another credential).

use super::token::{Capability, TokenError};
use crate::crypto::{Aad, CryptoError, MasterKey, Secret};
use crate::tenant::users::is_user_hash;

fn aad(tenant: &str, server: &str, token_id: &str) -> Aad {
    Aad::new(tenant, &format!("relay.{server}.{token_id}.user"))
}

/// The sealed `usr` claim for a token with id `token_id`.
///
/// # Errors
/// [`CryptoError::Rng`] if no nonce can be drawn.
pub fn seal(
    master: &MasterKey,
    tenant: &str,
    server: &str,
    token_id: &str,
    user_hash: &str,
) -> Result<String, CryptoError> {
    master.seal(&aad(tenant, server, token_id), &Secret::new(user_hash))
}

/// The user a verified token acts for: `None` for a tenant-level server,
/// the user's hash for a per-user one.
///
/// # Errors
/// [`TokenError::WrongAudience`] when the token's binding does not fit the
/// server (a user on a tenant-level server, none on a per-user server);
/// [`TokenError::BadSignature`] when the claim does not open (only a token
/// minted under a key the ring no longer holds can get here).
pub fn bound_user(master: &MasterKey, cap: &Capability, per_user: bool) -> Result<Option<String>, TokenError> {
    match (per_user, &cap.user) {
        (false, None) => Ok(None),
        (false, Some(_)) | (true, None) => Err(TokenError::WrongAudience),
        (true, Some(sealed)) => {
            let hash =
                master.open(&aad(&cap.tenant, &cap.server, &cap.id), sealed).map_err(|_| TokenError::BadSignature)?;
            let hash = hash.expose();
            if is_user_hash(hash) {
                Ok(Some(hash.to_string()))
            } else {
                Err(TokenError::Malformed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;
    use crate::relay::token::TokenKey;
    use crate::tenant::users::UserId;

    fn master(b: u8) -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    fn cap_for(m: &MasterKey, user: Option<&str>, id: &str) -> Capability {
        let user = user.map(|u| seal(m, "acme", "drive", id, &UserId::parse(u, "u").unwrap().hash()).unwrap());
        Capability { tenant: "acme".into(), server: "drive".into(), tools: None, expires_at: 1000, id: id.into(), user }
    }

    #[test]
    fn a_token_names_its_user_and_only_its_user() {
        let m = master(1);
        let k = TokenKey::from_master(&m);
        let alice = UserId::parse("alice", "u").unwrap();
        let t = k.mint(&cap_for(&m, Some("alice"), "id1"));
        let cap = k.verify(t.expose(), "acme", "drive", 1).unwrap();
        assert_eq!(bound_user(&m, &cap, true).unwrap(), Some(alice.hash()));
        // The claim reveals nothing of the user: neither the id nor its hash.
        assert!(!t.expose().contains("alice"));
        let claims = t.expose().split('.').nth(1).unwrap();
        let claims =
            String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert!(!claims.contains(&alice.hash()) && !claims.contains(&alice.hash()[..16]), "{claims}");
    }

    #[test]
    fn a_claim_cannot_be_moved() {
        let m = master(1);
        let k = TokenKey::from_master(&m);
        let bob = cap_for(&m, Some("bob"), "id-bob");
        // Bob's sealed claim in Alice's token: the tag no longer verifies.
        let alice = k.mint(&cap_for(&m, Some("alice"), "id-alice")).expose().to_string();
        let mut forged = k.verify(&alice, "acme", "drive", 1).unwrap();
        forged.user.clone_from(&bob.user);
        let reminted_tag = alice.rsplit_once('.').unwrap().1;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("mcr1.{body}.{reminted_tag}");
        assert_eq!(k.verify(&tampered, "acme", "drive", 1), Err(TokenError::BadSignature));
        // Even a claim carried into another token id (minted by the key) does not open.
        assert_eq!(bound_user(&m, &forged, true), Err(TokenError::BadSignature));
        // Nor for another server or tenant.
        let mut other = bob.clone();
        other.server = "mail".into();
        assert_eq!(bound_user(&m, &other, true), Err(TokenError::BadSignature));
        let mut other = bob.clone();
        other.tenant = "globex".into();
        assert_eq!(bound_user(&m, &other, true), Err(TokenError::BadSignature));
        // Under another master key it does not open either.
        assert_eq!(bound_user(&master(2), &bob, true), Err(TokenError::BadSignature));
    }

    #[test]
    fn the_binding_must_fit_the_server() {
        let m = master(1);
        assert_eq!(bound_user(&m, &cap_for(&m, None, "x"), false).unwrap(), None);
        assert_eq!(bound_user(&m, &cap_for(&m, None, "x"), true), Err(TokenError::WrongAudience));
        assert_eq!(bound_user(&m, &cap_for(&m, Some("alice"), "x"), false), Err(TokenError::WrongAudience));
        // A sealed value that is not a user hash is refused.
        let mut c = cap_for(&m, None, "x");
        c.user = Some(m.seal(&aad("acme", "drive", "x"), &Secret::new("not-a-hash")).unwrap());
        assert_eq!(bound_user(&m, &c, true), Err(TokenError::Malformed));
    }
}
