//! Anthropic Messages API request rewrite (README "Using it from an app",
//! `POST /anthropic/v1/messages` and `.../count_tokens`; wire format:
//! docs/routes.md).
//!
//! Completes every `mcp_servers[]` entry whose `name` is a managed server (`url`,
//! `authorization_token`), enforces the tenant's allowed tools in the MCP beta
//! shape the request uses, and says which `anthropic-beta` value to send when the
//! client named no MCP beta. Everything else is spliced through as the client's
//! bytes. Error messages name fields and servers, never a credential.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::http::error::GatewayError;
use crate::provider::json::{self, as_bool, as_str, as_str_array, kind, Kind, Members, Val};
use crate::provider::openai::{array_of, intersect, no_tools, unknown_server};
use crate::tenant::{McpAuth, McpPolicy, McpServer};

/// The deprecated MCP connector beta: allowed tools in `tool_configuration`.
pub const BETA_MCP_2025_04_04: &str = "mcp-client-2025-04-04";
/// The current MCP connector beta: allowed tools in `mcp_toolset` entries of `tools[]`.
pub const BETA_MCP_2025_11_20: &str = "mcp-client-2025-11-20";

const TOOLSET: &str = "mcp_toolset";

/// Result of a Messages request rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnthropicRewrite {
    /// `None` ⇒ forward the original bytes unchanged.
    pub body: Option<Vec<u8>>,
    /// New `anthropic-beta` value; `None` ⇒ leave the client's header as is.
    pub beta: Option<String>,
    /// Managed server names injected, in request order.
    pub injected: Vec<String>,
}

/// Which MCP connector beta the request is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `mcp-client-2025-04-04`: `tool_configuration` on each server.
    ToolConfiguration,
    /// `mcp-client-2025-11-20`: one `mcp_toolset` per server in `tools[]`.
    Toolset,
}

impl Shape {
    const fn flag(self) -> &'static str {
        match self {
            Self::ToolConfiguration => BETA_MCP_2025_04_04,
            Self::Toolset => BETA_MCP_2025_11_20,
        }
    }
}

struct ServerEntry<'a, 'p> {
    raw: &'a RawValue,
    members: Members<'a>,
    name: Cow<'a, str>,
    managed: Option<&'p McpServer>,
}

struct ToolEntry<'a> {
    raw: &'a RawValue,
    /// `Some` for an `mcp_toolset` entry.
    toolset: Option<(Members<'a>, Cow<'a, str>)>,
}

