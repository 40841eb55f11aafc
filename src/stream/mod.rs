//! What the gateway does to a provider's answer as it streams back:
//! scrubbing injected secrets, metering usage, and ending a broken SSE
//! stream with the provider's own error event.

pub mod deltas;
pub mod framer;
pub mod matcher;
pub mod scrub;
pub mod sse;
pub mod usage;
