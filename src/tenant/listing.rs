//! `GET /admin/tenants`: the query it takes and the page it answers. Pure;
//! the shell lists the `tenant:` prefix of KV and hands the keys here.

use serde_json::{json, Value};

use crate::http::error::GatewayError;
use crate::tenant::storage;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 50;
/// KV lists at most 1000 keys per call.
pub const MAX_LIMIT: u32 = 1000;
/// KV cursors are short opaque tokens; anything longer is not one of them.
const MAX_CURSOR_LEN: usize = 1024;

/// A validated list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub cursor: Option<String>,
}

/// Parses `limit` (1–1000, default 50) and `cursor` (opaque, from a previous page).
///
/// # Errors
/// 400 naming the parameter; the submitted value is never echoed.
pub fn parse_query(limit: Option<&str>, cursor: Option<&str>) -> Result<ListQuery, GatewayError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            GatewayError::bad_param("limit", format!("'limit' must be an integer from 1 to {MAX_LIMIT}."))
        })?,
    };
    let cursor = match cursor {
        None | Some("") => None,
        Some(c) if c.len() <= MAX_CURSOR_LEN && c.bytes().all(|b| b.is_ascii_graphic()) => Some(c.to_string()),
        Some(_) => return Err(bad_cursor()),
    };
    Ok(ListQuery { limit, cursor })
}

/// The answer when KV rejects a cursor (one it never issued).
#[must_use]
pub fn bad_cursor() -> GatewayError {
    GatewayError::bad_param("cursor", "'cursor' is not a cursor from a previous page of this list.")
}

/// The page: tenant ids in key order and the cursor of the next page
/// (`null` on the last one). Keys outside the `tenant:` prefix are skipped.
#[must_use]
pub fn page_view(keys: &[String], next_cursor: Option<String>, complete: bool) -> Value {
    let tenants: Vec<Value> =
        keys.iter().filter_map(|k| storage::tenant_id_of_key(k)).map(|id| json!({ "tenant_id": id })).collect();
    let cursor = if complete { None } else { next_cursor.filter(|c| !c.is_empty()) };
    json!({ "tenants": tenants, "cursor": cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(limit: Option<&str>, cursor: Option<&str>) -> u16 {
        parse_query(limit, cursor).map_or_else(|e| e.wire().status, |_| 200)
    }

    #[test]
    fn limits_and_cursors() {
        assert_eq!(parse_query(None, None).unwrap(), ListQuery { limit: 50, cursor: None });
        assert_eq!(parse_query(Some("1000"), Some("abc=")).unwrap().cursor.as_deref(), Some("abc="));
        assert_eq!(parse_query(Some("1"), Some("")).unwrap(), ListQuery { limit: 1, cursor: None });
        for bad in ["0", "1001", "-1", "ten", "", " 5", "99999999999"] {
            assert_eq!(status(Some(bad), None), 400, "{bad:?}");
        }
        assert_eq!(status(None, Some("a b")), 400);
        assert_eq!(status(None, Some(&"c".repeat(1025))), 400);
        let e = parse_query(Some("<script>"), None).unwrap_err();
        assert!(!e.message().contains("<script>"), "never echoes the value");
    }

    #[test]
    fn page_lists_tenant_ids_and_next_cursor() {
        let keys = vec![storage::tenant_key("acme"), storage::tenant_key("globex"), "gk:ab".to_string()];
        let v = page_view(&keys, Some("next".into()), false);
        assert_eq!(v, json!({"tenants": [{"tenant_id": "acme"}, {"tenant_id": "globex"}], "cursor": "next"}));
        assert_eq!(page_view(&keys, Some("next".into()), true)["cursor"], Value::Null);
        assert_eq!(page_view(&[], Some(String::new()), false)["cursor"], Value::Null);
    }
}
