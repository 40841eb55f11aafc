//! The admin view of one OAuth credential: connected or not, token expiry,
//! last refresh, last error. Never a token, secret or envelope.

#![forbid(unsafe_code)]

use serde_json::{json, Value};

use super::state::CredentialState;
use super::token::is_fresh;
use crate::oauth::config::{Grant, OAuthConfig};

/// RFC 3339 UTC with milliseconds for a Unix time in milliseconds.
#[must_use]
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60, ms % 1000)
}

fn time(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |m| Value::from(iso8601(m)))
}

/// Whether the credential can produce tokens without a new connect flow.
#[must_use]
pub fn is_connected(cfg: &OAuthConfig, st: &CredentialState, now_ms: u64) -> bool {
    let rejected = st.last_error.as_ref().is_some_and(|e| e.kind == "reconnect_required");
    match &cfg.grant {
        Grant::ClientCredentials => !rejected,
        Grant::RefreshToken(_) | Grant::AuthorizationCode => {
            let has_refresh =
                st.refresh_token.is_some() || (matches!(cfg.grant, Grant::RefreshToken(_)) && !st.seed_consumed);
            let has_access = st.access_token.is_some() && is_fresh(now_ms, st.expires_at_ms, st.lifetime_ms);
            has_refresh || has_access
        }
    }
}

/// `GET /admin/tenants/{id}/mcp_servers/{name}/oauth`.
#[must_use]
pub fn status_view(tenant: &str, server: &str, cfg: &OAuthConfig, st: &CredentialState, now_ms: u64) -> Value {
    let connected = is_connected(cfg, st, now_ms);
    let status = if connected {
        "connected"
    } else if st.last_error.as_ref().is_some_and(|e| e.kind == "reconnect_required") {
        "reconnect_required"
    } else if st.pending.as_ref().is_some_and(|p| p.expires_at_ms > now_ms) {
        "authorization_pending"
    } else {
        "not_connected"
    };
    let expires = st.access_token.as_ref().map(|_| st.expires_at_ms);
    json!({
        "tenant_id": tenant,
        "server": server,
        "grant": cfg.grant.as_str(),
        "connected": connected,
        "status": status,
        "access_token_expires_at": time(expires),
        "access_token_valid": st.access_token.is_some() && is_fresh(now_ms, st.expires_at_ms, st.lifetime_ms),
        "connected_at": time(st.connected_at_ms),
        "last_refresh_at": time(st.last_refresh_at_ms),
        "token_requests": st.token_requests,
        "authorization_server": st.issuer,
        "client_id": st.client.as_ref().map(|c| c.client_id.clone()).or_else(|| cfg.client_id.clone()),
        "last_error": st.last_error.as_ref().map(|e| json!({"at": iso8601(e.at_ms), "kind": e.kind, "message": e.message})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::config::parse_oauth2;
    use crate::oauth::state::LastError;
    use crate::tenant::input::ParseOptions;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_661_296_789), "2026-11-26T02:48:16.789Z");
    }

    #[test]
    fn view_says_connected_and_never_shows_secrets() {
        let cfg = parse_oauth2(r#"{"type":"oauth2"}"#, "p", ParseOptions::default()).unwrap();
        let mut st = CredentialState::default();
        let v = status_view("acme", "docs", &cfg, &st, 0);
        assert_eq!(v["status"], "not_connected");
        assert_eq!(v["connected"], false);
        st.refresh_token = Some("v1:SEALED".into());
        st.access_token = Some("v1:SEALED".into());
        st.expires_at_ms = 10_000;
        st.lifetime_ms = 10_000;
        st.last_refresh_at_ms = Some(0);
        let v = status_view("acme", "docs", &cfg, &st, 1_000);
        assert_eq!(v["status"], "connected");
        assert_eq!(v["access_token_valid"], true);
        assert_eq!(v["access_token_expires_at"], "1970-01-01T00:00:10.000Z");
        assert!(!v.to_string().contains("SEALED"));
        st.refresh_token = None;
        st.access_token = None;
        st.last_error = Some(LastError { at_ms: 5, kind: "reconnect_required".into(), message: "m".into() });
        let v = status_view("acme", "docs", &cfg, &st, 1_000);
        assert_eq!(v["status"], "reconnect_required");
        assert_eq!(v["last_error"]["kind"], "reconnect_required");
    }
}
