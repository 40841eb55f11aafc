//! Provider routes whose bodies hold MCP configuration one level down: an
//! Anthropic message batch (each `requests[].params` is a Messages body),
//! OpenAI batch input files (`POST /v1/files`, `purpose=batch`: one request a
//! JSONL line), OpenAI uploads, and OpenAI Realtime sessions.
//!
//! Batch files and Realtime sessions are used by the provider long after this
//! request, outside the gateway: a credential put there would be stored with
//! the provider (and readable back), and a Realtime key acts past every
//! policy. So managed servers are refused there rather than injected.

#![forbid(unsafe_code)]

use crate::http::error::GatewayError;
use crate::provider::anthropic::{rewrite_messages, AnthropicRewrite};
use crate::provider::json::{self, as_str, kind, Kind, Members, Val};
use crate::provider::multipart;
use crate::provider::openai::{array_of, unknown_server};
use crate::tenant::McpPolicy;

/// Prefixes the field path of a 400 raised for one element of an array.
fn nested(e: GatewayError, prefix: &str) -> GatewayError {
    match e {
        GatewayError::BadRequest { message, param } => GatewayError::BadRequest {
            message: format!("{prefix}: {message}"),
            param: Some(param.map_or_else(|| prefix.to_string(), |p| format!("{prefix}.{p}"))),
        },
        other => other,
    }
}

/// Rewrites an Anthropic `POST /v1/messages/batches` body: every request's
/// `params` is completed and policed exactly like `POST /v1/messages`.
///
/// # Errors
/// 400 as [`rewrite_messages`] for any request (its path prefixed), or when
/// two requests need different MCP connector versions.
pub fn rewrite_message_batches(
    body: &[u8],
    beta_header: Option<&str>,
    policy: &McpPolicy,
) -> Result<AnthropicRewrite, GatewayError> {
    let mut top = json::strict_object(body)?;
    let Some(raw) = top.get_raw_non_null("requests") else {
        return Ok(AnthropicRewrite { body: None, beta: None, injected: Vec::new() });
    };
    let requests = array_of(raw, "requests")?;
    let mut out: Vec<Val<'_>> = Vec::with_capacity(requests.len());
    let mut injected: Vec<String> = Vec::new();
    let mut beta: Option<String> = None;
    let mut changed = false;
    for (i, request) in requests.into_iter().enumerate() {
        let prefix = format!("requests[{i}]");
        if kind(request) != Kind::Object {
            return Err(GatewayError::bad_param(&prefix, format!("{prefix} must be an object.")));
        }
        let mut members =
            Members::parse(request).map_err(|_| GatewayError::bad_param(&prefix, format!("{prefix} is malformed.")))?;
        let Some(params) = members.get_raw_non_null("params") else {
            out.push(Val::raw(request));
            continue;
        };
        let params_path = format!("{prefix}.params");
        if kind(params) != Kind::Object {
            return Err(GatewayError::bad_param(&params_path, format!("{params_path} must be an object.")));
        }
        let r = rewrite_messages(params.get().as_bytes(), beta_header, policy).map_err(|e| nested(e, &params_path))?;
        if let Some(b) = r.beta {
            if beta.as_ref().is_some_and(|prev| *prev != b) {
                return Err(GatewayError::bad_param(
                    &params_path,
                    "The requests of this batch need different MCP connector versions; name one in anthropic-beta.",
                ));
            }
            beta = Some(b);
        }
        for name in r.injected {
            if !injected.contains(&name) {
                injected.push(name);
            }
        }
        match r.body {
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| GatewayError::Internal { message: "a rewritten batch request is not UTF-8".into() })?;
                members.set("params", Val::written(text));
                out.push(members.to_val()?);
                changed = true;
            }
            None => out.push(Val::raw(request)),
        }
    }
    if !changed {
        return Ok(AnthropicRewrite { body: None, beta, injected });
    }
    top.set("requests", json::write_array(&out));
    Ok(AnthropicRewrite { body: Some(top.to_vec()?), beta, injected })
}

