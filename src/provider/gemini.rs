//! Gemini Interactions API request rewrite (`POST /gemini/v1beta/interactions`,
//! docs/providers.md "Gemini").
//!
//! Completes every `tools[]` entry of `type: "mcp_server"` whose `name` is a
//! managed server: `url`, `headers` (a bearer credential becomes
//! `Authorization: Bearer …`) and `allowed_tools`, which Gemini takes as a
//! list of `{mode?, tools?}` objects; each is narrowed to the tenant's list.
//! Gemini has no approval step, so a server whose tenant policy needs
//! approval is refused. Everything else is spliced through as the client's
//! bytes; error messages name fields and servers, never a credential.

#![forbid(unsafe_code)]

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::http::error::GatewayError;
use crate::provider::json::{self, as_str_array, kind, Kind, Members, Val};
use crate::provider::openai::{intersect, rewrite_mcp_tools, Rewritten};
use crate::tenant::{Approval, McpAuth, McpPolicy, McpServer};

/// The tool type the gateway completes.
pub const MCP_SERVER: &str = "mcp_server";

/// Members of an `mcp_server` tool the gateway owns for a managed server.
const OWNED_FIELDS: [&str; 2] = ["url", "headers"];

/// Rewrites a `POST .../interactions` body for `policy`.
///
/// # Errors
/// 400 for a body that fails [`json::check_strict`], a malformed `tools` array or
/// `mcp_server` entry, an unknown name (unless unmanaged servers are allowed),
/// a name used twice, a client-sent field the gateway owns, or a server whose
/// policy needs approval.
pub fn rewrite_interactions(body: &[u8], policy: &McpPolicy) -> Result<Rewritten, GatewayError> {
    rewrite_mcp_tools(body, policy, MCP_SERVER, "name", complete)
}

fn complete(entry: &mut Members<'_>, i: usize, name: &str, server: &McpServer) -> Result<(), GatewayError> {
    if server.require_approval == Approval::Always {
        return Err(GatewayError::bad_param(
            format!("tools[{i}].name"),
            format!(
                "MCP server '{name}' requires approval of every tool call, which the Gemini API cannot do; use a \
                 provider with approvals for this server."
            ),
        ));
    }
    for field in OWNED_FIELDS {
        if entry.get_raw_non_null(field).is_some() {
            return Err(GatewayError::bad_param(
                format!("tools[{i}].{field}"),
                format!("MCP server '{name}' is managed by the gateway; do not send {field}."),
            ));
        }
        entry.remove(field);
    }
    let allowed = allowed_tools(entry.get_raw("allowed_tools"), server.allowed_tools.as_deref(), i)?;
    entry.push("url", Val::json(&server.url)?);
    match &server.auth {
        McpAuth::None => {}
        McpAuth::Bearer(token) => entry.push("headers", Val::json(&Bearer(token.expose()))?),
        McpAuth::Headers(headers) => {
            entry.push("headers", Val::json(&HeaderMap(headers.iter().map(|(n, v)| (n.as_str(), v.expose()))))?);
        }
        // The shell resolves oauth2 servers to bearer tokens before rewriting.
        McpAuth::OAuth2(_) => {
            return Err(GatewayError::Internal { message: format!("oauth2 server '{name}' reached the rewriter") })
        }
    }
    match allowed {
        Some(v) => entry.set("allowed_tools", v),
        None => {
            entry.remove("allowed_tools");
        }
    }
    Ok(())
}

/// `{"Authorization": "Bearer <token>"}`.
struct Bearer<'s>(&'s str);

impl Serialize for Bearer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(std::iter::once(("Authorization", format!("Bearer {}", self.0))))
    }
}

/// Header credentials in configured order.
struct HeaderMap<I>(I);

impl<'s, I: Iterator<Item = (&'s str, &'s str)> + Clone> Serialize for HeaderMap<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.clone())
    }
}

/// The effective `allowed_tools`: every client entry narrowed to the tenant's
/// list (an entry without `tools` gets the tenant's list); without a client
/// value, one entry with the tenant's list. `None` ⇒ omit the member.
fn allowed_tools<'a>(
    client: Option<&'a RawValue>,
    tenant: Option<&[String]>,
    i: usize,
) -> Result<Option<Val<'a>>, GatewayError> {
    let param = format!("tools[{i}].allowed_tools");
    let client = client.filter(|v| kind(v) != Kind::Null);
    let Some(client) = client else {
        return tenant.map(|t| Val::json(&[serde_json::json!({ "tools": t })])).transpose();
    };
    let bad = || {
        GatewayError::bad_param(
            &param,
            format!("{param} must be an array of objects with optional mode (string) and tools (array of strings)."),
        )
    };
    if kind(client) != Kind::Array {
        return Err(bad());
    }
    let entries = json::parse_array(client).map_err(|_| bad())?;
    if entries.is_empty() {
        return tenant.map(|t| Val::json(&[serde_json::json!({ "tools": t })])).transpose();
    }
    let mut out = Vec::with_capacity(entries.len());
    for raw in entries {
        if kind(raw) != Kind::Object {
            return Err(bad());
        }
        let mut members = Members::parse(raw).map_err(|_| bad())?;
        let mut names = None;
        for (key, value) in members.iter() {
            let value = value.as_raw().ok_or_else(bad)?;
            match key {
                "tools" if kind(value) != Kind::Null => names = Some(as_str_array(value).ok_or_else(bad)?),
                "mode" if kind(value) != Kind::Null && kind(value) != Kind::String => return Err(bad()),
                "tools" | "mode" => {}
                _ => return Err(bad()),
            }
        }
        match tenant {
            None => out.push(Val::raw(raw)),
            Some(t) => {
                let narrowed = names.as_ref().map_or_else(|| t.to_vec(), |c| intersect(c, t));
                // An empty list is not documented to mean "none": refuse rather than guess.
                if narrowed.is_empty() {
                    return Err(GatewayError::bad_param(
                        &param,
                        format!("None of the tools in {param} is allowed for this MCP server."),
                    ));
                }
                members.set("tools", Val::json(&narrowed)?);
                out.push(members.to_val()?);
            }
        }
    }
    Ok(Some(json::write_array(&out)))
}

#[cfg(test)]
mod tests;
