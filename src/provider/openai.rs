//! `OpenAI` Responses API request rewrite (`POST /openai/v1/responses` and the
//! Responses-shaped routes of docs/routes.md; wire details in docs/providers.md).
//!
//! Completes every `tools[]` entry of `type: "mcp"` whose `server_label` names a
//! managed server: `server_url`, credentials, `allowed_tools` and
//! `require_approval`. Everything else is spliced through as the client's bytes.
//! The rewrite never reads `input`, `previous_response_id` or `conversation`, so
//! credentials are injected on follow-ups and approval turns alike. Error
//! messages name fields and servers, never a credential.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::crypto::Secret;
use crate::http::error::GatewayError;
use crate::provider::json::{self, as_bool, as_str, as_str_array, kind, Kind, Members, Val};
use crate::provider::table::Spec;
use crate::provider::Provider;
use crate::tenant::{is_valid_name, Approval, McpAuth, McpPolicy, McpServer};

/// Members of an `mcp` tool the gateway owns for a managed server.
const OWNED_FIELDS: [&str; 5] = ["server_url", "headers", "authorization", "connector_id", "tunnel_id"];

/// Result of a request rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// `None` ⇒ forward the original bytes unchanged.
    pub body: Option<Vec<u8>>,
    /// Managed server names injected, in request order.
    pub injected: Vec<String>,
}

/// Rewrites a `POST /v1/responses` body for `policy`.
///
/// # Errors
/// 400 for a body that fails [`json::check_strict`], a malformed `tools` array or
/// `mcp` entry, an unknown label (unless unmanaged servers are allowed), a label
/// used twice, or a client-sent field the gateway owns.
pub fn rewrite_responses(body: &[u8], policy: &McpPolicy) -> Result<Rewritten, GatewayError> {
    rewrite_responses_for(body, policy, Provider::OpenAi.spec())
}

/// Rewrites a Responses API body for a provider modelled on `OpenAI`'s
/// (xAI, Groq, Azure `OpenAI`), within what its `spec` says it supports: where
/// `require_approval` does not exist, a server whose tenant policy needs
/// approval is refused, never silently run unapproved.
///
/// # Errors
/// As [`rewrite_responses`], and 400 naming the server for a policy the
/// provider cannot carry, or an option the provider does not take.
pub fn rewrite_responses_for(body: &[u8], policy: &McpPolicy, spec: &Spec) -> Result<Rewritten, GatewayError> {
    rewrite_mcp_tools(body, policy, "mcp", "server_label", |entry, i, label, server| {
        complete_mcp_tool(entry, i, label, server, spec)
    })
}

