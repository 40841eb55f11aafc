//! Envelope encryption of tenant secrets at rest (the [`MasterKey`] ring),
//! gateway-key hashing and constant-time comparison.
//!
//! Every sealed value is bound by associated data to the tenant id and the
//! field path, so a ciphertext copied to another tenant or field fails to
//! open. The envelope format (with its key id) is described in [`keyring`].
//! Primitives are RustCrypto's audited `aes-gcm`, `sha2` and `hkdf`.

mod keyring;
mod secret;
pub use keyring::{MasterKey, Sealing, KEY_ID_INFO};
pub use secret::{Secret, REDACTED};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a crypto operation failed. Carries no key or plaintext material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// `MASTER_KEY` is missing, not base64, or not 32 bytes.
    BadMasterKey,
    /// The platform RNG failed.
    Rng,
    /// Not an envelope, wrong version, tampered, bound to another
    /// tenant/field, or sealed under a key the ring does not hold.
    Open,
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
    hex(&Sha256::digest(data))
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
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
mod tests;
