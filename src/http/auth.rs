//! Reading credentials off a request: the tenant's gateway key and the admin token.
//! Never logs or echoes what it reads.

use crate::crypto::Secret;
use crate::crypto::{ct_eq, sha256};
use crate::http::error::GatewayError;
use crate::http::headers::get;

fn unauthenticated(message: &str) -> GatewayError {
    GatewayError::Unauthenticated { message: message.to_string() }
}

/// The token of an `Authorization: Bearer <token>` value; scheme case-insensitive, whitespace trimmed.
#[must_use]
pub fn bearer(value: &str) -> Option<&str> {
    let v = value.trim();
    let (scheme, rest) = v.split_once(char::is_whitespace)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
}

/// The gateway key from `Authorization: Bearer` or `x-api-key` (the SDKs
/// use either; the Anthropic SDK may send both).
///
/// # Errors
/// 401 when absent, empty, or when the two headers carry different keys.
pub fn gateway_key(headers: &[(String, String)]) -> Result<Secret, GatewayError> {
    gateway_key_or(headers, None)
}

/// Like [`gateway_key`], also reading the provider's own key header
/// (`api-key` on Azure routes, `x-goog-api-key` on Gemini routes), which its
/// SDK sends the key in. Every header that is present must carry the same key.
///
/// # Errors
/// 401 when absent, empty, or when two headers carry different keys.
pub fn gateway_key_or(headers: &[(String, String)], own: Option<&str>) -> Result<Secret, GatewayError> {
    let from_own = own.and_then(|h| get(headers, h)).map(str::trim).filter(|k| !k.is_empty());
    let key = match gateway_key_std(headers) {
        Ok(k) => k,
        Err(e) => return from_own.map(Secret::new).ok_or(e),
    };
    match from_own {
        Some(o) if o != key.expose() => Err(unauthenticated("The request carries two different gateway keys.")),
        _ => Ok(key),
    }
}

fn gateway_key_std(headers: &[(String, String)]) -> Result<Secret, GatewayError> {
    let from_auth = get(headers, "authorization").map(bearer);
    let from_x = get(headers, "x-api-key").map(str::trim).filter(|k| !k.is_empty());
    match (from_auth, from_x) {
        (Some(Some(a)), Some(x)) if a != x => Err(unauthenticated("The request carries two different gateway keys.")),
        (Some(Some(a)), _) => Ok(Secret::new(a)),
        (_, Some(x)) => Ok(Secret::new(x)),
        (Some(None), None) => Err(unauthenticated("The Authorization header must be 'Bearer <gateway key>'.")),
        (None, None) => {
            Err(unauthenticated("Missing gateway key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."))
        }
    }
}

/// The message for a key that is well-formed but unknown or revoked.
#[must_use]
pub fn unknown_key() -> GatewayError {
    unauthenticated("Invalid gateway key.")
}

/// Checks `Authorization: Bearer <ADMIN_TOKEN>` in constant time: the
/// SHA-256 digests of the presented and the configured token are compared,
/// so the time taken depends on neither token's length nor content.
///
/// # Errors
/// 401 on a missing or wrong token.
pub fn check_admin(headers: &[(String, String)], admin_token: &Secret) -> Result<(), GatewayError> {
    let presented = get(headers, "authorization").and_then(bearer).unwrap_or("");
    let same = ct_eq(&sha256(presented.as_bytes()), &sha256(admin_token.expose().as_bytes()));
    if !presented.is_empty() && same {
        Ok(())
    } else {
        Err(unauthenticated("Missing or invalid admin token."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_string(), (*b).to_string())).collect()
    }

    #[test]
    fn key_from_either_header() {
        assert_eq!(gateway_key(&h(&[("authorization", "Bearer k1")])).unwrap().expose(), "k1");
        assert_eq!(gateway_key(&h(&[("authorization", "  bearer   k1  ")])).unwrap().expose(), "k1");
        assert_eq!(gateway_key(&h(&[("x-api-key", "k2")])).unwrap().expose(), "k2");
        assert_eq!(gateway_key(&h(&[("authorization", "Bearer k"), ("x-api-key", "k")])).unwrap().expose(), "k");
    }

    #[test]
    fn provider_own_header() {
        let own = Some("x-goog-api-key");
        assert_eq!(gateway_key_or(&h(&[("x-goog-api-key", "k")]), own).unwrap().expose(), "k");
        assert_eq!(gateway_key_or(&h(&[("x-goog-api-key", "k"), ("x-api-key", "k")]), own).unwrap().expose(), "k");
        assert_eq!(
            gateway_key_or(&h(&[("x-goog-api-key", "k"), ("x-api-key", "j")]), own).unwrap_err().wire().status,
            401
        );
        assert_eq!(
            gateway_key_or(&h(&[("authorization", "Bearer j"), ("api-key", "k")]), Some("api-key"))
                .unwrap_err()
                .wire()
                .status,
            401
        );
        // Only on the provider's own routes.
        assert_eq!(gateway_key_or(&h(&[("api-key", "k")]), None).unwrap_err().wire().status, 401);
        assert_eq!(gateway_key_or(&h(&[("api-key", "  ")]), Some("api-key")).unwrap_err().wire().status, 401);
    }

    #[test]
    fn bad_keys_are_401() {
        for hs in [
            h(&[]),
            h(&[("authorization", "Bearer")]),
            h(&[("authorization", "Basic abc")]),
            h(&[("authorization", "Bearer a"), ("x-api-key", "b")]),
            h(&[("x-api-key", "  ")]),
        ] {
            assert_eq!(gateway_key(&hs).unwrap_err().wire().status, 401, "{hs:?}");
        }
        // Another scheme in Authorization does not hide a valid x-api-key.
        assert_eq!(gateway_key(&h(&[("authorization", "Basic x"), ("x-api-key", "k")])).unwrap().expose(), "k");
    }

    #[test]
    fn admin_token() {
        let t = Secret::new("adm");
        assert!(check_admin(&h(&[("authorization", "Bearer adm")]), &t).is_ok());
        assert!(check_admin(&h(&[("authorization", "Bearer adm2")]), &t).is_err());
        assert!(check_admin(&h(&[("authorization", "Bearer ad")]), &t).is_err(), "a prefix is not the token");
        assert!(check_admin(&h(&[("authorization", "Bearer ")]), &Secret::new("")).is_err(), "empty never matches");
        assert!(check_admin(&h(&[("x-api-key", "adm")]), &t).is_err());
        assert!(check_admin(&h(&[]), &t).is_err());
    }
}
