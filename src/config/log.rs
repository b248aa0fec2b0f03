//! `[log]`: how the gateway logs (to stderr).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (colours on a terminal only) or `json` (one object per line).
    pub format: LogFormat,
    /// One line per request (`info`, target `streamgate::access`): method, path without the
    /// gateway's credential parameters, status, bytes sent, duration, client address.
    pub access: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
