//! The `components` of the AsyncAPI document: message payload schemas and security schemes
//! that channels and operations refer to.

use serde_json::{Value, json};

use super::str_prop;

/// Messages, payload schemas and security schemes every channel refers to.
pub fn components() -> Value {
    let failure = |extra: Option<(&str, Value)>| {
        let mut schema = json!({
            "type": "object",
            "required": ["status", "cause", "message", "timestamp", "sessionId"],
            "properties": {
                "status": {
                    "type": "integer",
                    "description": "The upstream's HTTP status, or 2000 connect, 2001 TLS, \
                        2002 timeout, 2003 not JSON, 2004 too large, 2005 refused, \
                        2006 upstream closed, 2007 not SSE.",
                },
                "cause": str_prop("A short machine-readable cause, e.g. `status`, `tls`."),
                "message": str_prop("What went wrong, for people."),
                "timestamp": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
                "sessionId": str_prop("The poller's or relay's session."),
            },
        });
        if let Some((name, prop)) = extra {
            if let Some(required) = schema["required"].as_array_mut() {
                required.push(name.into());
            }
            schema["properties"][name] = prop;
        }
        schema
    };
    json!({
        "schemas": {
            "AblyMessage": {
                "type": "object",
                "description": "Ably's Message object; every key is present (null when absent).",
                "required": ["id", "name", "timestamp", "encoding", "channel", "data"],
                "properties": {
                    "id": str_prop("The message id (the publisher's, or one the gateway made)."),
                    "name": { "type": ["string", "null"], "description": "The event name." },
                    "timestamp": { "type": "integer", "description": "Milliseconds since the Unix epoch, stamped on publish." },
                    "encoding": { "type": ["string", "null"], "description": "How `data` is encoded, as in Ably." },
                    "channel": str_prop("The channel the message was published to."),
                    "data": { "description": "The payload: any JSON value." },
                },
            },
            "PresenceMessage": {
                "type": "object",
                "description": "Ably's PresenceMessage, with the channel it is of.",
                "required": ["id", "action", "clientId", "timestamp", "channel"],
                "properties": {
                    "id": str_prop("The presence message's id."),
                    "action": { "type": "string", "enum": ["enter", "update", "leave", "present"] },
                    "clientId": str_prop("The member: the clientId of its credential."),
                    "connectionId": str_prop("The stream the member entered with (absent when it entered over REST)."),
                    "data": { "description": "The member's data: any JSON value (absent when none)." },
                    "timestamp": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
                    "channel": str_prop("The channel."),
                },
            },
            "PresenceChange": {
                "type": "object",
                "required": ["action"],
                "properties": {
                    "action": { "type": "string", "enum": ["enter", "update", "leave"] },
                    "data": { "description": "The member's data: any JSON value." },
                },
            },
            "ErrorInfo": {
                "type": "object",
                "description": "Ably's ErrorInfo.",
                "required": ["message", "code", "statusCode", "href"],
                "properties": {
                    "message": str_prop("What went wrong."),
                    "code": { "type": "integer", "description": "Ably error code, e.g. 40142 token expired, 40900 history gap." },
                    "statusCode": { "type": "integer", "description": "The matching HTTP status." },
                    "href": str_prop("A help link for the code."),
                },
            },
            "PublishedMessage": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "name": str_prop("The event name."),
                    "data": { "description": "The payload: any JSON value." },
                    "id": str_prop("Makes the publish idempotent within the history window."),
                    "encoding": str_prop("How `data` is encoded."),
                },
            },
            "JsonDocument": {
                "description": "The target's JSON document (or the part `select` names): any JSON value.",
            },
            "JsonPatch": {
                "type": "array",
                "description": "An RFC 6902 JSON Patch, applied in order to the document.",
                "items": {
                    "type": "object",
                    "required": ["op", "path"],
                    "properties": {
                        "op": { "type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"] },
                        "path": str_prop("A JSON Pointer into the document."),
                        "value": { "description": "The new value (add, replace, test)." },
                        "from": str_prop("A JSON Pointer (move, copy)."),
                    },
                },
            },
            "PollError": failure(None),
            "RelayError": failure(Some(("retryMs", json!({
                "type": "integer",
                "description": "Milliseconds until the relay reconnects upstream.",
            })))),
        },
        "messages": {
            "ablyMessage": {
                "name": "message",
                "title": "Message",
                "summary": "SSE `event: message`: a published message.",
                "description": "`data:` is the Message object with `enveloped=true` (the \
                    default), else the message's bare `data`.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/AblyMessage" },
            },
            "presence": {
                "name": "presence",
                "title": "Presence",
                "summary": "SSE `event: presence` (with `presence=true`): a member entered, updated its data or left.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/PresenceMessage" },
            },
            "presenceChange": {
                "name": "presenceChange",
                "title": "Presence change",
                "summary": "Enter, update or leave, for the credential's clientId.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/PresenceChange" },
            },
            "ablyError": {
                "name": "error",
                "title": "Stream error",
                "summary": "SSE `event: error`: e.g. a history gap, an expired token.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/ErrorInfo" },
            },
            "publish": {
                "name": "publish",
                "title": "Publish request",
                "summary": "One message, an array of them, or any non-JSON body (taken as `data`, a string).",
                "contentType": "application/json",
                "payload": {
                    "anyOf": [
                        { "$ref": "#/components/schemas/PublishedMessage" },
                        { "type": "array", "items": { "$ref": "#/components/schemas/PublishedMessage" } },
                        { "type": "string" },
                    ],
                },
            },
            "pollData": {
                "name": "data",
                "title": "Document",
                "summary": "SSE `event: data`: the whole JSON document, first and after a gap.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/JsonDocument" },
            },
            "pollPatch": {
                "name": "patch",
                "title": "Patch",
                "summary": "SSE `event: patch`: an RFC 6902 JSON Patch to the last document.",
                "contentType": "application/json-patch+json",
                "payload": { "$ref": "#/components/schemas/JsonPatch" },
            },
            "pollError": {
                "name": "error",
                "title": "Target error",
                "summary": "SSE `event: error`: the target failed; the stream stays open and recovers.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/PollError" },
            },
            "relayEvent": {
                "title": "Upstream event",
                "summary": "An upstream event: its own `event:` type and `data:`, a gateway `id:`.",
                "contentType": "text/plain",
                "payload": { "type": "string", "description": "The upstream event's data." },
            },
            "relayError": {
                "name": "error",
                "title": "Upstream error",
                "summary": "SSE `event: error`: the upstream failed or closed; the relay reconnects.",
                "contentType": "application/json",
                "payload": { "$ref": "#/components/schemas/RelayError" },
            },
            "passthroughEvent": {
                "title": "Proxied event",
                "summary": "The upstream's events, exactly as it sends them.",
                "contentType": "text/event-stream",
                "payload": { "type": "string" },
            },
        },
        "securitySchemes": {
            "apiKey": {
                "type": "httpApiKey",
                "name": "key",
                "in": "query",
                "description": "An API key `name:secret`.",
            },
            "basic": {
                "type": "http",
                "scheme": "basic",
                "description": "An API key `name:secret` as HTTP Basic credentials.",
            },
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A JWT (HS256, RS256 or ES256) carrying capabilities; also \
                    accepted as the `accessToken` query parameter.",
            },
            "accessToken": {
                "type": "httpApiKey",
                "name": "accessToken",
                "in": "query",
                "description": "A JWT, as with `Authorization: Bearer`.",
            },
            "sdToken": {
                "type": "httpApiKey",
                "name": "X-Sd-Token",
                "in": "query",
                "description": "An API key `name:secret`, as Streamdata.io clients send it.",
            },
        },
    })
}
