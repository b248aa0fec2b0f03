//! `GET /admin/openapi.json`: the OpenAPI 3.1 document of the admin API. It describes the
//! API, not the gateway's data, so it is served without credentials (API tools fetch it
//! before they have any).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn openapi() -> Response {
    Json(document()).into_response()
}

fn document() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
        })
    };
    let entry = json!({ "$ref": "#/components/schemas/Entry" });
    let kind = json!({
        "name": "kind", "in": "path", "required": true,
        "description": "Which entries: `apis` ([[api]]), `relays` ([[relay]]) or `keys` ([[key]]).",
        "schema": { "type": "string", "enum": ["apis", "relays", "keys"] },
    });
    let name = json!({
        "name": "name", "in": "path", "required": true,
        "schema": { "type": "string" },
    });
    let one = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": entry } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "streamgate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Changes the APIs, relays and keys while the gateway serves; \
                changes take effect at once and are stored next to the config file. Secrets \
                are shown as \"<redacted>\"; sending that placeholder back keeps the stored \
                value. Every operation needs the `admin` capability on the resource `admin`; until \
                some credential may have it (a key with it, or token keys), every operation \
                is 403 (40300).",
        },
        "security": [{ "basic": [] }, { "bearer": [] }, { "key": [] }],
        "paths": {
            "/admin/{kind}": {
                "parameters": [kind],
                "get": {
                    "summary": "List the entries",
                    "responses": {
                        "200": { "description": "The entries, secrets redacted",
                            "content": { "application/json": { "schema": { "type": "array", "items": entry } } } },
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                        "404": error("No such kind (40400)"),
                    },
                },
                "post": {
                    "summary": "Add an entry",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": entry } } },
                    "responses": {
                        "201": one("Added and in effect"),
                        "400": error("Not a valid entry, or the config it makes is not valid (40000)"),
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                        "409": error("An entry has this name (40930)"),
                    },
                },
            },
            "/admin/{kind}/{name}": {
                "parameters": [kind, name],
                "get": {
                    "summary": "Read one entry",
                    "responses": {
                        "200": one("The entry, secrets redacted"),
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                        "404": error("No such entry (40400)"),
                    },
                },
                "put": {
                    "summary": "Create or replace an entry",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": entry } } },
                    "responses": {
                        "200": one("Replaced and in effect"),
                        "201": one("Created and in effect"),
                        "400": error("Not a valid entry, or the config it makes is not valid (40000)"),
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                    },
                },
                "delete": {
                    "summary": "Remove an entry",
                    "responses": {
                        "204": { "description": "Removed; streams already open run until their clients leave" },
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                        "404": error("No such entry (40400)"),
                    },
                },
            },
            "/admin/stats": {
                "get": {
                    "summary": "Live channels, upstream topics and connections",
                    "responses": {
                        "200": { "description": "The stats",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Stats" } } } },
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                    },
                },
            },
            "/admin/import/asyncapi": {
                "post": {
                    "summary": "Add the relays an AsyncAPI document (JSON, 2.x or 3.0) describes, all or none",
                    "requestBody": { "required": true,
                        "content": { "application/json": { "schema": { "type": "object" } } } },
                    "responses": {
                        "201": { "description": "The relays added, and what was skipped and why",
                            "content": { "application/json": { "schema": { "type": "object",
                                "properties": {
                                    "relays": { "type": "array", "items": { "$ref": "#/components/schemas/Entry" } },
                                    "skipped": { "type": "array", "items": { "type": "string" } },
                                } } } } },
                        "400": error("Not JSON, not AsyncAPI, nothing that maps to a relay, or a relay that is not valid (40000)"),
                        "401": error("No, bad or insufficient credentials (40101, 40142, 40160)"),
                        "409": error("A relay of that name exists (40930)"),
                    },
                },
            },
            "/admin/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": { "200": { "description": "OpenAPI 3.1" } },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "basic", "description": "An API key name:secret" },
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "key": { "type": "apiKey", "in": "query", "name": "key", "description": "An API key name:secret" },
            },
            "schemas": {
                "Entry": {
                    "type": "object",
                    "required": ["name"],
                    "description": "An [[api]], [[relay]] or [[key]] entry with the keys of the config file \
                        (see docs/POLLING.md, docs/RELAYS.md, docs/SECURITY.md).",
                    "properties": { "name": { "type": "string" } },
                    "additionalProperties": true,
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "code", "statusCode", "href"],
                            "properties": {
                                "message": { "type": "string" },
                                "code": { "type": "integer" },
                                "statusCode": { "type": "integer" },
                                "href": { "type": "string" },
                            },
                        },
                    },
                },
                "Stats": {
                    "type": "object",
                    "properties": {
                        "channels": { "type": "array", "items": { "type": "object", "properties": {
                            "name": { "type": "string" }, "kind": { "enum": ["log", "state"] },
                            "head": { "type": "integer" }, "retained": { "type": "integer" },
                            "subscribers": { "type": "integer" } } } },
                        "topics": { "type": "object", "properties": {
                            "polls": { "type": "array", "items": { "type": "object", "properties": {
                                "url": { "type": "string" }, "intervalMs": { "type": "integer" },
                                "parts": { "type": "integer" }, "subscribers": { "type": "integer" },
                                "requests": { "type": "integer" }, "lastStatus": { "type": "integer" } } } },
                            "relays": { "type": "array", "items": { "type": "object", "properties": {
                                "stream": { "type": "string" }, "url": { "type": "string" },
                                "connected": { "type": "boolean" }, "connects": { "type": "integer" },
                                "events": { "type": "integer" }, "lastFailure": { "type": "integer" },
                                "subscribers": { "type": "integer" } } } } } },
                        "connections": { "type": "object", "properties": {
                            "open": { "type": "integer" }, "resumable": { "type": "integer" } } },
                    },
                },
            },
        },
    })
}
