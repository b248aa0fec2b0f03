//! `GET /asyncapi.json` and `/asyncapi.yaml`: the document is valid AsyncAPI 3.0.0 (the
//! official JSON Schema, plus the reference rules a schema cannot check), names every API
//! and relay topic, leaks no upstream secret, and both encodings say the same. `GET /`, the
//! page for people, says the same and leaks nothing either.

mod common;

use std::collections::BTreeSet;

use common::{Server, client};
use serde_json::{Value, json};

/// `schemas/3.0.0.json` of npm `@asyncapi/specs` (see tests/fixtures/README.md).
const SCHEMA: &str = include_str!("fixtures/asyncapi-3.0.0.schema.json");

/// Values that must never leave the gateway.
const SECRETS: [&str; 6] = [
    "planted-secret-123",
    "planted-query-456",
    "planted-relay-secret",
    "planted-pass",
    "planted-upstream-query",
    "planted-raw-secret",
];

const CONFIG: &str = r#"
[poll]
allowed_targets = ["https://api.example.com/*", "http://127.0.0.1:*/*?k=planted-query-456"]

[[api]]
name = "weather"
base_url = "https://user:planted-pass@weather.example.com/v2?apikey=planted-query-456"
headers = { Authorization = "Bearer planted-secret-123" }
query = { token = "planted-query-456" }
interval_ms = 2000

[[api]]
name = "odd name+x"
base_url = "https://odd.example.com/"

[[relay]]
name = "market"
listen_path = "/market/{version}"
version = "v1"
upstream = "http://127.0.0.1:9/base?token=planted-upstream-query"
topics = { quotes = "/feed/quotes", "news/*" = "/news/*" }
headers = { Authorization = "Bearer planted-relay-secret" }
forward_headers = ["X-Tenant"]
mode = "shared"
linger_ms = 100

[[relay]]
name = "raw"
listen_path = "/raw"
upstream = "http://127.0.0.1:9/"
headers = { X-Api-Key = "planted-raw-secret" }
mode = "passthrough"
idle_timeout_ms = 1000
"#;

async fn fetch(server: &Server, path: &str, content_type: &str) -> String {
    let resp = client().get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    assert_eq!(resp.headers()["content-type"], content_type, "GET {path}");
    resp.text().await.unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    // Offline: the schema's `$ref`s point at `$id`s embedded in it (and at draft-07,
    // which the crate ships).
    jsonschema::validator_for(&schema).expect("the AsyncAPI schema compiles offline")
}

