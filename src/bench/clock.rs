//! Wall-clock time as Unix microseconds.
//!
//! Send and receive times are taken in different processes (the publisher and the subscriber
//! children), so they must come from a clock all processes share; a monotonic `Instant`
//! cannot cross a process boundary.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
