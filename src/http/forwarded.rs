//! Errors answered by another part of the gateway and relayed through it: a
//! tenant's writer object answers admin writes in the admin wire shape, and
//! the worker turns a failure back into the [`GatewayError`] it was, so the
//! answer is built (headers, request id, log line) like any other.

use crate::http::error::GatewayError;

/// The error a forwarded admin answer carries; `None` for a 2xx.
/// `body_limit` is the admin body limit (a 413 states only that).
#[must_use]
pub fn error_of_answer(status: u16, body: &[u8], body_limit: u64) -> Option<GatewayError> {
    if (200..300).contains(&status) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let err = &v["error"];
    let message = err["message"].as_str().map(str::to_string);
    let internal = || GatewayError::Internal { message: "a tenant write failed".into() };
    Some(match (status, message) {
        (400, Some(message)) => GatewayError::BadRequest { message, param: err["param"].as_str().map(str::to_string) },
        (404, Some(message)) => GatewayError::NotFound { message },
        (413, _) => GatewayError::PayloadTooLarge { limit: body_limit },
        _ => internal(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::Shape;

    fn round_trip(e: &GatewayError) -> GatewayError {
        error_of_answer(e.wire().status, &e.body(Shape::OpenAi), 1024).unwrap()
    }

    #[test]
    fn admin_errors_survive_the_trip() {
        for e in [
            GatewayError::bad_param("mcp_servers.crm.url", "must be https"),
            GatewayError::bad_request("Request body is empty."),
            GatewayError::NotFound { message: "Tenant 'x' does not exist.".into() },
            GatewayError::PayloadTooLarge { limit: 1024 },
        ] {
            assert_eq!(round_trip(&e), e);
        }
        assert!(matches!(
            round_trip(&GatewayError::Internal { message: "KV write failed".into() }),
            GatewayError::Internal { .. }
        ));
        assert!(matches!(error_of_answer(503, b"", 1), Some(GatewayError::Internal { .. })));
        assert!(error_of_answer(200, b"{}", 1).is_none());
        assert!(error_of_answer(204, b"", 1).is_none());
    }
}
