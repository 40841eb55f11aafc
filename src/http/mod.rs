//! The HTTP edge of the gateway: which route a request is, the credentials
//! it carries, the headers that may cross, the errors the gateway answers
//! and the one log line written per request.

pub mod auth;
pub mod console;
pub mod encoding;
pub mod error;
pub mod forwarded;
pub mod headers;
pub mod log;
pub mod path;
pub mod route;
