//! A log channel's event as the store keeps it: a pub/sub message as its JSON envelope
//! without the channel (the store's key names it), numbers as their exact text; a relayed
//! event as its type, data and upstream id, marked `"relayed": true`; a presence change (on
//! a shared bus only) as its message, marked `"presence": true`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::append::{NewMessage, StateUpdate};
use super::event::{Body, Relayed, StateKind};
use crate::wire::document::Document;
use crate::wire::envelope::{Message, PresenceMessage};
use crate::wire::json;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRelayed {
    relayed: bool,
    event: String,
    data: String,
    upstream_id: Option<String>,
    stream: String,
    notice: bool,
    timestamp: u64,
}

/// The stored form of `relayed`, appended at `timestamp`.
pub(super) fn relayed_json(relayed: &Relayed, timestamp: u64) -> Vec<u8> {
    let stored = StoredRelayed {
        relayed: true,
        event: relayed.event.clone(),
        data: relayed.data.clone(),
        upstream_id: relayed.upstream_id.clone(),
        stream: relayed.stream.to_string(),
        notice: relayed.notice,
        timestamp,
    };
    serde_json::to_vec(&stored).expect("a relayed event always serializes")
}

/// A presence change as a shared bus keeps it, marked `"presence": true`.
#[derive(Serialize, Deserialize)]
struct StoredPresence {
    presence: bool,
    message: PresenceMessage,
}

/// The stored form of a presence change.
pub(super) fn presence_json(message: &PresenceMessage) -> Vec<u8> {
    let stored = StoredPresence {
        presence: true,
        message: message.clone(),
    };
    serde_json::to_vec(&stored).expect("a presence change always serializes")
}

/// The event of `channel` stored as `text`, and when it was appended.
pub(super) fn body(channel: &str, text: &[u8]) -> Result<(Body, u64), String> {
    if text.starts_with(br#"{"presence":true"#) {
        let stored: StoredPresence = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let timestamp = stored.message.timestamp;
        return Ok((Body::Presence(stored.message), timestamp));
    }
    if text.starts_with(br#"{"relayed":true"#) {
        let stored: StoredRelayed = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let relayed = Relayed {
            event: stored.event,
            data: stored.data,
            upstream_id: stored.upstream_id,
            stream: Arc::from(stored.stream),
            notice: stored.notice,
        };
        return Ok((Body::Relayed(relayed), stored.timestamp));
    }
    let message = message(channel, text)?;
    let timestamp = message.timestamp;
    Ok((Body::Message(message), timestamp))
}

/// A state channel's event as a shared bus keeps it: its kind, stream, time and JSON.
#[derive(Serialize, Deserialize)]
struct StoredState<'a> {
    #[serde(borrow)]
    state: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    timestamp: u64,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// The stored form of a state event of `kind` with JSON `data`, appended at `timestamp`.
fn state_json(kind: StateKind, stream: &str, data: &str, timestamp: u64) -> Vec<u8> {
    let data = serde_json::value::RawValue::from_string(data.to_owned())
        .expect("a state event's data is JSON");
    let stored = StoredState {
        state: kind.name().into(),
        stream: stream.into(),
        timestamp,
        data: &data,
    };
    serde_json::to_vec(&stored).expect("a state event always serializes")
}

/// The stored forms of a state channel's `update`, appended at `timestamp`: the event, and
/// the document after it as a `data` event of its own (what a reader of the channel starts
/// from) when the update changed it.
pub(super) fn state_forms(update: &StateUpdate, timestamp: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let stream = &update.stream;
    let event = state_json(update.kind, stream, &update.data.text(), timestamp);
    let document = match (update.kind, &update.document) {
        (StateKind::Data, _) => Some(event.clone()),
        (StateKind::Patch, Some(d)) => {
            Some(state_json(StateKind::Data, stream, d.text(), timestamp))
        }
        _ => None,
    };
    (event, document)
}

/// The document a state channel's stored `data` event holds.
pub(super) fn document(text: &[u8]) -> Result<Document, String> {
    match state(text)? {
        (StateKind::Data, _, _, data) => {
            Document::parse(data.as_bytes()).map_err(|e| e.to_string())
        }
        (kind, ..) => Err(format!("a {} event is no document", kind.name())),
    }
}

/// A state event stored as `text`: its kind, stream, time and JSON text.
pub(super) fn state(text: &[u8]) -> Result<(StateKind, Arc<str>, u64, String), String> {
    let stored: StoredState = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let kind = match &*stored.state {
        "data" => StateKind::Data,
        "patch" => StateKind::Patch,
        "error" => StateKind::Error,
        other => return Err(format!("{other:?} is no kind of state event")),
    };
    let data = stored.data.get().to_owned();
    Ok((kind, Arc::from(&*stored.stream), stored.timestamp, data))
}

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
fn message(channel: &str, text: &[u8]) -> Result<Message, String> {
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

    #[test]
    fn a_relayed_event_reads_back_as_it_was_stored() {
        let relayed = Relayed {
            event: "tick".into(),
            data: "{\"n\":1.50E+3}\nline".into(),
            upstream_id: Some("u-7".into()),
            stream: Arc::from("market/ticks"),
            notice: false,
        };
        let (body, timestamp) = body("[relay]r t", &relayed_json(&relayed, 42)).unwrap();
        let Body::Relayed(back) = body else {
            panic!("not a relayed event: {body:?}");
        };
        assert_eq!(timestamp, 42);
        assert_eq!(
            (
                back.event,
                back.data,
                back.upstream_id,
                &*back.stream,
                back.notice
            ),
            (
                relayed.event,
                relayed.data,
                relayed.upstream_id,
                "market/ticks",
                false
            )
        );
    }
}
