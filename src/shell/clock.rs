//! The one clock of the shell: the runtime's `Date.now()`. Inside a request
//! workerd advances it only across I/O, which is what every caller wants
//! (durations between awaits, expiry checks, day buckets).

/// Milliseconds since the Unix epoch.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// The current time as RFC 3339 (`2026-11-26T03:00:00.000Z`).
pub fn now_iso() -> String {
    js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default()
}