/// Rewrites a `POST /v1/messages` (or `/v1/messages/count_tokens`) body for `policy`.
///
/// # Errors
/// 400 for a body that fails [`json::check_strict`], malformed `mcp_servers` or
/// MCP tool configuration, an unknown server name (unless unmanaged servers are
/// allowed), a name used twice, a client-sent `authorization_token` for a managed
/// server, a managed server with header credentials, or both MCP betas at once.
pub fn rewrite_messages(
    body: &[u8],
    beta_header: Option<&str>,
    policy: &McpPolicy,
) -> Result<AnthropicRewrite, GatewayError> {
    let mut top = json::strict_object(body)?;
    let flags = beta_flags(beta_header);
    if let Some(unknown) = flags.iter().find(|f| is_unknown_mcp_beta(f)) {
        return Err(GatewayError::bad_param(
            "anthropic-beta",
            format!(
                "anthropic-beta names MCP connector version '{}', which this gateway cannot police; use \
                 {BETA_MCP_2025_04_04} or {BETA_MCP_2025_11_20}.",
                shown_flag(unknown)
            ),
        ));
    }
    let unchanged = || AnthropicRewrite { body: None, beta: None, injected: Vec::new() };
    // `tools` is checked on every request (wrong type → 400), even
    // when no MCP server is named.
    let tools = match top.get_raw_non_null("tools") {
        Some(raw) => Some(read_tools(array_of(raw, "tools")?)?),
        None => None,
    };
    let Some(servers_raw) = top.get_raw_non_null("mcp_servers") else {
        return Ok(unchanged());
    };
    let servers = read_servers(array_of(servers_raw, "mcp_servers")?, policy)?;
    if servers.is_empty() {
        return Ok(unchanged());
    }

    let has = |flag: &str| flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
    let (shape, beta) = match (has(BETA_MCP_2025_04_04), has(BETA_MCP_2025_11_20)) {
        (true, true) => {
            return Err(GatewayError::bad_request(format!(
                "anthropic-beta lists both {BETA_MCP_2025_04_04} and {BETA_MCP_2025_11_20}; choose one MCP connector version."
            )))
        }
        (true, false) => (Shape::ToolConfiguration, None),
        (false, true) => (Shape::Toolset, None),
        (false, false) => {
            let shape = infer_shape(&servers, tools.as_deref());
            (shape, Some(merge_beta(&flags, shape.flag())))
        }
    };

    let injected: Vec<String> =
        servers.iter().filter(|s| s.managed.is_some()).map(|s| s.name.clone().into_owned()).collect();
    if injected.is_empty() {
        return Ok(AnthropicRewrite { body: None, beta, injected });
    }

    let mut server_vals = Vec::with_capacity(servers.len());
    for (i, server) in servers.iter().enumerate() {
        server_vals.push(match server.managed {
            Some(config) => {
                let param = format!("mcp_servers[{i}]");
                complete_server(server.members.clone(), config, shape, &server.name, &param)?.to_val()?
            }
            None => Val::raw(server.raw),
        });
    }
    top.set("mcp_servers", json::write_array(&server_vals));

    let managed: Vec<(&str, &McpServer)> =
        servers.iter().filter_map(|s| s.managed.map(|m| (s.name.as_ref(), m))).collect();
    if let Some(tool_vals) = rewrite_toolsets(tools.as_deref(), &managed, shape)? {
        top.set("tools", json::write_array(&tool_vals));
    }
    Ok(AnthropicRewrite { body: Some(top.to_vec()?), beta, injected })
}

/// Checks every `mcp_servers[]` entry and classifies it as managed or passed through.
fn read_servers<'a, 'p>(
    items: Vec<&'a RawValue>,
    policy: &'p McpPolicy,
) -> Result<Vec<ServerEntry<'a, 'p>>, GatewayError> {
    let mut out: Vec<ServerEntry<'a, 'p>> = Vec::with_capacity(items.len());
    for (i, raw) in items.into_iter().enumerate() {
        let param = format!("mcp_servers[{i}]");
        if kind(raw) != Kind::Object {
            return Err(GatewayError::bad_param(&param, format!("{param} must be an object.")));
        }
        let members =
            Members::parse(raw).map_err(|_| GatewayError::bad_param(&param, format!("{param} is malformed.")))?;
        let name = members.get_raw("name").and_then(as_str).ok_or_else(|| {
            GatewayError::bad_param(format!("{param}.name"), format!("{param}.name must be a string."))
        })?;
        let managed = policy.servers.get(name.as_ref());
        match managed {
            Some(config) => {
                if out.iter().any(|s| s.managed.is_some() && s.name == name) {
                    return Err(GatewayError::bad_param(
                        format!("{param}.name"),
                        format!("MCP server '{name}' appears more than once in mcp_servers."),
                    ));
                }
                if matches!(config.auth, McpAuth::Headers(_)) {
                    return Err(GatewayError::bad_param(
                        &param,
                        format!(
                            "MCP server '{name}' uses header credentials, which Anthropic's MCP connector cannot send; use a bearer token."
                        ),
                    ));
                }
                if members.get_raw_non_null("authorization_token").is_some() {
                    return Err(GatewayError::bad_param(
                        format!("{param}.authorization_token"),
                        format!("MCP server '{name}' is managed by the gateway; do not send authorization_token."),
                    ));
                }
                check_tool_configuration(&members, &param)?;
            }
            None if policy.allow_unmanaged => {}
            None => return Err(unknown_server(&format!("{param}.name"), &name)),
        }
        out.push(ServerEntry { raw, members, name, managed });
    }
    Ok(out)
}

