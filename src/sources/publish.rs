//! Turning a publish request body into messages for the hub.
//!
//! A body sent as JSON (`Content-Type: application/json` or `*/*+json`) must be one message
//! object or a non-empty array of them; a body of any other type is one message whose data
//! is the body as a string (base64 with `encoding: "base64"` when it is not UTF-8).

use base64::Engine;
use serde_json::Value;

use crate::hub::{Hub, NewMessage};
use crate::wire::envelope::ErrorInfo;
use crate::wire::json;

/// The members a message object may have.
const MEMBERS: &str = "name, data, id, encoding";

pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Parses a publish body. Errors are 40000 with the reason and where it was found.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Vec<NewMessage>, ErrorInfo> {
    if !is_json(content_type) {
        let (data, encoding) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(body),
                Some("base64".to_owned()),
            ),
        };
        return Ok(vec![NewMessage {
            id: None,
            name: None,
            encoding,
            data: Value::String(data),
        }]);
    }
    // Parse to a Value first so syntax errors keep their line and column; the shape check
    // after it gives the field-level reason. Numbers keep the text they were sent as.
    let value = json::parse(body)
        .map_err(|e| ErrorInfo::bad_request(format!("request body is not valid JSON: {e}")))?;
    let messages = match value {
        Value::Object(_) => vec![message(value)?],
        Value::Array(items) if !items.is_empty() => {
            items.into_iter().map(message).collect::<Result<_, _>>()?
        }
        Value::Array(_) => {
            return Err(ErrorInfo::bad_request("the message array is empty"));
        }
        _ => {
            return Err(ErrorInfo::bad_request(
                "a JSON body must be a message object {\"name\"?, \"data\", \"id\"?, \
                 \"encoding\"?} or an array of them; send other payloads as text/plain",
            ));
        }
    };
    Ok(messages)
}

/// Refuses a batch the hub must not take: one larger than a channel's history (its own live
/// subscribers would find its first messages already gone), or one giving an id in the
/// gateway's own form (see `Hub::reserves_id`).
pub fn check_batch(messages: &[NewMessage], hub: &Hub) -> Result<(), ErrorInfo> {
    let size = hub.limits().size;
    if messages.len() > size {
        return Err(ErrorInfo::bad_request(format!(
            "a batch of {} messages is more than a channel keeps ([channels] history_size = \
             {size}); publish at most {size} messages per request",
            messages.len()
        )));
    }
    if let Some(id) = messages
        .iter()
        .filter_map(|m| m.id.as_deref())
        .find(|id| hub.reserves_id(id))
    {
        return Err(ErrorInfo::bad_request(format!(
            "invalid message: id {id:?} is in the form the gateway gives messages published \
             without an id ({epoch}:n); choose an id that does not start with \"{epoch}:\"",
            epoch = hub.epoch()
        )));
    }
    Ok(())
}

fn message(value: Value) -> Result<NewMessage, ErrorInfo> {
    let invalid = |reason: String| ErrorInfo::bad_request(format!("invalid message: {reason}"));
    let Value::Object(mut members) = value else {
        return Err(invalid(format!("a message is an object with {MEMBERS}")));
    };
    let mut text = |field: &str| match members.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    };
    let (name, id, encoding) = (text("name")?, text("id")?, text("encoding")?);
    let data = members
        .remove("data")
        .ok_or_else(|| invalid("missing field `data`".into()))?;
    if let Some(field) = members.keys().next() {
        return Err(invalid(format!(
            "unknown field `{field}`, expected one of {MEMBERS}"
        )));
    }
    if id.as_deref() == Some("") {
        return Err(invalid("id must not be empty".into()));
    }
    Ok(NewMessage {
        id,
        name,
        encoding,
        data,
    })
}
