//! What clients name, checked alike on every surface: channels, and the query parameters
//! that are the gateway's own. The hub keeps names as given; the `[` prefix this refuses is
//! how it tells the channels of polls and relays from the ones clients name.

use crate::wire::envelope::ErrorInfo;

/// The gateway's own query parameters, the same on every surface: credentials, resume and
/// stream form (Ably's), and polling (Streamdata's). A poll or relay consumes them: they
/// never go upstream, whatever the surface makes of them.
pub const GATEWAY_PARAMETERS: [&str; 11] = [
    "key",
    "accessToken",
    "X-Sd-Token",
    "lastEvent",
    "rewind",
    "enveloped",
    "heartbeats",
    "X-Sd-Header",
    "pollInterval",
    "mode",
    "select",
];

/// The longest channel name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks a channel name (after URL-decoding and qualifier removal).
pub fn validate_name(name: &str) -> Result<(), ErrorInfo> {
    if name.is_empty() {
        return Err(ErrorInfo::bad_request("channel name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ErrorInfo::bad_request(format!(
            "channel name is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ErrorInfo::bad_request(
            "channel name contains a control character",
        ));
    }
    if name.starts_with('[') {
        return Err(ErrorInfo::bad_request(format!(
            "unsupported channel qualifier in {name:?}: a name may not start with [ (a \
             stream's channel list takes [?rewind=N&presence]name)"
        )));
    }
    Ok(())
}
