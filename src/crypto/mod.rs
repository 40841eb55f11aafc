//! Envelope encryption of tenant secrets at rest, gateway-key hashing and
//! constant-time comparison.
//!
//! Envelope: `v1:` + base64(nonce ‖ AES-256-GCM ciphertext+tag), a fresh
//! random 96-bit nonce per value, and associated data binding the tenant id
//! and the field path, so a ciphertext copied to another tenant or field
//! fails to open. Primitives are RustCrypto's audited `aes-gcm` and `sha2`.

mod secret;
pub use secret::{Secret, REDACTED};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ENVELOPE_PREFIX: &str = "v1:";
/// HKDF salt for subkeys of `MASTER_KEY` (a fixed, public domain separator).
const SUBKEY_SALT: &[u8] = b"mcpgate/subkey/v1";
const NONCE_LEN: usize = 12;

/// Why a crypto operation failed. Carries no key or plaintext material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// `MASTER_KEY` is missing, not base64, or not 32 bytes.
    BadMasterKey,
    /// The platform RNG failed.
    Rng,
    /// Not an envelope, wrong version, tampered, or bound to another tenant/field.
    Open,
}

/// Most envelopes [`MasterKey::open`] remembers (the cache is emptied when full).
const OPEN_CACHE_MAX: usize = 1024;

