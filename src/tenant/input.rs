//! Admin input: the raw JSON records of `PUT /admin/tenants/{id}` and their
//! parsing into validated [`Tenant`]s.
//!
//! Raw records use `deny_unknown_fields`; each level is parsed separately so
//! an error names the path of the bad field (`mcp_servers.crm.auth.token`).
//! Errors never quote a submitted value: it may be a secret.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{is_valid_name, Approval, AzureOpenAi, McpAuth, McpMode, McpPolicy, McpServer, Tenant};
use crate::crypto::Secret;
use crate::http::error::GatewayError;

/// Longest secret (provider key, token, header value) accepted.
const MAX_SECRET_LEN: usize = 8192;
const MAX_TOOLS: usize = 512;
const MAX_SERVERS: usize = 64;

// Raw records hold each field as raw JSON so that its type error can name
// the field's full path; `deny_unknown_fields` names unknown ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant<'a> {
    #[serde(default, borrow)]
    providers: Option<&'a RawValue>,
    #[serde(default, borrow)]
    mcp_servers: Option<&'a RawValue>,
    #[serde(default, borrow)]
    allow_unmanaged_mcp_servers: Option<&'a RawValue>,
    #[serde(default, borrow)]
    rate_limit: Option<&'a RawValue>,
    #[serde(default, borrow)]
    unknown_routes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests_per_minute: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviders<'a> {
    #[serde(default, borrow)]
    openai: Option<&'a RawValue>,
    #[serde(default, borrow)]
    anthropic: Option<&'a RawValue>,
    #[serde(default, borrow)]
    xai: Option<&'a RawValue>,
    #[serde(default, borrow)]
    groq: Option<&'a RawValue>,
    #[serde(default, borrow)]
    gemini: Option<&'a RawValue>,
    #[serde(default, borrow)]
    azure_openai: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAzure<'a> {
    #[serde(borrow)]
    endpoint: &'a RawValue,
    #[serde(borrow)]
    api_key: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderKey<'a> {
    #[serde(borrow)]
    api_key: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer<'a> {
    #[serde(borrow)]
    url: &'a RawValue,
    #[serde(borrow)]
    auth: &'a RawValue,
    #[serde(default, borrow)]
    allowed_tools: Option<&'a RawValue>,
    #[serde(default, borrow)]
    require_approval: Option<&'a RawValue>,
    #[serde(default, borrow)]
    mode: Option<&'a RawValue>,
    #[serde(default, borrow)]
    service: Option<&'a RawValue>,
    #[serde(default, borrow)]
    per_user: Option<&'a RawValue>,
    #[serde(default, borrow)]
    on_missing: Option<&'a RawValue>,
}

/// The `type` of an `auth` object, read before its shape is chosen.
#[derive(Deserialize)]
pub(crate) struct RawAuthType {
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthNone {
    #[serde(rename = "type")]
    _kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthBearer<'a> {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(borrow)]
    token: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthHeaders<'a> {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(borrow)]
    headers: &'a RawValue,
}

/// Options that change what a valid tenant is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// `ALLOW_INSECURE_MCP_URLS`: accept `http://127.0.0.1` and `http://localhost`.
    pub allow_insecure_urls: bool,
}

pub(crate) fn invalid(path: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::bad_param(path, format!("Invalid tenant config at '{path}': {why}"))
}

/// serde's reason without positions and without the submitted value:
/// "invalid type: string \"sk-…\", expected a sequence" would echo what may
/// be a secret, so type errors keep only the two type names.
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or("invalid value");
    if let Some(rest) = text.strip_prefix("invalid type: ").or_else(|| text.strip_prefix("invalid value: ")) {
        let found = rest.split([' ', ',']).next().unwrap_or("value");
        let expected = rest.split_once(", expected ").map_or("another type", |(_, e)| e);
        return format!("expected {expected}, found {found}");
    }
    text.chars().take(200).collect()
}

pub(crate) fn parse_at<'a, T: Deserialize<'a>>(raw: &'a str, path: &str) -> Result<T, GatewayError> {
    serde_json::from_str(raw).map_err(|e| invalid(path, serde_reason(&e)))
}