/// The walk every `tools[]`-shaped API shares (Responses, Gemini Interactions):
/// each entry of type `tool_type` naming a managed server by `label_field` is
/// completed by `complete`; unmanaged ones pass only when the tenant allows
/// them; everything else is spliced through as the client's bytes.
///
/// # Errors
/// 400 for a body that fails [`json::check_strict`], a malformed `tools` array or
/// entry, an unknown label (unless unmanaged servers are allowed), a label
/// used twice, or whatever `complete` refuses.
pub(crate) fn rewrite_mcp_tools(
    body: &[u8],
    policy: &McpPolicy,
    tool_type: &str,
    label_field: &str,
    mut complete: impl FnMut(&mut Members<'_>, usize, &str, &McpServer) -> Result<(), GatewayError>,
) -> Result<Rewritten, GatewayError> {
    let mut top = json::strict_object(body)?;
    let Some(tools) = top.get_raw_non_null("tools") else {
        return Ok(Rewritten { body: None, injected: Vec::new() });
    };
    let items = array_of(tools, "tools")?;
    let mut out = Vec::with_capacity(items.len());
    let mut injected: Vec<String> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if kind(item) != Kind::Object {
            return Err(GatewayError::bad_param(format!("tools[{i}]"), format!("tools[{i}] must be an object.")));
        }
        let mut entry = Members::parse(item).map_err(|_| malformed(format!("tools[{i}]")))?;
        let ty = entry.get_raw("type").and_then(as_str).ok_or_else(|| {
            GatewayError::bad_param(format!("tools[{i}].type"), format!("tools[{i}].type must be a string."))
        })?;
        if ty != tool_type {
            out.push(Val::raw(item));
            continue;
        }
        let param = format!("tools[{i}].{label_field}");
        let label = entry
            .get_raw(label_field)
            .and_then(as_str)
            .ok_or_else(|| GatewayError::bad_param(&param, format!("{param} must be a string.")))?;
        match policy.servers.get(label.as_ref()) {
            Some(server) => {
                if injected.iter().any(|l| *l == label) {
                    return Err(GatewayError::bad_param(
                        &param,
                        format!("MCP server '{label}' appears in more than one tools entry."),
                    ));
                }
                complete(&mut entry, i, &label, server)?;
                out.push(entry.to_val()?);
                injected.push(label.into_owned());
            }
            None if policy.allow_unmanaged => out.push(Val::raw(item)),
            None => return Err(unknown_server(&param, &label)),
        }
    }
    if injected.is_empty() {
        return Ok(Rewritten { body: None, injected });
    }
    top.set("tools", json::write_array(&out));
    Ok(Rewritten { body: Some(top.to_vec()?), injected })
}

/// Rejects client-owned fields, then fills in the server's URL, credentials,
/// allowed tools and approval policy. Client members keep their order; new ones
/// are appended.
fn complete_mcp_tool(
    entry: &mut Members<'_>,
    i: usize,
    label: &str,
    server: &McpServer,
    spec: &Spec,
) -> Result<(), GatewayError> {
    let opts = spec.responses;
    for field in OWNED_FIELDS {
        if entry.get_raw_non_null(field).is_some() {
            return Err(GatewayError::bad_param(
                format!("tools[{i}].{field}"),
                format!("MCP server '{label}' is managed by the gateway; do not send {field}."),
            ));
        }
        entry.remove(field);
    }
    let client_allowed = entry.get_raw("allowed_tools").filter(|v| kind(v) != Kind::Null);
    if !opts.filter_object && client_allowed.is_some_and(|v| kind(v) != Kind::Array) {
        return Err(GatewayError::bad_param(
            format!("tools[{i}].allowed_tools"),
            format!("tools[{i}].allowed_tools must be an array of tool names for {}.", spec.label),
        ));
    }
    // An empty list is refused for every provider (some read `[]` as "every tool").
    let allowed = allowed_tools(client_allowed, server.allowed_tools.as_deref(), i, label)?;
    let approval = if opts.approval {
        Some(require_approval(entry.get_raw("require_approval"), server.require_approval, i)?)
    } else {
        no_approval(entry, i, label, server, spec)?;
        None
    };
    entry.push("server_url", Val::json(&server.url)?);
    match &server.auth {
        McpAuth::None => {}
        McpAuth::Bearer(token) => entry.push("authorization", Val::json(token.expose())?),
        McpAuth::Headers(headers) => entry.push("headers", Val::json(&HeaderMap(headers))?),
        // The shell resolves oauth2 servers to bearer tokens before rewriting.
        McpAuth::OAuth2(_) => {
            return Err(GatewayError::Internal { message: format!("oauth2 server '{label}' reached the rewriter") })
        }
    }
    match allowed {
        Some(v) => entry.set("allowed_tools", v),
        None => {
            entry.remove("allowed_tools");
        }
    }
    if let Some(approval) = approval {
        entry.set("require_approval", approval);
    }
    Ok(())
}