/// The AES-256-GCM key derived from `MASTER_KEY`, and an HKDF-SHA256
/// extractor over it for purpose-bound subkeys. Not printable.
///
/// It remembers what it opened, keyed by (associated data, envelope): an
/// envelope carries a random nonce, so it names exactly one sealed value and
/// a cache hit can never return a value for another tenant or field. The
/// shell keeps one `MasterKey` per isolate, so the hot path decrypts each
/// stored secret once rather than on every request.
pub struct MasterKey {
    cipher: Aes256Gcm,
    opened: std::cell::RefCell<std::collections::HashMap<(String, String), Secret>>,
    hkdf: Hkdf<Sha256>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses `MASTER_KEY`: standard base64 of exactly 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::BadMasterKey`] otherwise.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadMasterKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let hkdf = Hkdf::<Sha256>::new(Some(SUBKEY_SALT), &bytes);
        Ok(Self { cipher, opened: std::cell::RefCell::new(std::collections::HashMap::new()), hkdf })
    }

    /// A 256-bit subkey for one purpose (HKDF-SHA256, RFC 5869; `info`
    /// names the purpose). Different `info`, or another `MASTER_KEY`, gives
    /// an unrelated key, so rotating `MASTER_KEY` retires every subkey.
    #[must_use]
    pub fn subkey(&self, info: &[u8]) -> [u8; 32] {
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit: expand cannot fail.
        let _ = self.hkdf.expand(info, &mut okm);
        okm
    }

    /// Seals with a fresh random nonce.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] if the platform RNG fails.
    pub fn seal(&self, aad: &Aad, plaintext: &Secret) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Rng)?;
        self.seal_with_nonce(aad, plaintext, nonce)
    }

    /// Deterministic core of [`Self::seal`]; the nonce must never repeat under one key.
    ///
    /// # Errors
    /// Never in practice; AES-GCM fails only on absurd lengths.
    pub fn seal_with_nonce(
        &self,
        aad: &Aad,
        plaintext: &Secret,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, CryptoError> {
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.expose().as_bytes(), aad: aad.0.as_bytes() })
            .map_err(|_| CryptoError::Open)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        Ok(format!("{ENVELOPE_PREFIX}{}", STANDARD.encode(raw)))
    }

    /// Opens an envelope sealed for exactly this `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Open`] on any mismatch or tampering.
    pub fn open(&self, aad: &Aad, envelope: &str) -> Result<Secret, CryptoError> {
        let key = (aad.0.clone(), envelope.to_string());
        if let Some(s) = self.opened.borrow().get(&key) {
            return Ok(s.clone());
        }
        let secret = self.open_uncached(aad, envelope)?;
        let mut cache = self.opened.borrow_mut();
        if cache.len() >= OPEN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, secret.clone());
        Ok(secret)
    }

    fn open_uncached(&self, aad: &Aad, envelope: &str) -> Result<Secret, CryptoError> {
        let b64 = envelope.strip_prefix(ENVELOPE_PREFIX).ok_or(CryptoError::Open)?;
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Open)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.0.as_bytes() })
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(pt).map(Secret::new).map_err(|_| CryptoError::Open)
    }
}

/// Associated data: binds a sealed value to its tenant and field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(String);

impl Aad {
    /// `tenant` and `field` are validated names/paths; the separator cannot occur in them.
    #[must_use]
    pub fn new(tenant: &str, field: &str) -> Self {
        Self(format!("mcpgate/v1\n{tenant}\n{field}"))
    }
}

/// Lowercase hex SHA-256, the only form in which gateway keys are stored.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Constant-time equality for tokens and digests.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Fresh random bytes from the platform RNG.
///
/// # Errors
/// [`CryptoError::Rng`] if the RNG fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(buf)
}

/// A new gateway key (`mgk_` + 256 random bits, base64url) and its id (`key_` + 64 bits hex).
///
/// # Errors
/// [`CryptoError::Rng`] if the RNG fails.
pub fn new_gateway_key() -> Result<(String, Secret), CryptoError> {
    let id: [u8; 8] = random_bytes()?;
    let key: [u8; 32] = random_bytes()?;
    let mut id_hex = String::from("key_");
    for b in id {
        id_hex.push(char::from(HEX[usize::from(b >> 4)]));
        id_hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok((id_hex, Secret::new(format!("mgk_{}", URL_SAFE_NO_PAD.encode(key)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = key();
        let aad = Aad::new("acme", "providers.openai.api_key");
        let a = k.seal(&aad, &Secret::new("sk-live-123")).unwrap();
        let b = k.seal(&aad, &Secret::new("sk-live-123")).unwrap();
        assert_ne!(a, b, "nonce must be fresh per value");
        assert!(a.starts_with("v1:") && !a.contains("sk-live"));
        assert_eq!(k.open(&aad, &a).unwrap().expose(), "sk-live-123");
    }

    #[test]
    fn wrong_tenant_field_or_key_fails() {
        let k = key();
        let env = k.seal(&Aad::new("acme", "f"), &Secret::new("x")).unwrap();
        assert_eq!(k.open(&Aad::new("evil", "f"), &env).unwrap_err(), CryptoError::Open);
        assert_eq!(k.open(&Aad::new("acme", "g"), &env).unwrap_err(), CryptoError::Open);
        let other = MasterKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert_eq!(other.open(&Aad::new("acme", "f"), &env).unwrap_err(), CryptoError::Open);
    }

    #[test]
    fn cache_never_crosses_tenants_or_fields() {
        let k = key();
        let env = k.seal(&Aad::new("acme", "f"), &Secret::new("v")).unwrap();
        assert_eq!(k.open(&Aad::new("acme", "f"), &env).unwrap().expose(), "v");
        assert_eq!(k.open(&Aad::new("acme", "f"), &env).unwrap().expose(), "v");
        assert!(k.open(&Aad::new("evil", "f"), &env).is_err());
        assert!(k.open(&Aad::new("acme", "g"), &env).is_err());
    }

    #[test]
    fn tampering_fails() {
        let k = key();
        let aad = Aad::new("t", "f");
        let env = k.seal_with_nonce(&aad, &Secret::new("hello"), [1; 12]).unwrap();
        let mut raw = STANDARD.decode(&env[3..]).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let bad = format!("v1:{}", STANDARD.encode(&raw));
            assert!(k.open(&aad, &bad).is_err(), "flip at {i}");
            raw[i] ^= 1;
        }
        assert!(k.open(&aad, "v2:abc").is_err());
        assert!(k.open(&aad, "v1:!!").is_err());
        assert!(k.open(&aad, "v1:").is_err());
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(format!("{:?}", key()).contains("redacted"));
    }

    #[test]
    fn subkeys_depend_on_purpose_and_master_key() {
        let k = key();
        assert_eq!(k.subkey(b"a"), k.subkey(b"a"));
        assert_ne!(k.subkey(b"a"), k.subkey(b"b"));
        let other = MasterKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert_ne!(k.subkey(b"a"), other.subkey(b"a"));
    }

    #[test]
    fn sha256_and_ct_eq() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn gateway_keys_look_right() {
        let (id, k) = new_gateway_key().unwrap();
        assert!(id.starts_with("key_") && id.len() == 20);
        assert!(k.expose().starts_with("mgk_") && k.expose().len() == 47);
    }
}