/// Like [`parse_at`] for records: serde's derived structs also accept a JSON
/// array of their fields in order, which the admin API does not.
pub(crate) fn parse_record<'a, T: Deserialize<'a>>(raw: &'a str, path: &str) -> Result<T, GatewayError> {
    if !raw.trim_start().starts_with('{') {
        return Err(invalid(path, "expected an object"));
    }
    parse_at(raw, path)
}

/// An optional field; `null` counts as absent.
pub(crate) fn optional<T: serde::de::DeserializeOwned>(
    raw: Option<&RawValue>,
    path: &str,
) -> Result<Option<T>, GatewayError> {
    match raw.filter(|r| r.get() != "null") {
        None => Ok(None),
        Some(r) => parse_at(r.get(), path).map(Some),
    }
}

/// Parses and validates an admin tenant body.
///
/// # Errors
/// A 400 naming the first offending field.
pub fn parse_tenant(body: &[u8], opts: ParseOptions) -> Result<Tenant, GatewayError> {
    crate::provider::json::check_strict(body)?;
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::bad_request("Request body is not valid UTF-8."))?;
    let raw: RawTenant<'_> = serde_json::from_str(text).map_err(|e| invalid("$", serde_reason(&e)))?;

    let mut tenant = Tenant::default();
    if let Some(p) = raw.providers.filter(|p| p.get() != "null") {
        let providers: RawProviders<'_> = parse_record(p.get(), "providers")?;
        tenant.openai_key = parse_provider_key(providers.openai, "providers.openai")?;
        tenant.anthropic_key = parse_provider_key(providers.anthropic, "providers.anthropic")?;
        tenant.xai_key = parse_provider_key(providers.xai, "providers.xai")?;
        tenant.groq_key = parse_provider_key(providers.groq, "providers.groq")?;
        tenant.gemini_key = parse_provider_key(providers.gemini, "providers.gemini")?;
        tenant.azure_openai = parse_azure(providers.azure_openai, opts)?;
    }
    let servers: BTreeMap<String, &RawValue> = match raw.mcp_servers.filter(|r| r.get() != "null") {
        None => BTreeMap::new(),
        Some(r) => parse_at(r.get(), "mcp_servers")?,
    };
    if servers.len() > MAX_SERVERS {
        return Err(invalid("mcp_servers", format_args!("at most {MAX_SERVERS} servers")));
    }
    let mut map = BTreeMap::new();
    for (name, value) in servers {
        if !is_valid_name(&name) {
            return Err(invalid("mcp_servers", "server names must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"));
        }
        let path = format!("mcp_servers.{name}");
        let (server, per_user) = parse_server(value.get(), &path, opts)?;
        if let Some(p) = per_user {
            tenant.per_user.insert(name.clone(), p);
        }
        map.insert(name, server);
    }
    let allow_unmanaged = optional(raw.allow_unmanaged_mcp_servers, "allow_unmanaged_mcp_servers")?.unwrap_or(false);
    tenant.mcp = McpPolicy { servers: map, allow_unmanaged };
    let rate_limit = raw.rate_limit.filter(|r| r.get() != "null");
    if let Some(limit) = rate_limit.map(|r| parse_record::<RawRateLimit>(r.get(), "rate_limit")).transpose()? {
        if limit.requests_per_minute == 0 {
            return Err(invalid("rate_limit.requests_per_minute", "must be at least 1"));
        }
        tenant.rate_limit_rpm = Some(limit.requests_per_minute);
    }
    tenant.unknown_routes = optional(raw.unknown_routes, "unknown_routes")?.unwrap_or_default();
    Ok(tenant)
}

fn parse_provider_key(raw: Option<&RawValue>, path: &str) -> Result<Option<Secret>, GatewayError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let key: RawProviderKey<'_> = parse_record(raw.get(), path)?;
    let key_path = format!("{path}.api_key");
    let api_key: String = parse_at(key.api_key.get(), &key_path)?;
    Ok(Some(check_secret(api_key, &key_path)?))
}