/// Schema errors, for the assertion message.
fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// What the AsyncAPI spec requires beyond its JSON Schema: local `$ref`s resolve, an
/// operation's messages belong to its channel, and address expressions are parameters.
fn semantic_errors(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in &refs {
        let resolves = r
            .strip_prefix('#')
            .is_some_and(|pointer| doc.pointer(pointer).is_some());
        if !resolves {
            errors.push(format!("$ref {r} does not resolve"));
        }
    }
    for (id, op) in doc["operations"].as_object().into_iter().flatten() {
        let Some(channel) = op["channel"]["$ref"].as_str() else {
            errors.push(format!("operation {id} has no channel $ref"));
            continue;
        };
        for m in op["messages"].as_array().into_iter().flatten() {
            let m = m["$ref"].as_str().unwrap_or_default();
            if !m.starts_with(&format!("{channel}/messages/")) {
                errors.push(format!("operation {id}: {m} is not a message of {channel}"));
            }
        }
    }
    for (id, channel) in doc["channels"].as_object().into_iter().flatten() {
        let address = channel["address"].as_str().unwrap_or_default();
        let expressions: BTreeSet<&str> = address
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect();
        let parameters: BTreeSet<&str> = channel["parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        if expressions != parameters {
            errors.push(format!(
                "channel {id}: address {address} vs parameters {parameters:?}"
            ));
        }
    }
    errors
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors = schema_errors(validator, doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{doc:#}");
    let errors = semantic_errors(doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

fn addresses(doc: &Value) -> BTreeSet<String> {
    doc["channels"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["address"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn document_is_valid_complete_and_keeps_secrets() {
    let server = Server::start(CONFIG);
    let text = fetch(&server, "/asyncapi.json", "application/json").await;
    let yaml = fetch(&server, "/asyncapi.yaml", "application/yaml").await;
    let doc: Value = serde_json::from_str(&text).unwrap();

    let validator = validator();
    assert_valid(&validator, &doc);

    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "streamgate");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let gateway = &doc["servers"]["gateway"];
    assert_eq!(gateway["protocol"], "http");
    assert_eq!(
        gateway["host"].as_str(),
        server.base.strip_prefix("http://")
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["apiKey"],
        json!({"type": "httpApiKey", "name": "key", "in": "query",
               "description": schemes["apiKey"]["description"]})
    );
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["accessToken"]["name"], "accessToken");
    assert_eq!(schemes["sdToken"]["name"], "X-Sd-Token");
    assert_eq!(gateway["security"].as_array().unwrap().len(), 5);

    // Every channel: pub/sub, both APIs, ad-hoc polling, each relay topic.
    let expected: BTreeSet<String> = [
        "{channel}",
        "/apis/weather/{path}",
        "/apis/odd%20name+x/{path}",
        "/{targetUrl}",
        "/market/v1/quotes",
        "/market/v1/news/{path}",
        "/raw/{path}",
    ]
    .map(String::from)
    .into();
    assert_eq!(addresses(&doc), expected);
    let ops = doc["operations"].as_object().unwrap();
    assert_eq!(ops["subscribe"]["action"], "receive");
    assert_eq!(ops["publish"]["action"], "send");
    assert_eq!(ops["publish"]["bindings"]["http"]["method"], "POST");
    assert_eq!(ops["presence"]["action"], "send");
    assert_eq!(ops.len(), 9, "{:?}", ops.keys().collect::<Vec<_>>());
    let presence = &doc["components"]["schemas"]["PresenceMessage"]["properties"];
    for key in [
        "id",
        "action",
        "clientId",
        "connectionId",
        "data",
        "timestamp",
        "channel",
    ] {
        assert!(presence.get(key).is_some(), "PresenceMessage.{key}");
    }
    let ably = &doc["components"]["schemas"]["AblyMessage"]["properties"];
    for key in ["id", "name", "timestamp", "encoding", "channel", "data"] {
        assert!(ably.get(key).is_some(), "Message.{key}");
    }
    let messages = &doc["components"]["messages"];
    assert_eq!(messages["pollPatch"]["name"], "patch");
    assert_eq!(
        doc["components"]["schemas"]["JsonPatch"]["type"], "array",
        "a JSON Patch is an array of operations"
    );
    assert!(
        doc["components"]["schemas"]["RelayError"]["properties"]
            .get("retryMs")
            .is_some()
    );
    // The relays' modes, and the upstream host (named, without its query).
    let channels = doc["channels"].as_object().unwrap();
    let by_address = |a: &str| channels.values().find(|c| c["address"] == a).unwrap();
    let quotes = by_address("/market/v1/quotes");
    assert!(quotes["messages"].get("error").is_some());
    let described = quotes["description"].as_str().unwrap();
    assert!(
        described.contains("http://127.0.0.1:9/base/feed/quotes"),
        "{described}"
    );
    assert!(described.contains("X-Tenant"), "{described}");
    let raw = by_address("/raw/{path}");
    assert!(raw["description"].as_str().unwrap().contains("1:1"));
    assert!(raw["messages"].get("error").is_none());
    let weather = by_address("/apis/weather/{path}");
    assert!(
        weather["description"]
            .as_str()
            .unwrap()
            .contains("https://weather.example.com/v2")
    );

    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in the JSON document");
        assert!(!yaml.contains(secret), "{secret} in the YAML document");
    }

    // The YAML, read by an independent parser, is the same document.
    let from_yaml: Value = serde_saphyr::from_str(&yaml).expect("the YAML parses");
    assert_eq!(from_yaml, doc);
}

#[tokio::test]
async fn the_schema_check_rejects_broken_documents() {
    let server = Server::start(CONFIG);
    let text = fetch(&server, "/asyncapi.json", "application/json").await;
    let doc: Value = serde_json::from_str(&text).unwrap();
    let validator = validator();
    assert_valid(&validator, &doc);

    let broken = |change: &dyn Fn(&mut Value)| {
        let mut copy = doc.clone();
        change(&mut copy);
        copy
    };
    for (why, bad) in [
        (
            "no asyncapi version",
            broken(&|d| {
                d.as_object_mut().unwrap().remove("asyncapi");
            }),
        ),
        (
            "channel is not a Reference",
            broken(&|d| d["operations"]["subscribe"]["channel"] = json!("#/channels/channels")),
        ),
        (
            "AsyncAPI 2 verb",
            broken(&|d| d["operations"]["publish"]["action"] = json!("publish")),
        ),
        (
            "server without protocol",
            broken(&|d| {
                d["servers"]["gateway"]
                    .as_object_mut()
                    .unwrap()
                    .remove("protocol");
            }),
        ),
        (
            "unknown HTTP method",
            broken(&|d| d["operations"]["publish"]["bindings"]["http"]["method"] = json!("SEND")),
        ),
    ] {
        assert!(
            !schema_errors(&validator, &bad).is_empty(),
            "the schema accepted a document with {why}"
        );
    }
    // A reference to nowhere is well-formed JSON Schema-wise: the semantic check catches it.
    let dangling = broken(&|d| {
        d["operations"]["subscribe"]["channel"] = json!({"$ref": "#/channels/nowhere"})
    });
    assert!(!semantic_errors(&dangling).is_empty());
}

#[tokio::test]
async fn host_follows_the_request_and_the_minimal_config_is_valid() {
    let server = Server::start("");
    let get = |host: &'static str| {
        let url = server.url("/asyncapi.json");
        async move {
            let resp = client().get(url).header("host", host).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let doc = get("streams.example.com:8443").await;
    assert_eq!(
        doc["servers"]["gateway"]["host"],
        "streams.example.com:8443"
    );
    assert_valid(&validator(), &doc);
    // Only the pub/sub channel: no API, no allowed targets, no relay.
    assert_eq!(addresses(&doc), BTreeSet::from(["{channel}".to_owned()]));

    // A Host that is not a plain host[:port] is not echoed.
    let doc = get("evil{x}\"").await;
    let host = doc["servers"]["gateway"]["host"].as_str().unwrap();
    assert!(!host.contains("evil"), "{host}");

    let yaml = fetch(&server, "/asyncapi.yaml", "application/yaml").await;
    let from_yaml: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(from_yaml["channels"], doc["channels"]);
}

/// `GET /` is a page naming every API and relay, linking the descriptions, and showing no
/// upstream (nor, so, any secret an upstream carries).
#[tokio::test]
async fn the_landing_page_says_what_is_served_and_leaks_nothing() {
    let server = Server::start(CONFIG);
    let page = fetch(&server, "/", "text/html; charset=utf-8").await;
    for expected in [
        "<!doctype html>",
        "/apis/weather/{path}",
        "every 2000 ms",
        "/apis/odd name+x/{path}",
        "market at <code>GET /market/{version}</code>",
        "raw at <code>GET /raw</code>",
        "GET /{url}",
        "href=\"/asyncapi.json\"",
        "href=\"/metrics\"",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} missing from the page"
        );
    }
    for secret in SECRETS {
        assert!(!page.contains(secret), "{secret} leaked");
    }
    for upstream in ["weather.example.com", "odd.example.com", "127.0.0.1:9"] {
        assert!(!page.contains(upstream), "{upstream} shown");
    }
}
