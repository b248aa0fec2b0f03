//! A pub/sub message as the store keeps it: its JSON envelope without the channel (the
//! store's key names it), numbers as their exact text.

use serde::Serialize;
use serde_json::Value;

use super::append::NewMessage;
use crate::wire::envelope::Message;
use crate::wire::json;

#[derive(Serialize)]
struct Stored<'a> {
    id: &'a str,
    name: Option<&'a str>,
    timestamp: u64,
    encoding: Option<&'a str>,
    data: &'a Value,
}

/// The stored form of `message` (whose id is set) published at `timestamp`.
pub(super) fn json(message: &NewMessage, timestamp: u64) -> Vec<u8> {
    let stored = Stored {
        id: message.id.as_deref().unwrap_or_default(),
        name: message.name.as_deref(),
        timestamp,
        encoding: message.encoding.as_deref(),
        data: &message.data,
    };
    serde_json::to_vec(&stored).expect("a message always serializes")
}

/// The message of `channel` stored as `text`.
pub(super) fn message(channel: &str, text: &[u8]) -> Result<Message, String> {
    let Value::Object(mut stored) = json::parse(text).map_err(|e| e.to_string())? else {
        return Err("not a JSON object".into());
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(Message {
        id: text(stored.remove("id")).ok_or("no id")?,
        name: text(stored.remove("name")),
        timestamp: stored
            .remove("timestamp")
            .and_then(|t| t.as_u64())
            .ok_or("no timestamp")?,
        encoding: text(stored.remove("encoding")),
        channel: channel.to_owned(),
        data: stored.remove("data").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_it_was_stored() {
        let data = json::parse(br#"{"n":1.50E+3,"s":"\u00e9"}"#).unwrap();
        let new = NewMessage {
            id: Some("m-1".into()),
            name: Some("tick".into()),
            encoding: None,
            data: data.clone(),
        };
        let message = message("c", &json(&new, 42)).unwrap();
        assert_eq!(message.id, "m-1");
        assert_eq!(message.name.as_deref(), Some("tick"));
        assert_eq!(message.timestamp, 42);
        assert_eq!(message.channel, "c");
        assert_eq!(message.data.to_string(), data.to_string());
        assert!(super::message("c", b"[1]").is_err());
    }
}