/// Reads `tools[]` far enough to find `mcp_toolset` entries.
fn read_tools(items: Vec<&RawValue>) -> Result<Vec<ToolEntry<'_>>, GatewayError> {
    let mut out = Vec::with_capacity(items.len());
    for (j, raw) in items.into_iter().enumerate() {
        let param = format!("tools[{j}]");
        if kind(raw) != Kind::Object {
            return Err(GatewayError::bad_param(&param, format!("{param} must be an object.")));
        }
        let members =
            Members::parse(raw).map_err(|_| GatewayError::bad_param(&param, format!("{param} is malformed.")))?;
        let toolset = match members.get_raw("type") {
            None => None,
            Some(ty) => match as_str(ty) {
                None => {
                    return Err(GatewayError::bad_param(
                        format!("{param}.type"),
                        format!("{param}.type must be a string."),
                    ))
                }
                Some(ty) if ty == TOOLSET => {
                    let server = members.get_raw("mcp_server_name").and_then(as_str).ok_or_else(|| {
                        GatewayError::bad_param(
                            format!("{param}.mcp_server_name"),
                            format!("{param}.mcp_server_name must be a string."),
                        )
                    })?;
                    Some((members, server))
                }
                Some(_) => None,
            },
        };
        out.push(ToolEntry { raw, toolset });
    }
    Ok(out)
}

/// The shape a request without an MCP beta flag is written in.
fn infer_shape(servers: &[ServerEntry<'_, '_>], tools: Option<&[ToolEntry<'_>]>) -> Shape {
    if tools.is_some_and(|t| t.iter().any(|e| e.toolset.is_some())) {
        Shape::Toolset
    } else if servers.iter().any(|s| s.members.get_raw_non_null("tool_configuration").is_some()) {
        Shape::ToolConfiguration
    } else {
        Shape::Toolset
    }
}

/// The client's `anthropic-beta` flags: comma-separated, trimmed, empties dropped.
/// An `mcp-client-*` flag other than the two versions the rewriter knows: a
/// future connector may read MCP configuration the gateway does not police.
fn is_unknown_mcp_beta(flag: &str) -> bool {
    let lower = flag.to_ascii_lowercase();
    lower.starts_with("mcp-client-")
        && !lower.eq_ignore_ascii_case(BETA_MCP_2025_04_04)
        && !lower.eq_ignore_ascii_case(BETA_MCP_2025_11_20)
}

/// A client-sent flag, echoed only when it looks like one.
fn shown_flag(flag: &str) -> &str {
    if flag.len() <= 64 && flag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        flag
    } else {
        "(unreadable)"
    }
}

fn beta_flags(header: Option<&str>) -> Vec<&str> {
    header.map_or_else(Vec::new, |h| h.split(',').map(str::trim).filter(|f| !f.is_empty()).collect())
}

/// Client flags in order without repeats, then `flag`, comma-joined without spaces.
fn merge_beta(flags: &[&str], flag: &str) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(flags.len() + 1);
    for f in flags.iter().copied().chain(std::iter::once(flag)) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out.join(",")
}

/// `tool_configuration` of a managed server: null, or an object whose `enabled`
/// is a bool and `allowed_tools` an array of strings (other members kept).
fn check_tool_configuration(members: &Members<'_>, param: &str) -> Result<(), GatewayError> {
    let Some(raw) = members.get_raw_non_null("tool_configuration") else {
        return Ok(());
    };
    let param = format!("{param}.tool_configuration");
    let bad = || {
        GatewayError::bad_param(
            &param,
            format!("{param} must be an object with optional enabled (boolean) and allowed_tools (array of strings)."),
        )
    };
    if kind(raw) != Kind::Object {
        return Err(bad());
    }
    let config = Members::parse(raw).map_err(|_| bad())?;
    if config.get_raw_non_null("enabled").is_some_and(|v| as_bool(v).is_none()) {
        return Err(bad());
    }
    match config.get_raw_non_null("allowed_tools").map(as_str_array) {
        Some(None) => return Err(bad()),
        Some(Some(names)) if names.is_empty() => {
            let name = members.get_raw("name").and_then(as_str).unwrap_or_default();
            return Err(no_tools(&format!("{param}.allowed_tools"), &name));
        }
        _ => {}
    }
    Ok(())
}

