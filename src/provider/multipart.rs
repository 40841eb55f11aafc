//! Just enough `multipart/form-data` (RFC 7578) to read the named fields of
//! an upload the gateway must inspect. Ambiguity is refused, never guessed:
//! a missing or odd boundary, a part without a name, or a body that does not
//! end with the closing delimiter is a 400.

use crate::http::error::GatewayError;

/// The parts of a form, in order: `(name, content)`.
#[derive(Debug, Default)]
pub struct Form<'a> {
    parts: Vec<(String, &'a [u8])>,
}

impl<'a> Form<'a> {
    /// Every part named `name`.
    #[must_use]
    pub fn all(&self, name: &str) -> Vec<&'a [u8]> {
        self.parts.iter().filter(|(n, _)| n == name).map(|(_, c)| *c).collect()
    }

    /// The one text field named `name`, if present.
    ///
    /// # Errors
    /// 400 if it appears more than once or is not UTF-8.
    pub fn single_text(&self, name: &str) -> Result<Option<&'a str>, GatewayError> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [one] => std::str::from_utf8(one)
                .map(Some)
                .map_err(|_| GatewayError::bad_param(name, format!("{name} must be UTF-8 text."))),
            _ => Err(GatewayError::bad_param(name, format!("The form has more than one {name} field."))),
        }
    }
}

fn bad(why: &str) -> GatewayError {
    GatewayError::bad_request(format!("The multipart/form-data body is malformed: {why}."))
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: Option<&str>) -> Result<String, GatewayError> {
    let ct = content_type.ok_or_else(|| bad("no content-type"))?;
    let mut params = ct.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(GatewayError::bad_request("This route takes a multipart/form-data body."));
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else { continue };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            if v.is_empty() || v.len() > 70 {
                return Err(bad("the boundary must be 1-70 characters"));
            }
            return Ok(v.to_string());
        }
    }
    Err(bad("no boundary"))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The `name` parameter of a part's `content-disposition: form-data` header.
fn part_name(headers: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(headers).ok()?;
    let line = text.split("\r\n").find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let value = &line["content-disposition:".len()..];
    let mut params = value.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("name")).then(|| {
            let v = v.trim();
            v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).to_string()
        })
    })
}

/// Splits a form body into named parts.
///
/// # Errors
/// 400 when the content type is not `multipart/form-data` or the body is malformed.
pub fn parse<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Form<'a>, GatewayError> {
    let b = boundary(content_type)?;
    let first = format!("--{b}");
    let delim = format!("\r\n--{b}");
    // The preamble before the first delimiter is ignored (RFC 2046 §5.1.1).
    let start = if body.starts_with(first.as_bytes()) {
        0
    } else {
        find(body, delim.as_bytes(), 0).map(|i| i + 2).ok_or_else(|| bad("no opening delimiter"))?
    };
    let mut at = start + first.len();
    let mut form = Form::default();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(form);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(bad("a delimiter is not followed by a line break"));
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at).ok_or_else(|| bad("a part has no header end"))?;
        let name = part_name(&body[at..head_end]).ok_or_else(|| bad("a part has no form-data name"))?;
        let content_start = head_end + 4;
        let end = find(body, delim.as_bytes(), content_start).ok_or_else(|| bad("no closing delimiter"))?;
        form.parts.push((name, &body[content_start..end]));
        at = end + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn reads_named_parts() {
        let body = b"--XyZ\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\ncontent-type: application/jsonl\r\n\r\n{\"a\":1}\n{\"b\":2}\n\r\n--XyZ--\r\n";
        let form = parse(Some(CT), body).unwrap();
        assert_eq!(form.single_text("purpose").unwrap(), Some("batch"));
        assert_eq!(form.all("file"), vec![&b"{\"a\":1}\n{\"b\":2}\n"[..]]);
        assert_eq!(form.single_text("other").unwrap(), None);
    }

    #[test]
    fn refuses_ambiguity() {
        let dup = b"--XyZ\r\ncontent-disposition: form-data; name=purpose\r\n\r\nbatch\r\n--XyZ\r\ncontent-disposition: form-data; name=purpose\r\n\r\nfine-tune\r\n--XyZ--";
        assert_eq!(parse(Some(CT), dup).unwrap().single_text("purpose").unwrap_err().wire().status, 400);
        for body in [
            &b"--XyZ\r\n\r\nx\r\n--XyZ--"[..],
            b"--XyZ\r\ncontent-disposition: form-data; name=a\r\n\r\nx",
            b"nothing",
            b"",
        ] {
            assert!(parse(Some(CT), body).is_err(), "{body:?}");
        }
        assert!(parse(Some("application/json"), b"{}").is_err());
        assert!(parse(None, b"").is_err());
        assert!(parse(Some("multipart/form-data"), b"").is_err());
    }

    #[test]
    fn never_panics() {
        for body in [&b"--XyZ"[..], b"--XyZ--", b"--XyZ\r", b"--XyZ\r\n", b"--XyZ\r\n\r\n\r\n--XyZ", b"\r\n--XyZ\r\nx"]
        {
            let _ = parse(Some(CT), body);
        }
    }
}
