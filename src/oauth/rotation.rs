//! Master-key rotation for a credential's token state: which key each
//! sealed value is under, and re-sealing it under the current key. Pure;
//! the credential's Durable Object loads and saves the state.

use super::records::Sealer;
use super::state::CredentialState;
use crate::crypto::CryptoError;
use crate::tenant::reseal::SealCount;

/// `(field name, envelope)` of every sealed value in the state; the names
/// are the ones [`Sealer`] binds them to.
fn fields(st: &mut CredentialState) -> Vec<(&'static str, &mut String)> {
    let mut out: Vec<(&'static str, &mut String)> = Vec::new();
    if let Some(e) = st.refresh_token.as_mut() {
        out.push(("refresh_token", e));
    }
    if let Some(e) = st.access_token.as_mut() {
        out.push(("access_token", e));
    }
    if let Some(e) = st.client.as_mut().and_then(|c| c.client_secret.as_mut()) {
        out.push(("client_secret", e));
    }
    if let Some(e) = st.registration.as_mut().and_then(|r| r.client.client_secret.as_mut()) {
        out.push(("client_secret", e));
    }
    if let Some(p) = st.pending.as_mut() {
        out.push(("code_verifier", &mut p.code_verifier));
        if let Some(e) = p.client.client_secret.as_mut() {
            out.push(("client_secret", e));
        }
    }
    out
}

/// How many sealed values of the state are under which key.
#[must_use]
pub fn count_state(st: &CredentialState, s: &Sealer<'_>) -> SealCount {
    let mut copy = st.clone();
    let envelopes: Vec<String> = fields(&mut copy).into_iter().map(|(_, e)| e.clone()).collect();
    SealCount::of(s.key, envelopes.iter().map(String::as_str))
}

/// Re-seals every value of the state under the current key; `true` if
/// anything changed. All or nothing: on error the state is left as it was.
///
/// # Errors
/// [`CryptoError::Open`] if a value opens under no key of the ring; [`CryptoError::Rng`].
pub fn reseal_state(st: &mut CredentialState, s: &Sealer<'_>) -> Result<bool, CryptoError> {
    let mut next = st.clone();
    let mut changed = false;
    for (name, env) in fields(&mut next) {
        if let Some(fresh) = s.reseal(name, env)? {
            *env = fresh;
            changed = true;
        }
    }
    if changed {
        *st = next;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKey, Secret};
    use crate::oauth::state::{PendingConnect, Registration, StoredClient};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    #[test]
    fn every_sealed_value_moves_to_the_current_key() {
        let old = key(1);
        let s = Sealer { key: &old, tenant: "t", server: "crm", credential_id: "c1" };
        let client = |secret: &str| StoredClient {
            token_url: "https://as/t".into(),
            client_id: "id".into(),
            client_secret: Some(s.seal("client_secret", &Secret::new(secret)).unwrap()),
            client_auth: "client_secret_basic".into(),
        };
        let mut st = CredentialState {
            v: 1,
            refresh_token: Some(s.seal("refresh_token", &Secret::new("rt")).unwrap()),
            access_token: Some(s.seal("access_token", &Secret::new("at")).unwrap()),
            client: Some(client("cs1")),
            registration: Some(Registration { issuer: "i".into(), redirect_uri: "r".into(), client: client("cs2") }),
            pending: Some(PendingConnect {
                tenant: "t".into(),
                server: "crm".into(),
                credential_id: "c1".into(),
                state_sha256: "x".into(),
                code_verifier: s.seal("code_verifier", &Secret::new("ver")).unwrap(),
                redirect_uri: "r".into(),
                client: client("cs3"),
                scope: None,
                resource: None,
                issuer: None,
                iss_required: false,
                expires_at_ms: 1,
            }),
            ..CredentialState::default()
        };
        let rotating = key(2).with_previous(&STANDARD.encode([1u8; 32])).unwrap();
        let s2 = Sealer { key: &rotating, tenant: "t", server: "crm", credential_id: "c1" };
        assert_eq!(count_state(&st, &s2).previous, 6);
        assert!(reseal_state(&mut st, &s2).unwrap());
        assert_eq!(count_state(&st, &s2), SealCount { current: 6, ..SealCount::default() });
        assert!(!reseal_state(&mut st, &s2).unwrap());

        let done = key(2);
        let s3 = Sealer { key: &done, tenant: "t", server: "crm", credential_id: "c1" };
        assert_eq!(s3.open("refresh_token", st.refresh_token.as_deref().unwrap()).unwrap().expose(), "rt");
        assert_eq!(st.pending.as_ref().unwrap().client.open(&s3).unwrap().secret.unwrap().expose(), "cs3");
        assert_eq!(s3.open("code_verifier", &st.pending.as_ref().unwrap().code_verifier).unwrap().expose(), "ver");

        // A state bound to another credential is refused and left alone.
        let mut other = st.clone();
        other.refresh_token =
            Some(Sealer { credential_id: "c9", ..s }.seal("refresh_token", &Secret::new("x")).unwrap());
        let before = serde_json::to_string(&other).unwrap();
        assert!(reseal_state(&mut other, &s2).is_err());
        assert_eq!(serde_json::to_string(&other).unwrap(), before);
    }
}