/// `providers.azure_openai`: the resource endpoint (an `https://` origin,
/// or loopback `http://` when insecure URLs are allowed) and its key.
fn parse_azure(raw: Option<&RawValue>, opts: ParseOptions) -> Result<Option<AzureOpenAi>, GatewayError> {
    const PATH: &str = "providers.azure_openai";
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let a: RawAzure<'_> = parse_record(raw.get(), PATH)?;
    let endpoint_path = format!("{PATH}.endpoint");
    let endpoint: String = parse_at(a.endpoint.get(), &endpoint_path)?;
    let endpoint = check_url(&endpoint, &endpoint_path, opts, false)?;
    let origin = endpoint.trim_end_matches('/');
    if origin.split_once("://").is_some_and(|(_, rest)| rest.contains(['/', '?'])) {
        return Err(invalid(&endpoint_path, "must be the resource's origin, like https://RESOURCE.openai.azure.com"));
    }
    let key_path = format!("{PATH}.api_key");
    let api_key: String = parse_at(a.api_key.get(), &key_path)?;
    Ok(Some(AzureOpenAi { endpoint: origin.to_string(), api_key: check_secret(api_key, &key_path)? }))
}

fn parse_server(
    raw: &str,
    path: &str,
    opts: ParseOptions,
) -> Result<(McpServer, Option<super::users::PerUser>), GatewayError> {
    let s: RawServer<'_> = parse_record(raw, path)?;
    let (mode, service) = parse_mode(&s, path)?;
    let url_path = format!("{path}.url");
    let url: String = parse_at(s.url.get(), &url_path)?;
    let url = check_url(&url, &url_path, opts, service.is_some())?;
    let per_user_flag: bool = optional(s.per_user, &format!("{path}.per_user"))?.unwrap_or(false);
    let on_missing: Option<String> = optional(s.on_missing, &format!("{path}.on_missing"))?;
    let (auth, per_user) = if per_user_flag {
        let (auth, p) = super::users_input::parse_per_user_auth(s.auth.get(), path, on_missing.as_deref(), opts)?;
        (auth, Some(p))
    } else if on_missing.is_some() {
        return Err(invalid(&format!("{path}.on_missing"), "is only allowed with \"per_user\": true"));
    } else {
        (parse_auth(s.auth.get(), &format!("{path}.auth"), opts)?, None)
    };
    let tools_path = format!("{path}.allowed_tools");
    let allowed_tools = match optional::<Vec<String>>(s.allowed_tools, &tools_path)? {
        None => None,
        Some(tools) => Some(check_tools(tools, &tools_path)?),
    };
    let approval: Option<String> = optional(s.require_approval, &format!("{path}.require_approval"))?;
    let require_approval = match approval.as_deref() {
        None | Some("never") => Approval::Never,
        Some("always") => Approval::Always,
        Some(_) => return Err(invalid(&format!("{path}.require_approval"), "must be \"never\" or \"always\"")),
    };
    Ok((McpServer { url, auth, allowed_tools, require_approval, mode, service }, per_user))
}

/// `mode` (default `direct`, or `relay` with a `service`) and `service`, a
/// Workers binding name; a service binding is reachable only by the relay.
fn parse_mode(s: &RawServer<'_>, path: &str) -> Result<(McpMode, Option<String>), GatewayError> {
    let service_path = format!("{path}.service");
    let service: Option<String> = optional(s.service, &service_path)?;
    if let Some(name) = &service {
        let ok = name.len() <= 64
            && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(invalid(&service_path, "must be a binding name: 1-64 characters of A-Z, a-z, 0-9 or '_'"));
        }
    }
    let mode_path = format!("{path}.mode");
    let mode: Option<String> = optional(s.mode, &mode_path)?;
    let mode = match (mode.as_deref(), &service) {
        (None, None) | (Some("direct"), None) => McpMode::Direct,
        (None | Some("relay"), _) => McpMode::Relay,
        (Some("direct"), Some(_)) => {
            return Err(invalid(&mode_path, "must be \"relay\": a service binding is reachable only through the relay"))
        }
        (Some(_), _) => return Err(invalid(&mode_path, "must be \"direct\" or \"relay\"")),
    };
    Ok((mode, service))
}