/// Refuses every `mcp` entry of `tools` (at `path`) that names a managed
/// server, or an unmanaged one when the tenant does not allow those.
fn refuse_mcp_tools(tools: &[u8], path: &str, policy: &McpPolicy, why_managed: &str) -> Result<(), GatewayError> {
    let raw: &serde_json::value::RawValue =
        serde_json::from_slice(tools).map_err(|_| GatewayError::bad_param(path, format!("{path} is malformed.")))?;
    for (i, item) in array_of(raw, path)?.into_iter().enumerate() {
        let param = format!("{path}[{i}]");
        let entry =
            Members::parse(item).map_err(|_| GatewayError::bad_param(&param, format!("{param} is malformed.")))?;
        if entry.get_raw("type").and_then(as_str).as_deref() != Some("mcp") {
            continue;
        }
        let label = entry.get_raw("server_label").and_then(as_str).unwrap_or_default();
        if policy.servers.contains_key(label.as_ref()) {
            return Err(GatewayError::bad_param(
                format!("{param}.server_label"),
                format!("MCP server '{label}' is managed by the gateway and cannot be used {why_managed}."),
            ));
        }
        if !policy.allow_unmanaged {
            return Err(unknown_server(&format!("{param}.server_label"), &label));
        }
    }
    Ok(())
}

/// Checks an OpenAI `POST /v1/files` body. A `purpose=batch` file is read
/// line by line; a request line carrying an MCP tool the tenant's policy
/// does not allow to be stored with the provider is refused.
///
/// # Errors
/// 400 for a body that is not `multipart/form-data`, a malformed or
/// ambiguous form, a batch line that is not a JSON object, or a refused MCP tool.
pub fn check_file_upload(content_type: Option<&str>, body: &[u8], policy: &McpPolicy) -> Result<(), GatewayError> {
    let form = multipart::parse(content_type, body)?;
    let purpose = form.single_text("purpose")?;
    if !purpose.is_some_and(|p| p.trim().eq_ignore_ascii_case("batch")) {
        return Ok(());
    }
    for file in form.all("file") {
        for (n, line) in file.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let at = format!("file line {}", n + 1);
            let top = json::strict_object(line)
                .map_err(|_| GatewayError::bad_param("file", format!("{at} is not a JSON object.")))?;
            let Some(request) = top.get_raw_non_null("body") else { continue };
            if kind(request) != Kind::Object {
                continue;
            }
            let request =
                Members::parse(request).map_err(|_| GatewayError::bad_param("file", format!("{at} is malformed.")))?;
            if let Some(tools) = request.get_raw_non_null("tools") {
                refuse_mcp_tools(tools.get().as_bytes(), "body.tools", policy, "in a batch file")
                    .map_err(|e| nested(e, &at))?;
            }
        }
    }
    Ok(())
}

/// Checks an OpenAI `POST /v1/uploads` body: batch input is refused here
/// (the gateway never sees an upload's parts whole), so it must go through
/// `POST /v1/files`, where it is inspected.
///
/// # Errors
/// 400 for a body that is not a JSON object or whose purpose is `batch`.
pub fn check_upload(body: &[u8]) -> Result<(), GatewayError> {
    let top = json::strict_object(body)?;
    if top.get_raw_non_null("purpose").and_then(as_str).is_some_and(|p| p.trim().eq_ignore_ascii_case("batch")) {
        return Err(GatewayError::bad_param(
            "purpose",
            "Batch input files must be uploaded with POST /v1/files, where the gateway inspects them.",
        ));
    }
    Ok(())
}

/// Checks an OpenAI Realtime body (JSON `session`/top-level `tools`, or the
/// `session` part of a multipart call) for MCP tools: a managed server can
/// never be named (the session runs at the provider, out of the gateway's
/// sight); unmanaged ones only where the tenant allows them.
///
/// # Errors
/// 400 for a malformed body or a refused MCP tool.
pub fn check_realtime(content_type: Option<&str>, body: &[u8], policy: &McpPolicy) -> Result<(), GatewayError> {
    if body.is_empty() {
        return Ok(());
    }
    let is_form = content_type.is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    let sessions: Vec<Vec<u8>> = if is_form {
        multipart::parse(content_type, body)?.all("session").into_iter().map(<[u8]>::to_vec).collect()
    } else {
        vec![body.to_vec()]
    };
    for doc in sessions {
        let top = json::strict_object(&doc)?;
        if let Some(tools) = top.get_raw_non_null("tools") {
            refuse_mcp_tools(tools.get().as_bytes(), "tools", policy, "in a Realtime session")?;
        }
        if let Some(session) = top.get_raw_non_null("session").filter(|s| kind(s) == Kind::Object) {
            let session =
                Members::parse(session).map_err(|_| GatewayError::bad_param("session", "session is malformed."))?;
            if let Some(tools) = session.get_raw_non_null("tools") {
                refuse_mcp_tools(tools.get().as_bytes(), "session.tools", policy, "in a Realtime session")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
