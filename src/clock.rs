//! Wall-clock time as the gateway stamps and compares it: event timestamps, history age,
//! token expiry. One reading for every layer, so none has to reach into the hub for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
