//! Unit tests of the key ring, envelopes and hashing.

use super::*;
use base64::engine::general_purpose::STANDARD;

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
    assert!(a.starts_with(&format!("v2:{}:", k.key_id())) && !a.contains("sk-live"));
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
    let head = format!("v2:{}:", k.key_id());
    let mut raw = STANDARD.decode(&env[head.len()..]).unwrap();
    for i in 0..raw.len() {
        raw[i] ^= 1;
        let bad = format!("{head}{}", STANDARD.encode(&raw));
        assert!(k.open(&aad, &bad).is_err(), "flip at {i}");
        raw[i] ^= 1;
    }
    assert!(k.open(&aad, "v2:abc").is_err());
    assert!(k.open(&aad, "v1:!!").is_err());
    assert!(k.open(&aad, "v1:").is_err());
    assert!(k.open(&aad, "v2:").is_err());
    assert!(k.open(&aad, &head).is_err());
    // Another key id in front of a good body does not open.
    assert!(k.open(&aad, &env.replacen(k.key_id(), "00000000", 1)).is_err());
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

/// Envelopes written before key ids existed: `v1:` + base64(nonce ‖ ct ‖ tag),
/// made with AES-256-GCM outside this crate (Node's `crypto`), key `[7; 32]`
/// (the first) and `[8; 32]` (the second), nonce `[1; 12]`.
const LEGACY_UNDER_7: &str = "v1:AQEBAQEBAQEBAQEBBYqk2PzbwWi+prFABLv/nIj+9JruSkNEb98Z+sc=";
const LEGACY_UNDER_8: &str = "v1:AQEBAQEBAQEBAQEBqncjx7PDOCv9kMG2iw5ZbOctoC895Qjpm1YD";

fn ring(current: u8, previous: Option<u8>) -> MasterKey {
    let k = MasterKey::from_base64(&STANDARD.encode([current; 32])).unwrap();
    match previous {
        Some(p) => k.with_previous(&STANDARD.encode([p; 32])).unwrap(),
        None => k,
    }
}

#[test]
fn key_id_is_a_published_fingerprint() {
    // HKDF-SHA256(salt "mcpgate/subkey/v1", ikm [7; 32], info "mcpgate/key-id/v1"), first 4 bytes (Node's hkdfSync).
    assert_eq!(key().key_id(), "9d05366a");
    assert_ne!(ring(8, None).key_id(), key().key_id());
    assert_eq!(ring(8, Some(7)).previous_key_id(), Some("9d05366a"));
    assert_eq!(ring(7, Some(7)).previous_key_id(), None, "a previous key equal to the current one is ignored");
    assert!(MasterKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap().with_previous("short").is_err());
}

#[test]
fn legacy_envelopes_open_under_either_key() {
    let aad = Aad::new("acme", "providers.openai.api_key");
    assert_eq!(key().open(&aad, LEGACY_UNDER_7).unwrap().expose(), "sk-old-format");
    assert_eq!(ring(8, Some(7)).open(&aad, LEGACY_UNDER_7).unwrap().expose(), "sk-old-format");
    assert_eq!(ring(7, Some(8)).open(&aad, LEGACY_UNDER_8).unwrap().expose(), "sk-old-prev");
    assert!(ring(8, None).open(&aad, LEGACY_UNDER_7).is_err());
    assert!(key().open(&Aad::new("evil", "providers.openai.api_key"), LEGACY_UNDER_7).is_err());
    assert_eq!(key().sealing(LEGACY_UNDER_7), Sealing::Legacy);
}

#[test]
fn rotation_reads_both_and_writes_current() {
    let aad = Aad::new("acme", "f");
    let old = ring(7, None);
    let sealed_old = old.seal(&aad, &Secret::new("v")).unwrap();
    let rotating = ring(8, Some(7));
    assert_eq!(rotating.sealing(&sealed_old), Sealing::Previous);
    assert_eq!(rotating.open(&aad, &sealed_old).unwrap().expose(), "v");
    let sealed_new = rotating.seal(&aad, &Secret::new("v")).unwrap();
    assert!(sealed_new.starts_with(&format!("v2:{}:", rotating.key_id())));
    assert_eq!(rotating.sealing(&sealed_new), Sealing::Current);
    assert!(old.open(&aad, &sealed_new).is_err(), "the old key cannot read what the new one sealed");
    // Re-sealing moves old and legacy envelopes to the current key and leaves current ones alone.
    let moved = rotating.reseal(&aad, &sealed_old).unwrap().unwrap();
    assert_eq!(rotating.sealing(&moved), Sealing::Current);
    assert_eq!(rotating.reseal(&aad, &moved).unwrap(), None);
    let lg = Aad::new("acme", "providers.openai.api_key");
    let from_legacy = rotating.reseal(&lg, LEGACY_UNDER_7).unwrap().unwrap();
    // After the previous key is dropped, everything re-sealed still opens.
    let done = ring(8, None);
    assert_eq!(done.open(&aad, &moved).unwrap().expose(), "v");
    assert_eq!(done.open(&lg, &from_legacy).unwrap().expose(), "sk-old-format");
    assert_eq!(done.sealing(&sealed_old), Sealing::Unknown);
    assert!(done.open(&aad, &sealed_old).is_err());
    assert!(rotating.reseal(&Aad::new("evil", "f"), &sealed_old).is_err(), "re-sealing checks the binding");
    // Subkeys: the current first, then the previous.
    assert_eq!(rotating.subkeys(b"x"), vec![rotating.subkey(b"x"), old.subkey(b"x")]);
    assert_eq!(done.subkeys(b"x").len(), 1);
}
