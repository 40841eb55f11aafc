//! `GET /admin/tenants/{id}/usage?from=&to=&user=`: the query, and the
//! storage keys of the usage counters in the tenant's meter Durable Object
//! (`TENANT_METER`, docs/storage-schema.md).
//!
//! Usage is counted per tenant and, for requests acting for a user, per
//! user as well: one counter per day under `day:{date}` for the tenant and
//! `user:{user hash}:day:{date}` for each user. A tenant may have any
//! number of users: the counters are keyed by the user's hash, written by
//! the meter object (never read on the request path), and a query for one
//! user lists only that user's keys.

use super::users::UserId;
use crate::http::error::GatewayError;
use crate::stream::usage::{day_of, is_day};

/// The tenant's daily counters.
pub const TENANT_DAY_PREFIX: &str = "day:";
/// Every user counter starts so; a user's are `user:{hash}:day:{date}`.
pub const USER_PREFIX: &str = "user:";
const DAY_MS: u64 = 86_400_000;
/// The default window: the last 31 days up to today.
const DEFAULT_DAYS: u64 = 31;

/// The key prefix of the daily counters of the tenant (`None`) or one user (by hash).
#[must_use]
pub fn day_prefix(user_hash: Option<&str>) -> String {
    match user_hash {
        None => TENANT_DAY_PREFIX.to_string(),
        Some(h) => format!("{USER_PREFIX}{h}:{TENANT_DAY_PREFIX}"),
    }
}

/// The key of one day's counter of the tenant or one user.
#[must_use]
pub fn day_key(user_hash: Option<&str>, day: &str) -> String {
    format!("{}{day}", day_prefix(user_hash))
}

/// A validated usage query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// `YYYY-MM-DD` (UTC), inclusive.
    pub from: String,
    pub to: String,
    /// One user's counters instead of the tenant's.
    pub user: Option<UserId>,
}

/// Reads `from`, `to` (default: the last 31 days up to today) and `user`
/// through `param` (a query-string lookup), `now_ms` being the clock.
///
/// # Errors
/// A 400 naming the parameter: a date that is not `YYYY-MM-DD`, `from`
/// after `to`, a malformed user id (never echoed).
pub fn parse(param: &dyn Fn(&str) -> Option<String>, now_ms: u64) -> Result<UsageQuery, GatewayError> {
    let to = param("to").unwrap_or_else(|| day_of(now_ms));
    let from = param("from").unwrap_or_else(|| day_of(now_ms.saturating_sub((DEFAULT_DAYS - 1) * DAY_MS)));
    for (name, v) in [("from", &from), ("to", &to)] {
        if !is_day(v) {
            return Err(GatewayError::bad_param(name, format!("'{name}' must be a date as YYYY-MM-DD.")));
        }
    }
    if from > to {
        return Err(GatewayError::bad_param("from", "'from' must not be after 'to'."));
    }
    let user = param("user").map(|u| UserId::parse(&u, "user")).transpose()?;
    Ok(UsageQuery { from, to, user })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-26T03:00:00Z
    const NOW: u64 = 1_795_662_000_000;

    fn q(pairs: &[(&str, &str)]) -> Result<UsageQuery, GatewayError> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        parse(&move |name| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()), NOW)
    }

    #[test]
    fn defaults_and_ranges() {
        let d = q(&[]).unwrap();
        assert_eq!((d.from.as_str(), d.to.as_str(), d.user), ("2026-10-27", "2026-11-26", None));
        let r = q(&[("from", "2026-01-01"), ("to", "2026-01-31")]).unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str()), ("2026-01-01", "2026-01-31"));
        let same = q(&[("from", "2026-01-01"), ("to", "2026-01-01")]).unwrap();
        assert_eq!(same.from, same.to);
        for (pairs, param) in [
            (vec![("from", "2026-1-1")], "from"),
            (vec![("to", "yesterday")], "to"),
            (vec![("from", "2026-02-01"), ("to", "2026-01-31")], "from"),
        ] {
            let e = q(&pairs).unwrap_err();
            assert!(matches!(&e, GatewayError::BadRequest { param: Some(p), .. } if p == param), "{pairs:?}: {e:?}");
        }
    }

    #[test]
    fn one_users_usage() {
        let u = q(&[("user", "u-123")]).unwrap();
        assert_eq!(u.user.as_ref().map(UserId::as_str), Some("u-123"));
        for bad in ["", "a b", "a/b", &"x".repeat(129)] {
            let e = q(&[("user", bad)]).unwrap_err();
            assert!(
                matches!(&e, GatewayError::BadRequest { param: Some(p), message } if p == "user" && (bad.is_empty() || !message.contains(bad))),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn keys_keep_tenant_and_users_apart() {
        let alice = UserId::parse("alice", "u").unwrap().hash();
        let bob = UserId::parse("bob", "u").unwrap().hash();
        assert_eq!(day_key(None, "2026-11-26"), "day:2026-11-26");
        assert_eq!(day_key(Some(&alice), "2026-11-26"), format!("user:{alice}:day:2026-11-26"));
        // No user's key falls under the tenant's prefix or another user's.
        assert!(!day_key(Some(&alice), "2026-11-26").starts_with(&day_prefix(None)));
        assert!(!day_key(Some(&alice), "2026-11-26").starts_with(&day_prefix(Some(&bob))));
        assert!(!day_key(None, "2026-11-26").starts_with(USER_PREFIX));
        // A range query's bounds stay inside the prefix ("~" sorts after every digit).
        let (start, end) = (day_key(Some(&alice), "2026-01-01"), day_key(Some(&alice), "2026-01-31~"));
        assert!(start < day_key(Some(&alice), "2026-01-15") && day_key(Some(&alice), "2026-01-31") < end);
    }
}
