//! Master-key rotation for tenant records: which key each stored secret is
//! sealed under, and the same record with every secret sealed under the
//! current key. Pure; the shell reads and writes the records.
//!
//! Re-sealing opens the record in memory and seals it again: the plaintext
//! never leaves this function's callees, and every field path and binding is
//! the one [`seal_tenant`] writes, so the result reads exactly like a record
//! the admin API wrote under the current key.

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, MasterKey, Sealing};
use crate::tenant::storage::{open_tenant, seal_tenant, Opening, StoredAuth, StoredTenant};

/// How many envelopes are sealed under which key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealCount {
    /// Under the current key (`v2:{current id}:`).
    pub current: u64,
    /// Under the previous key (`v2:{previous id}:`).
    pub previous: u64,
    /// Written before envelopes carried a key id (`v1:`); either key may open them.
    pub legacy: u64,
    /// Under a key the ring does not hold, or not an envelope.
    pub unknown: u64,
}

impl SealCount {
    pub fn add(&mut self, s: Sealing) {
        match s {
            Sealing::Current => self.current += 1,
            Sealing::Previous => self.previous += 1,
            Sealing::Legacy => self.legacy += 1,
            Sealing::Unknown => self.unknown += 1,
        }
    }

    pub fn merge(&mut self, o: &Self) {
        self.current += o.current;
        self.previous += o.previous;
        self.legacy += o.legacy;
        self.unknown += o.unknown;
    }

    /// Envelopes that still need the previous key (or may): they must be 0
    /// before `MASTER_KEY_PREVIOUS` is removed.
    #[must_use]
    pub const fn not_current(&self) -> u64 {
        self.previous + self.legacy + self.unknown
    }

    /// Counts `envelopes`.
    #[must_use]
    pub fn of<'a>(key: &MasterKey, envelopes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut c = Self::default();
        for e in envelopes {
            c.add(key.sealing(e));
        }
        c
    }
}

/// Every envelope in a stored tenant.
#[must_use]
pub fn envelopes(stored: &StoredTenant) -> Vec<&str> {
    let mut out: Vec<&str> = stored.openai_key.iter().chain(stored.anthropic_key.iter()).map(String::as_str).collect();
    for s in stored.mcp_servers.values() {
        match &s.auth {
            StoredAuth::None => {}
            StoredAuth::Bearer { token } => out.push(token),
            StoredAuth::Headers { headers } => out.extend(headers.iter().map(|(_, v)| v.as_str())),
            StoredAuth::OAuth2(o) => {
                out.extend(o.client_secret.iter().chain(o.refresh_token.iter()).map(String::as_str))
            }
        }
    }
    out
}

/// The tenant with every secret sealed under the current key, or `None` if
/// every envelope already is.
///
/// # Errors
/// [`CryptoError::Open`] if an envelope opens under no key of the ring (the
/// record is then left as it is); [`CryptoError::Rng`].
pub fn reseal_tenant(
    key: &MasterKey,
    tenant_id: &str,
    stored: &StoredTenant,
) -> Result<Option<StoredTenant>, CryptoError> {
    if SealCount::of(key, envelopes(stored)).not_current() == 0 {
        return Ok(None);
    }
    let plain = open_tenant(key, tenant_id, stored, Opening::Everything)?;
    seal_tenant(key, tenant_id, &plain).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::input::{parse_tenant, ParseOptions};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    fn ring(current: u8, previous: Option<u8>) -> MasterKey {
        let k = MasterKey::from_base64(&STANDARD.encode([current; 32])).unwrap();
        previous.map_or(k, |p| {
            MasterKey::from_base64(&STANDARD.encode([current; 32]))
                .unwrap()
                .with_previous(&STANDARD.encode([p; 32]))
                .unwrap()
        })
    }

    const BODY: &str = r#"{"providers":{"openai":{"api_key":"sk-o"},"anthropic":{"api_key":"sk-a"}},
        "mcp_servers":{"crm":{"url":"https://crm.example/mcp","auth":{"type":"bearer","token":"tok"},"allowed_tools":["a"],"require_approval":"always"},
        "files":{"url":"https://files.example/mcp","mode":"relay","auth":{"type":"headers","headers":{"X-Api-Key":"hdr","X-B":"hdr2"}}},
        "svc":{"url":"https://svc.example/mcp","auth":{"type":"oauth2","grant":"refresh_token","token_url":"https://as.example/t",
               "client_id":"cid","client_secret":"cs","refresh_token":"rt","scope":"s","resource":"https://svc.example/mcp"}}},
        "allow_unmanaged_mcp_servers":true,"rate_limit":{"requests_per_minute":7}}"#;

    #[test]
    fn reseal_moves_every_envelope_and_keeps_everything_else() {
        let old = ring(1, None);
        let mut t = parse_tenant(BODY.as_bytes(), ParseOptions::default()).unwrap();
        if let crate::tenant::McpAuth::OAuth2(c) = &mut t.mcp.servers.get_mut("svc").unwrap().auth {
            c.credential_id = "cred-1".into();
        }
        let stored = seal_tenant(&old, "acme", &t).unwrap();
        assert_eq!(SealCount::of(&old, envelopes(&stored)), SealCount { current: 7, ..SealCount::default() });

        let rotating = ring(2, Some(1));
        assert_eq!(SealCount::of(&rotating, envelopes(&stored)).previous, 7);
        let new = reseal_tenant(&rotating, "acme", &stored).unwrap().unwrap();
        assert_eq!(SealCount::of(&rotating, envelopes(&new)), SealCount { current: 7, ..SealCount::default() });
        assert!(reseal_tenant(&rotating, "acme", &new).unwrap().is_none(), "nothing left to do");

        // Everything but the envelopes is unchanged.
        let strip = |s: &StoredTenant| {
            let mut v = serde_json::to_value(s).unwrap().to_string();
            for e in envelopes(s) {
                v = v.replace(e, "ENV");
            }
            v
        };
        assert_eq!(strip(&stored), strip(&new));
        assert!(strip(&new).contains("cred-1"));

        // It reads with the new key alone.
        let done = ring(2, None);
        let back = open_tenant(&done, "acme", &new, Opening::Everything).unwrap();
        assert_eq!(back.openai_key.unwrap().expose(), "sk-o");
        assert!(
            matches!(&back.mcp.servers["files"].auth, crate::tenant::McpAuth::Headers(h) if h[1].1.expose() == "hdr2")
        );
        assert!(open_tenant(&done, "acme", &stored, Opening::Everything).is_err());
        assert_eq!(SealCount::of(&done, envelopes(&stored)).unknown, 7);
        assert!(reseal_tenant(&done, "acme", &stored).is_err(), "a record no key opens is refused, not rewritten");
    }
}
