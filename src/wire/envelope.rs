//! The JSON shapes clients see: Ably's `Message`, `PresenceMessage` and `ErrorInfo`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A published message as it is stored and delivered (Ably's Message object).
///
/// Every key is always present (`null` when absent) so clients can rely on the shape.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub name: Option<String>,
    /// Milliseconds since the Unix epoch, stamped by the gateway on publish.
    pub timestamp: u64,
    pub encoding: Option<String>,
    pub channel: String,
    pub data: Value,
}

/// Ably's PresenceMessage, with the channel it is of (as a `Message` says its own): a
/// member entering, updating its data or leaving, or, in a list of members, being there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresenceMessage {
    pub id: String,
    pub action: PresenceAction,
    #[serde(rename = "clientId")]
    pub client_id: String,
    /// The stream a member entered with (it leaves when the stream closes); none for a
    /// member that entered over REST.
    #[serde(rename = "connectionId", skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// Milliseconds since the Unix epoch, stamped by the gateway.
    pub timestamp: u64,
    pub channel: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceAction {
    Enter,
    Update,
    Leave,
    Present,
}

/// Ably's ErrorInfo: the body of every error, before a stream opens and inside it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorInfo {
    pub message: String,
    pub code: u32,
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub href: String,
}

impl ErrorInfo {
    /// Builds an error whose HTTP status is the first three digits of the code, as in Ably's
    /// scheme (40101 → 401, 50300 → 503), pointing at the code's entry in the error reference
    /// the gateway serves (`docs/ERRORS.md`).
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        let status_code = u16::try_from(code / 100).unwrap_or(500);
        ErrorInfo {
            message: message.into(),
            code,
            status_code,
            href: format!("/docs/errors#{code}"),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(codes::BAD_REQUEST, message)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ErrorInfo always serializes")
    }
}

/// The error codes, named; `docs/ERRORS.md` says what each means.
pub mod codes {
    pub const BAD_REQUEST: u32 = 40000;
    pub const BAD_CREDENTIALS: u32 = 40101;
    pub const TOKEN_EXPIRED: u32 = 40142;
    pub const NOT_PERMITTED: u32 = 40160;
    pub const FORBIDDEN: u32 = 40300;
    pub const NOT_FOUND: u32 = 40400;
    /// A resume id names a connection this process does not know (it restarted, or the
    /// connection expired): its streams are gone and must be subscribed again.
    pub const UNKNOWN_CONNECTION: u32 = 40410;
    pub const METHOD_NOT_ALLOWED: u32 = 40500;
    pub const HISTORY_GAP: u32 = 40900;
    /// A slow client's pub/sub stream skipped messages (`[channels] overflow = "skip"`).
    pub const OVERFLOW_SKIPPED: u32 = 40910;
    /// A slow client's stream was ended (`[channels] overflow = "disconnect"`).
    pub const OVERFLOW_DISCONNECT: u32 = 40920;
    /// An admin entry of that name exists.
    pub const CONFLICT: u32 = 40930;
    /// A request body that did not arrive within `[limits] read_timeout_ms`.
    pub const REQUEST_TIMEOUT: u32 = 40800;
    pub const TOO_LARGE: u32 = 41300;
    /// A key published faster than `[limits] publish_rate_per_key` allows.
    pub const RATE_LIMITED: u32 = 42910;
    /// A request head larger than `[limits] max_header_bytes`.
    pub const HEADERS_TOO_LARGE: u32 = 43100;
    pub const INTERNAL: u32 = 50000;
    pub const UNAVAILABLE: u32 = 50300;
    /// A connection over `[limits] max_connections` or `max_connections_per_ip`.
    pub const TOO_MANY_CONNECTIONS: u32 = 50301;
}