pub(crate) fn parse_auth(raw: &str, path: &str, opts: ParseOptions) -> Result<McpAuth, GatewayError> {
    let kind: RawAuthType = parse_record(raw, path)?;
    match kind.kind.as_str() {
        "none" => {
            let _: RawAuthNone = parse_record(raw, path)?;
            Ok(McpAuth::None)
        }
        "bearer" => {
            let b: RawAuthBearer<'_> = parse_record(raw, path)?;
            let token_path = format!("{path}.token");
            let token: String = parse_at(b.token.get(), &token_path)?;
            Ok(McpAuth::Bearer(check_secret(token, &token_path)?))
        }
        "headers" => {
            let h: RawAuthHeaders<'_> = parse_record(raw, path)?;
            let headers_path = format!("{path}.headers");
            let headers: BTreeMap<String, String> = parse_at(h.headers.get(), &headers_path)?;
            if headers.is_empty() {
                return Err(invalid(&headers_path, "must name at least one header"));
            }
            let mut out = Vec::with_capacity(headers.len());
            for (name, value) in headers {
                if !is_http_token(&name) || name.len() > 256 {
                    return Err(invalid(&headers_path, "header names must be HTTP tokens"));
                }
                let value_path = format!("{headers_path}.{name}");
                if is_reserved_header(&name) {
                    return Err(invalid(&value_path, "this header cannot be set as a credential"));
                }
                out.push((name, check_secret(value, &value_path)?));
            }
            Ok(McpAuth::Headers(out))
        }
        "oauth2" => crate::oauth::config::parse_oauth2(raw, path, opts).map(|c| McpAuth::OAuth2(Box::new(c))),
        _ => Err(invalid(&format!("{path}.type"), "must be one of \"none\", \"bearer\", \"headers\", \"oauth2\"")),
    }
}

/// Secrets travel in HTTP headers: visible ASCII and spaces only, no CR, LF or NUL.
pub(crate) fn check_secret(value: String, path: &str) -> Result<Secret, GatewayError> {
    if value.trim().is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    if value.len() > MAX_SECRET_LEN {
        return Err(invalid(path, format_args!("must be at most {MAX_SECRET_LEN} bytes")));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
        return Err(invalid(path, "must be printable ASCII without CR, LF or NUL"));
    }
    Ok(Secret::new(value))
}

fn check_tools(tools: Vec<String>, path: &str) -> Result<Vec<String>, GatewayError> {
    if tools.len() > MAX_TOOLS {
        return Err(invalid(path, format_args!("at most {MAX_TOOLS} tools")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tools.len());
    for t in tools {
        if t.is_empty() || t.len() > 128 || t.chars().any(char::is_control) {
            return Err(invalid(path, "tool names must be 1-128 characters without control characters"));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// RFC 9110 `token`.
#[must_use]
pub fn is_http_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_reserved_header(name: &str) -> bool {
    const RESERVED: [&str; 9] = [
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// MCP server URLs: absolute `https://` URLs with an ASCII host (IDNs in
/// punycode), no userinfo and no fragment; loopback `http://` only when
/// `allow_insecure_urls`. Behind a service binding the URL never crosses the
/// internet, so `http://` to any host is accepted. The URL is stored exactly as given.
pub(crate) fn check_url(raw: &str, path: &str, opts: ParseOptions, via_service: bool) -> Result<String, GatewayError> {
    if raw.len() > 2048 {
        return Err(invalid(path, "must be at most 2048 characters"));
    }
    if raw.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(invalid(path, "must be an absolute URL without spaces or non-ASCII characters"));
    }
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| invalid(path, "must be an absolute URL"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(invalid(path, "must not contain userinfo"));
    }
    if tail.contains('#') {
        return Err(invalid(path, "must not contain a fragment"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(|| invalid(path, "has an invalid host"))?;
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Err(invalid(path, "has an invalid host"));
            }
            (&authority[..h.len() + 2], after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['.', '-']));
    if !host_ok {
        return Err(invalid(path, "must have a valid host"));
    }
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n > 65_535)
        {
            return Err(invalid(path, "has an invalid port"));
        }
    }
    let loopback = host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]";
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if via_service => {}
        "http" if opts.allow_insecure_urls && loopback => {}
        _ => return Err(invalid(path, "must use https://")),
    }
    Ok(raw.to_string())
}

#[cfg(test)]
pub(crate) mod tests;