/// For a provider without `require_approval`: the tenant's policy must not
/// need approval, and the client must not send the option.
fn no_approval(
    entry: &Members<'_>,
    i: usize,
    label: &str,
    server: &McpServer,
    spec: &Spec,
) -> Result<(), GatewayError> {
    match server.require_approval {
        Approval::Always => Err(GatewayError::bad_param(
            format!("tools[{i}].server_label"),
            format!(
                "MCP server '{label}' requires approval of every tool call, which {} cannot do; use a provider \
                 with approvals for this server.",
                spec.label
            ),
        )),
        Approval::Never if entry.get_raw_non_null("require_approval").is_some() => Err(GatewayError::bad_param(
            format!("tools[{i}].require_approval"),
            format!("{} does not support require_approval.", spec.label),
        )),
        Approval::Never => Ok(()),
    }
}

/// Serializes header credentials in configured order.
struct HeaderMap<'s>(&'s [(String, Secret)]);

impl Serialize for HeaderMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, value)| (name, value.expose())))
    }
}

/// A `{tool_names?: [string], read_only?: bool}` filter, checked.
struct Filter<'a> {
    members: Members<'a>,
    tool_names: Option<Vec<Cow<'a, str>>>,
}

/// `param` names the member in the error; `path` is the filter's own path in the message.
fn parse_filter<'a>(raw: &'a RawValue, param: &str, path: &str) -> Result<Filter<'a>, GatewayError> {
    let bad = || {
        GatewayError::bad_param(
            param,
            format!("{path} must be an object with optional tool_names (array of strings) and read_only (boolean)."),
        )
    };
    if kind(raw) != Kind::Object {
        return Err(bad());
    }
    let members = Members::parse(raw).map_err(|_| bad())?;
    let mut tool_names = None;
    for (key, value) in members.iter() {
        let value = value.as_raw().ok_or_else(bad)?;
        let is_null = kind(value) == Kind::Null;
        match key {
            "tool_names" if !is_null => tool_names = Some(as_str_array(value).ok_or_else(bad)?),
            "read_only" if !is_null => {
                as_bool(value).ok_or_else(bad)?;
            }
            "tool_names" | "read_only" => {}
            _ => return Err(bad()),
        }
    }
    Ok(Filter { members, tool_names })
}

/// The effective `allowed_tools`: the client's choice narrowed to the tenant's list.
/// `None` ⇒ omit the member (no restriction on either side).
///
/// Fails closed: a list that would be empty is never forwarded (a provider may
/// read `[]` as "no filter"), and `read_only` is never kept next to a list the
/// tenant narrowed (a provider combining the two with OR would widen it).
fn allowed_tools<'a>(
    client: Option<&'a RawValue>,
    tenant: Option<&[String]>,
    i: usize,
    label: &str,
) -> Result<Option<Val<'a>>, GatewayError> {
    let param = format!("tools[{i}].allowed_tools");
    let client = client.filter(|v| kind(v) != Kind::Null);
    let Some(client) = client else {
        return match tenant {
            Some([]) => Err(no_tools(&param, label)),
            _ => tenant.map(Val::json).transpose(),
        };
    };
    let shape_error = || {
        GatewayError::bad_param(
            &param,
            format!("{param} must be an array of strings or an object with optional tool_names and read_only."),
        )
    };
    match kind(client) {
        Kind::Array => {
            let names = as_str_array(client).ok_or_else(shape_error)?;
            let names =
                tenant.map_or_else(|| names.iter().map(|n| n.clone().into_owned()).collect(), |t| intersect(&names, t));
            if names.is_empty() {
                return Err(no_tools(&param, label));
            }
            match tenant {
                None => Ok(Some(Val::raw(client))),
                Some(_) => Val::json(&names).map(Some),
            }
        }
        Kind::Object => {
            let mut filter = parse_filter(client, &param, &param)?;
            if filter.tool_names.as_ref().is_some_and(Vec::is_empty) {
                return Err(no_tools(&param, label));
            }
            let Some(t) = tenant else {
                return Ok(Some(Val::raw(client)));
            };
            if filter.members.get_raw_non_null("read_only").and_then(as_bool) == Some(true) {
                return Err(GatewayError::bad_param(
                    format!("{param}.read_only"),
                    format!(
                        "MCP server '{label}' allows only listed tools; read_only cannot be combined with that list. \
                         Name the tools in tool_names instead."
                    ),
                ));
            }
            let names = filter.tool_names.as_ref().map_or_else(|| t.to_vec(), |c| intersect(c, t));
            if names.is_empty() {
                return Err(no_tools(&param, label));
            }
            filter.members.remove("read_only");
            filter.members.set("tool_names", Val::json(&names)?);
            filter.members.to_val().map(Some)
        }
        _ => Err(shape_error()),
    }
}