/// A managed `mcp_servers[]` entry with the gateway's `url`, token and allowed tools.
fn complete_server<'a>(
    mut entry: Members<'a>,
    server: &McpServer,
    shape: Shape,
    name: &str,
    param: &str,
) -> Result<Members<'a>, GatewayError> {
    if entry.get("type").is_none() {
        entry.push("type", Val::json("url")?);
    }
    entry.set("url", Val::json(&server.url)?);
    match &server.auth {
        McpAuth::Bearer(token) => entry.set("authorization_token", Val::json(token.expose())?),
        McpAuth::None | McpAuth::Headers(_) => {
            entry.remove("authorization_token");
        }
        // The shell resolves oauth2 servers to bearer tokens before rewriting.
        McpAuth::OAuth2(_) => {
            return Err(GatewayError::Internal { message: "an oauth2 server reached the rewriter".into() })
        }
    }
    if let Some(tenant) = &server.allowed_tools {
        match entry.get_raw_non_null("tool_configuration") {
            Some(raw) => {
                let mut config = Members::parse(raw).map_err(|e| internal(&e))?;
                let names = match config.get_raw_non_null("allowed_tools").and_then(as_str_array) {
                    Some(client) => intersect(&client, tenant),
                    None => tenant.clone(),
                };
                if names.is_empty() {
                    return Err(no_tools(&format!("{param}.tool_configuration.allowed_tools"), name));
                }
                config.set("allowed_tools", Val::json(&names)?);
                entry.set("tool_configuration", config.to_val()?);
            }
            None if shape == Shape::ToolConfiguration => {
                if tenant.is_empty() {
                    return Err(no_tools(&format!("{param}.tool_configuration"), name));
                }
                let mut config = Members::new();
                config.push("allowed_tools", Val::json(tenant)?);
                entry.set("tool_configuration", config.to_val()?);
            }
            None => {}
        }
    }
    Ok(entry)
}

fn internal(_: &serde_json::Error) -> GatewayError {
    GatewayError::Internal { message: "re-reading a checked JSON member failed".into() }
}

/// Narrows client toolsets of managed servers and, in the toolset shape, adds the
/// missing ones. `None` ⇒ `tools` unchanged.
fn rewrite_toolsets<'a>(
    tools: Option<&[ToolEntry<'a>]>,
    managed: &[(&str, &McpServer)],
    shape: Shape,
) -> Result<Option<Vec<Val<'a>>>, GatewayError> {
    let tools = tools.unwrap_or(&[]);
    let mut seen: Vec<&str> = Vec::new();
    let mut changed = false;
    let mut out = Vec::with_capacity(tools.len() + managed.len());
    for (j, tool) in tools.iter().enumerate() {
        let Some((members, server_name)) = &tool.toolset else {
            out.push(Val::raw(tool.raw));
            continue;
        };
        let Some((name, server)) = managed.iter().find(|(n, _)| *n == server_name.as_ref()) else {
            out.push(Val::raw(tool.raw));
            continue;
        };
        if seen.contains(name) {
            return Err(GatewayError::bad_param(
                format!("tools[{j}].mcp_server_name"),
                format!("More than one mcp_toolset references MCP server '{name}'."),
            ));
        }
        seen.push(name);
        let toolset = read_toolset(members, j)?;
        match &server.allowed_tools {
            Some(tenant) => {
                let param = format!("tools[{j}]");
                out.push(narrow_toolset(members.clone(), &toolset, tenant, name, &param)?.to_val()?);
                changed = true;
            }
            None => out.push(Val::raw(tool.raw)),
        }
    }
    if shape == Shape::Toolset {
        for (name, server) in managed {
            if seen.contains(name) {
                continue;
            }
            let mut members = Members::new();
            members.push("type", Val::json(TOOLSET)?);
            members.push("mcp_server_name", Val::json(name)?);
            if let Some(tenant) = &server.allowed_tools {
                members = narrow_toolset(members, &Toolset::default(), tenant, name, "mcp_servers")?;
            }
            out.push(members.to_val()?);
            changed = true;
        }
    }
    Ok(changed.then_some(out))
}

