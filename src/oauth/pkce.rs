//! PKCE (RFC 7636) with the `S256` method, and the connect flow's `state`.
//!
//! Random input comes from the caller (`crypto::random_bytes`), so every
//! function here is deterministic and tested natively.

#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A code verifier from 32 random bytes: 43 characters of base64url (RFC 7636 §4.1).
#[must_use]
pub fn verifier(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
#[must_use]
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The `state` of an authorization request: the id of the Durable Object that
/// holds the pending flow (64 hex digits), a dot, and 32 random bytes in
/// base64url. The callback finds the object from the prefix alone; the object
/// then compares the whole value with what it stored.
#[must_use]
pub fn new_state(object_id_hex: &str, random: &[u8; 32]) -> String {
    format!("{object_id_hex}.{}", URL_SAFE_NO_PAD.encode(random))
}

/// The object id of a `state`, if it has the shape [`new_state`] makes.
#[must_use]
pub fn object_id_of_state(state: &str) -> Option<&str> {
    let (id, rest) = state.split_once('.')?;
    let id_ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let rest_ok = rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && rest_ok).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let random: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let v = verifier(&random);
        assert_eq!(v, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge_s256(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifier_has_the_allowed_length_and_alphabet() {
        let v = verifier(&[0xff; 32]);
        assert_eq!(v.len(), 43);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn state_carries_the_object_id() {
        let id = "a".repeat(64);
        let s = new_state(&id, &[7; 32]);
        assert_eq!(object_id_of_state(&s), Some(id.as_str()));
        assert_ne!(new_state(&id, &[8; 32]), s);
        for bad in ["", "abc", id.as_str(), &format!("{id}.short"), &format!("{}.{}", "g".repeat(64), "a".repeat(43))] {
            assert_eq!(object_id_of_state(bad), None, "{bad}");
        }
    }
}
