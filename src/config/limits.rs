//! `[limits]`: what one client, one key or the whole gateway may use.
//!
//! Exceeding a limit is a clear error (an ErrorInfo with its own status and code, see
//! docs/LIMITS.md), counted in `streamgate_limit_refusals_total`, never a crash. The largest
//! publish body stays `[channels] max_message_bytes`.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::at_least_one;

/// The smallest `max_header_bytes`: below it even a bare request line with a few ordinary
/// headers would be refused.
const MIN_HEADER_BYTES: usize = 1024;
/// The largest `max_header_bytes`: the HTTP parser buffers a whole request head per
/// connection, so this bounds what one connection can make the gateway hold.
const MAX_HEADER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Client TCP connections open at once, over all addresses.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: usize,
    /// Client TCP connections open at once from one IP address.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections_per_ip: usize,
    /// Messages per second one key (or token client id; an anonymous publisher by its IP
    /// address) may publish, on average. 0: unlimited.
    pub publish_rate_per_key: u32,
    /// Messages a key may publish at once, above the average rate; defaults to one second's
    /// worth (`publish_rate_per_key`).
    pub publish_burst: Option<NonZeroU32>,
    /// Largest request head (request line and header fields).
    #[serde(deserialize_with = "header_bytes")]
    pub max_header_bytes: usize,
    /// Largest request body the gateway reads, except a publish (`[channels]
    /// max_message_bytes`) and what a passthrough relay streams on.
    #[serde(deserialize_with = "at_least_one")]
    pub max_body_bytes: usize,
    /// Bytes of request bodies the gateway holds at once, over all requests being read or
    /// handled (a passthrough relay's streamed body excepted).
    pub max_body_buffer_bytes: usize,
    /// Channels and polled streams one connection may carry.
    #[serde(deserialize_with = "at_least_one")]
    pub max_streams_per_connection: usize,
    /// How long a request head may take to arrive, and then its body (a passthrough relay's
    /// streamed body excepted), in milliseconds.
    #[serde(deserialize_with = "at_least_one")]
    pub read_timeout_ms: u64,
    /// How long a client's socket may accept nothing of what the gateway writes to it before
    /// the connection is closed, in milliseconds.
    #[serde(deserialize_with = "at_least_one")]
    pub write_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 100_000,
            max_connections_per_ip: 10_000,
            publish_rate_per_key: 0,
            publish_burst: None,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            max_body_buffer_bytes: 64 * 1024 * 1024,
            max_streams_per_connection: 1000,
            read_timeout_ms: 30_000,
            write_timeout_ms: 60_000,
        }
    }
}

impl LimitsConfig {
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// Checks that involve several keys.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.publish_burst.is_some() && self.publish_rate_per_key == 0 {
            return Err(
                "[limits] publish_burst is set but publish_rate_per_key is 0 (unlimited); \
                 set publish_rate_per_key too, or remove publish_burst"
                    .into(),
            );
        }
        Ok(())
    }
}

fn header_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let value = usize::deserialize(deserializer)?;
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"
        )));
    }
    Ok(value)
}