/// The parts of an `mcp_toolset` the gateway reads.
#[derive(Default)]
struct Toolset<'a> {
    default_config: Option<Members<'a>>,
    /// `configs` as (tool, members), in client order.
    configs: Vec<(Cow<'a, str>, Members<'a>)>,
}

impl Toolset<'_> {
    /// Whether the client's toolset enables `tool`.
    fn enables(&self, tool: &str) -> bool {
        let per_tool = self.configs.iter().find(|(t, _)| t == tool).and_then(|(_, c)| enabled(c));
        per_tool.or_else(|| self.default_config.as_ref().and_then(enabled)).unwrap_or(true)
    }
}

fn enabled(config: &Members<'_>) -> Option<bool> {
    config.get_raw_non_null("enabled").and_then(as_bool)
}

/// Checks `default_config` and `configs` of a managed server's toolset.
fn read_toolset<'a>(members: &Members<'a>, j: usize) -> Result<Toolset<'a>, GatewayError> {
    let mut toolset = Toolset::default();
    if let Some(raw) = members.get_raw_non_null("default_config") {
        let param = format!("tools[{j}].default_config");
        toolset.default_config = Some(read_tool_config(raw, &param)?);
    }
    if let Some(raw) = members.get_raw_non_null("configs") {
        let param = format!("tools[{j}].configs");
        let bad =
            || GatewayError::bad_param(&param, format!("{param} must be an object mapping tool names to configs."));
        if kind(raw) != Kind::Object {
            return Err(bad());
        }
        let configs = Members::parse(raw).map_err(|_| bad())?;
        for (tool, value) in configs.iter() {
            let value = value.as_raw().ok_or_else(bad)?;
            toolset.configs.push((Cow::Owned(tool.to_owned()), read_tool_config(value, &param)?));
        }
    }
    Ok(toolset)
}

/// `{enabled?: bool, defer_loading?: bool, ...}`; other members kept.
fn read_tool_config<'a>(raw: &'a RawValue, param: &str) -> Result<Members<'a>, GatewayError> {
    let bad = || {
        GatewayError::bad_param(
            param,
            format!("{param} must hold objects with optional enabled and defer_loading (booleans)."),
        )
    };
    if kind(raw) != Kind::Object {
        return Err(bad());
    }
    let config = Members::parse(raw).map_err(|_| bad())?;
    for key in ["enabled", "defer_loading"] {
        if config.get_raw_non_null(key).is_some_and(|v| as_bool(v).is_none()) {
            return Err(bad());
        }
    }
    Ok(config)
}

/// The toolset with its effective enabled set narrowed to `tenant`: default off,
/// one config per tenant tool enabled as the client had it.
fn narrow_toolset<'a>(
    mut members: Members<'a>,
    client: &Toolset<'a>,
    tenant: &[String],
    name: &str,
    param: &str,
) -> Result<Members<'a>, GatewayError> {
    if !tenant.iter().any(|t| client.enables(t)) {
        return Err(no_tools(param, name));
    }
    let mut default_config = client.default_config.clone().unwrap_or_default();
    default_config.set("enabled", Val::json(&false)?);
    members.set("default_config", default_config.to_val()?);
    let mut configs = Members::new();
    for tool in tenant {
        if configs.get(tool).is_some() {
            continue;
        }
        let mut config = client.configs.iter().find(|(t, _)| t == tool).map(|(_, c)| c.clone()).unwrap_or_default();
        config.set("enabled", Val::json(&client.enables(tool))?);
        configs.push(tool, config.to_val()?);
    }
    members.set("configs", configs.to_val()?);
    Ok(members)
}

#[cfg(test)]
mod tests;
