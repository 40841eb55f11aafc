//! Write-only secrets on a replace: `GET` shows every secret as
//! `"[redacted]"`, and a `PUT` that sends `"[redacted]"` back at a secret's
//! place keeps the value stored there. An edit then needs to retype only the
//! secrets it changes. No real secret is the literal `"[redacted]"`.

use crate::crypto::{Secret, REDACTED};
use crate::http::error::GatewayError;
use crate::oauth::config::Grant;
use crate::tenant::{McpAuth, Tenant};

fn is_kept(s: &Secret) -> bool {
    s.expose() == REDACTED
}

/// Whether any secret of `t` asks to keep the stored one (then the shell
/// opens the stored tenant; otherwise it need not).
#[must_use]
pub fn wants_stored(t: &Tenant) -> bool {
    let mut any = false;
    visit(t, &mut |_, s| any |= is_kept(s));
    any
}

/// Calls `f(field path, secret)` for every secret of `t`.
fn visit(t: &Tenant, f: &mut impl FnMut(String, &Secret)) {
    if let Some(k) = &t.openai_key {
        f("providers.openai.api_key".into(), k);
    }
    if let Some(k) = &t.anthropic_key {
        f("providers.anthropic.api_key".into(), k);
    }
    for (name, s) in &t.mcp.servers {
        let at = |field: &str| format!("mcp_servers.{name}.auth.{field}");
        match &s.auth {
            McpAuth::None => {}
            McpAuth::Bearer(tok) => f(at("token"), tok),
            McpAuth::Headers(h) => h.iter().for_each(|(n, v)| f(at(&format!("headers.{n}")), v)),
            McpAuth::OAuth2(c) => {
                if let Some(sec) = &c.client_secret {
                    f(at("client_secret"), sec);
                }
                if let Grant::RefreshToken(r) = &c.grant {
                    f(at("refresh_token"), r);
                }
            }
        }
    }
}

/// The stored secret at `path` in `old`, if there is one.
fn stored_at(old: &Tenant, path: &str) -> Option<Secret> {
    let mut found = None;
    visit(old, &mut |p, s| {
        if p == path {
            found = Some(s.clone());
        }
    });
    found
}

fn fill(slot: &mut Secret, path: &str, old: Option<&Tenant>) -> Result<(), GatewayError> {
    if is_kept(slot) {
        *slot = old.and_then(|o| stored_at(o, path)).ok_or_else(|| {
            GatewayError::bad_param(path, format!("{path} is \"[redacted]\" but there is no stored value to keep."))
        })?;
    }
    Ok(())
}

/// Replaces every `"[redacted]"` secret of `new` by the value stored at the
/// same field path of `old` (the tenant as stored, opened).
///
/// # Errors
/// 400 naming the field when nothing is stored there.
pub fn keep_stored(new: &mut Tenant, old: Option<&Tenant>) -> Result<(), GatewayError> {
    if let Some(k) = new.openai_key.as_mut() {
        fill(k, "providers.openai.api_key", old)?;
    }
    if let Some(k) = new.anthropic_key.as_mut() {
        fill(k, "providers.anthropic.api_key", old)?;
    }
    for (name, s) in &mut new.mcp.servers {
        let at = |field: &str| format!("mcp_servers.{name}.auth.{field}");
        match &mut s.auth {
            McpAuth::None => {}
            McpAuth::Bearer(tok) => fill(tok, &at("token"), old)?,
            McpAuth::Headers(h) => {
                for (n, v) in h.iter_mut() {
                    fill(v, &at(&format!("headers.{n}")), old)?;
                }
            }
            McpAuth::OAuth2(c) => {
                if let Some(sec) = c.client_secret.as_mut() {
                    fill(sec, &at("client_secret"), old)?;
                }
                if let Grant::RefreshToken(r) = &mut c.grant {
                    fill(r, &at("refresh_token"), old)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::input::{parse_tenant, ParseOptions};

    fn parse(body: &str) -> Tenant {
        parse_tenant(body.as_bytes(), ParseOptions::default()).unwrap()
    }

    const OLD: &str = r#"{"providers":{"openai":{"api_key":"sk-old"}},
        "mcp_servers":{"crm":{"url":"https://crm.example/mcp","auth":{"type":"bearer","token":"tok-old"}},
        "files":{"url":"https://f.example/mcp","auth":{"type":"headers","headers":{"X-Key":"hdr-old","X-Two":"two-old"}}},
        "o":{"url":"https://o.example/mcp","auth":{"type":"oauth2","grant":"refresh_token","token_url":"https://a.example/t",
             "client_id":"c","client_secret":"cs-old","refresh_token":"rt-old"}}}}"#;

    #[test]
    fn redacted_keeps_the_stored_value_and_typed_values_replace_it() {
        let old = parse(OLD);
        let mut new = parse(
            r#"{"providers":{"openai":{"api_key":"[redacted]"},"anthropic":{"api_key":"sk-ant-new"}},
            "mcp_servers":{"crm":{"url":"https://crm.example/mcp","auth":{"type":"bearer","token":"[redacted]"}},
            "files":{"url":"https://f.example/mcp","auth":{"type":"headers","headers":{"X-Key":"[redacted]","X-Two":"two-new"}}},
            "o":{"url":"https://o.example/mcp","auth":{"type":"oauth2","grant":"refresh_token","token_url":"https://a.example/t",
                 "client_id":"c","client_secret":"[redacted]","refresh_token":"[redacted]"}}}}"#,
        );
        assert!(wants_stored(&new));
        keep_stored(&mut new, Some(&old)).unwrap();
        assert!(!wants_stored(&new));
        assert_eq!(new.openai_key.as_ref().unwrap().expose(), "sk-old");
        assert_eq!(new.anthropic_key.as_ref().unwrap().expose(), "sk-ant-new");
        assert!(matches!(&new.mcp.servers["crm"].auth, McpAuth::Bearer(t) if t.expose() == "tok-old"));
        let McpAuth::Headers(h) = &new.mcp.servers["files"].auth else { panic!() };
        assert_eq!((h[0].1.expose(), h[1].1.expose()), ("hdr-old", "two-new"));
        let McpAuth::OAuth2(c) = &new.mcp.servers["o"].auth else { panic!() };
        assert_eq!(c.client_secret.as_ref().unwrap().expose(), "cs-old");
        assert!(matches!(&c.grant, Grant::RefreshToken(r) if r.expose() == "rt-old"));
    }

    #[test]
    fn nothing_to_keep_is_a_400_naming_the_field() {
        let old = parse(OLD);
        for (body, field) in [
            (r#"{"providers":{"anthropic":{"api_key":"[redacted]"}}}"#, "providers.anthropic.api_key"),
            (
                r#"{"mcp_servers":{"new":{"url":"https://n.example/mcp","auth":{"type":"bearer","token":"[redacted]"}}}}"#,
                "mcp_servers.new.auth.token",
            ),
            (
                r#"{"mcp_servers":{"files":{"url":"https://f.example/mcp","auth":{"type":"headers","headers":{"X-Other":"[redacted]"}}}}}"#,
                "mcp_servers.files.auth.headers.X-Other",
            ),
        ] {
            let mut new = parse(body);
            let e = keep_stored(&mut new, Some(&old)).unwrap_err();
            assert_eq!(e.wire().status, 400);
            assert!(e.body(crate::http::error::Shape::OpenAi).windows(field.len()).any(|w| w == field.as_bytes()));
        }
        let mut new = parse(r#"{"providers":{"openai":{"api_key":"[redacted]"}}}"#);
        assert!(keep_stored(&mut new, None).is_err(), "a new tenant has nothing stored");
    }
}