/// 400 for a server whose allowed tools would be empty for this request.
pub(crate) fn no_tools(param: &str, label: &str) -> GatewayError {
    GatewayError::bad_param(
        param,
        format!(
            "MCP server '{label}' would allow no tools for this request: the tools asked for and the tools the \
             tenant allows have none in common."
        ),
    )
}

/// The client's names that the tenant allows, in client order, without repeats.
pub(crate) fn intersect(client: &[Cow<'_, str>], tenant: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in client {
        if tenant.iter().any(|t| t == name) && !out.iter().any(|o| o == name) {
            out.push(name.clone().into_owned());
        }
    }
    out
}

/// The effective `require_approval`: the tenant's policy, or anything stricter the client asked for.
fn require_approval(client: Option<&RawValue>, tenant: Approval, i: usize) -> Result<Val<'_>, GatewayError> {
    let param = format!("tools[{i}].require_approval");
    let client = client.filter(|v| kind(v) != Kind::Null);
    if let Some(raw) = client {
        check_approval(raw, &param)?;
    }
    match (tenant, client) {
        (Approval::Always, _) => Val::json(Approval::Always.as_str()),
        (Approval::Never, Some(raw)) => Ok(Val::raw(raw)),
        (Approval::Never, None) => Val::json(Approval::Never.as_str()),
    }
}

fn check_approval(raw: &RawValue, param: &str) -> Result<(), GatewayError> {
    let bad = || {
        GatewayError::bad_param(
            param,
            format!("{param} must be \"always\", \"never\" or an object with optional always and never filters."),
        )
    };
    match kind(raw) {
        Kind::String => match as_str(raw).as_deref() {
            Some("always" | "never") => Ok(()),
            _ => Err(bad()),
        },
        Kind::Object => {
            let members = Members::parse(raw).map_err(|_| bad())?;
            for (key, value) in members.iter() {
                let value = value.as_raw().ok_or_else(bad)?;
                match key {
                    "always" | "never" if kind(value) == Kind::Null => {}
                    "always" | "never" => {
                        parse_filter(value, param, &format!("{param}.{key}"))?;
                    }
                    _ => return Err(bad()),
                }
            }
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// Reads a member that must be an array (the caller has excluded `null`).
pub(crate) fn array_of<'a>(raw: &'a RawValue, param: &str) -> Result<Vec<&'a RawValue>, GatewayError> {
    if kind(raw) != Kind::Array {
        return Err(GatewayError::bad_param(param, format!("{param} must be an array.")));
    }
    json::parse_array(raw).map_err(|_| malformed(param.to_owned()))
}

fn malformed(param: String) -> GatewayError {
    let message = format!("{param} is malformed.");
    GatewayError::bad_param(param, message)
}

/// 400 for an MCP entry naming a server the tenant has not configured. The name
/// is echoed only when it is a plausible server name.
pub(crate) fn unknown_server(param: &str, name: &str) -> GatewayError {
    let field = param.rsplit('.').next().unwrap_or(param);
    let message = if is_valid_name(name) {
        format!("Unknown MCP server '{name}': {field} does not name a configured MCP server.")
    } else {
        format!("{field} does not name a configured MCP server.")
    };
    GatewayError::bad_param(param, message)
}

#[cfg(test)]
mod tests;
