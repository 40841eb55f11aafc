//! `MasterKey`: the key ring that seals and opens tenant secrets.
//!
//! It holds the current key (`MASTER_KEY`) and, during a rotation, the
//! previous one (`MASTER_KEY_PREVIOUS`). Sealing always uses the current key;
//! opening picks the key an envelope names.
//!
//! Envelope formats (both AES-256-GCM, a fresh random 96-bit nonce per value,
//! associated data from [`Aad`]):
//!
//! - `v2:{key_id}:` + base64(nonce ‖ ciphertext ‖ tag), written today.
//!   `key_id` is 8 lowercase hex chars: the first 4 bytes of an HKDF-SHA256
//!   expansion of the key under a fixed, public label ([`KEY_ID_INFO`]). It
//!   names a key without revealing anything usable about it; a reader opens
//!   with the ring's key of that id and fails if it holds none.
//! - `v1:` + base64(nonce ‖ ciphertext ‖ tag): written before key ids
//!   existed. It names no key, so the current key is tried, then the previous.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

use super::{Aad, CryptoError, Secret};

const ENVELOPE_V1: &str = "v1:";
const ENVELOPE_V2: &str = "v2:";
/// HKDF salt for subkeys of a master key (a fixed, public domain separator).
const SUBKEY_SALT: &[u8] = b"mcpgate/subkey/v1";
/// HKDF `info` of the key id (a public fingerprint, never a key).
pub const KEY_ID_INFO: &[u8] = b"mcpgate/key-id/v1";
const KEY_ID_HEX: usize = 8;
const NONCE_LEN: usize = 12;
/// Most envelopes [`MasterKey::open`] remembers (the cache is emptied when full).
const OPEN_CACHE_MAX: usize = 1024;

/// One 32-byte master key: its cipher, subkey extractor and id.
struct RingKey {
    cipher: Aes256Gcm,
    hkdf: Hkdf<Sha256>,
    id: String,
}

impl RingKey {
    fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadMasterKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let hkdf = Hkdf::<Sha256>::new(Some(SUBKEY_SALT), &bytes);
        let mut fp = [0u8; KEY_ID_HEX / 2];
        // 4 bytes is far below HKDF-SHA256's output limit: expand cannot fail.
        let _ = hkdf.expand(KEY_ID_INFO, &mut fp);
        Ok(Self { cipher, hkdf, id: super::hex(&fp) })
    }

    fn subkey(&self, info: &[u8]) -> [u8; 32] {
        let mut okm = [0u8; 32];
        let _ = self.hkdf.expand(info, &mut okm);
        okm
    }

    fn decrypt(&self, aad: &Aad, raw: &[u8]) -> Result<Secret, CryptoError> {
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

/// Which key an envelope is sealed under, read from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// `v2:` under the current key: nothing to do.
    Current,
    /// `v2:` under the previous key: re-seal before dropping it.
    Previous,
    /// `v1:` (no key id): written before key ids; re-seal to learn nothing more.
    Legacy,
    /// Not an envelope, or `v2:` under a key this ring does not hold.
    Unknown,
}

/// The key ring derived from `MASTER_KEY` (and `MASTER_KEY_PREVIOUS`). Not printable.
///
/// It remembers what it opened, keyed by (associated data, envelope): an
/// envelope carries a random nonce, so it names exactly one sealed value and
/// a cache hit can never return a value for another tenant or field. The
/// shell keeps one `MasterKey` per isolate, so the hot path decrypts each
/// stored secret once rather than on every request.
pub struct MasterKey {
    current: RingKey,
    previous: Option<RingKey>,
    opened: std::cell::RefCell<std::collections::HashMap<(String, String), Secret>>,
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
        Ok(Self { current: RingKey::from_base64(text)?, previous: None, opened: std::cell::RefCell::default() })
    }

    /// Adds the previous key (`MASTER_KEY_PREVIOUS`), accepted for opening only.
    /// A previous key equal to the current one is ignored.
    ///
    /// # Errors
    /// [`CryptoError::BadMasterKey`] if it is not base64 of 32 bytes.
    pub fn with_previous(mut self, text: &str) -> Result<Self, CryptoError> {
        let prev = RingKey::from_base64(text)?;
        self.previous = (prev.id != self.current.id).then_some(prev);
        Ok(self)
    }

    /// The id of the key new envelopes are sealed under.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// The id of the previous key, if the ring holds one.
    #[must_use]
    pub fn previous_key_id(&self) -> Option<&str> {
        self.previous.as_ref().map(|k| k.id.as_str())
    }

    /// A 256-bit subkey of the current key for one purpose (HKDF-SHA256,
    /// RFC 5869; `info` names the purpose). Different `info`, or another
    /// master key, gives an unrelated key.
    #[must_use]
    pub fn subkey(&self, info: &[u8]) -> [u8; 32] {
        self.current.subkey(info)
    }

    /// The subkeys for `info` of every key in the ring, current first: what a
    /// verifier accepts while a rotation is under way.
    #[must_use]
    pub fn subkeys(&self, info: &[u8]) -> Vec<[u8; 32]> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).map(|k| k.subkey(info)).collect()
    }

    /// Seals under the current key with a fresh random nonce.
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
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.expose().as_bytes(), aad: aad.0.as_bytes() })
            .map_err(|_| CryptoError::Open)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        Ok(format!("{ENVELOPE_V2}{}:{}", self.current.id, STANDARD.encode(raw)))
    }

    /// Which key of this ring `envelope` is sealed under (header only, no decryption).
    #[must_use]
    pub fn sealing(&self, envelope: &str) -> Sealing {
        if envelope.starts_with(ENVELOPE_V1) {
            return Sealing::Legacy;
        }
        match envelope.strip_prefix(ENVELOPE_V2).and_then(|r| r.split_once(':')) {
            Some((id, _)) if id == self.current.id => Sealing::Current,
            Some((id, _)) if self.previous.as_ref().is_some_and(|p| p.id == id) => Sealing::Previous,
            _ => Sealing::Unknown,
        }
    }

    /// Opens an envelope sealed for exactly this `aad`, under either key.
    ///
    /// # Errors
    /// [`CryptoError::Open`] on any mismatch, tampering or unknown key id.
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
        if let Some(b64) = envelope.strip_prefix(ENVELOPE_V1) {
            let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Open)?;
            return self.current.decrypt(aad, &raw).or_else(|e| match &self.previous {
                Some(p) => p.decrypt(aad, &raw),
                None => Err(e),
            });
        }
        let rest = envelope.strip_prefix(ENVELOPE_V2).ok_or(CryptoError::Open)?;
        let (id, b64) = rest.split_once(':').ok_or(CryptoError::Open)?;
        let key = if id == self.current.id {
            &self.current
        } else {
            self.previous.as_ref().filter(|p| p.id == id).ok_or(CryptoError::Open)?
        };
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Open)?;
        key.decrypt(aad, &raw)
    }

    /// `envelope` sealed under the current key: `None` if it already is,
    /// else the same plaintext in a fresh envelope. The plaintext never
    /// leaves this function.
    ///
    /// # Errors
    /// [`CryptoError::Open`] if it does not open; [`CryptoError::Rng`].
    pub fn reseal(&self, aad: &Aad, envelope: &str) -> Result<Option<String>, CryptoError> {
        if self.sealing(envelope) == Sealing::Current {
            return Ok(None);
        }
        let plain = self.open_uncached(aad, envelope)?;
        self.seal(aad, &plain).map(Some)
    }
}
