//! Importing an AsyncAPI document: our own `/asyncapi.json` read back gives the same relays,
//! which then relay; any other document's HTTP servers become relays, what cannot be mapped
//! named in the answer. Over the admin API and with `streamgate import asyncapi`.

mod common;

use std::process::Command;

use common::sse_upstream::SseUpstream;
use common::{Server, SseStream, client, expect_error, get_json, next_relayed};
use serde_json::{Value, json};

const KEYS: &str = "[[key]]\nname = \"root\"\nsecret = \"root-secret\"\n\
                    capabilities = { \"*\" = [\"*\"] }\n\
                    [poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n";
const ADMIN: &str = "key=root:root-secret";

async fn import(server: &Server, document: &Value) -> reqwest::Response {
    client()
        .post(server.url(&format!("/admin/import/asyncapi?{ADMIN}")))
        .json(document)
        .send()
        .await
        .unwrap()
}

/// The relays an admin sees, without their headers (a document never carries secrets).
async fn relays(server: &Server) -> Vec<Value> {
    let mut relays: Value = get_json(server, &format!("/admin/relays?{ADMIN}")).await;
    let relays = relays.as_array_mut().unwrap();
    for relay in relays.iter_mut() {
        relay.as_object_mut().unwrap().remove("headers");
    }
    relays.clone()
}

#[tokio::test]
async fn our_own_document_read_back_gives_the_same_relays() {
    let upstream = SseUpstream::start().await;
    let from = Server::start(&format!(
        "{KEYS}\
         [[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n\
         forward_query = [\"symbol\"]\nlinger_ms = 500\n\
         headers = {{ authorization = \"Bearer upstream-s3cret\" }}\n\
         topics = {{ \"quotes\" = \"/q\", \"news/*\" = \"/n/*\" }}\n\
         [[relay]]\nname = \"raw\"\nlisten_path = \"/raw\"\nupstream = \"{}\"\nmode = \"passthrough\"\n",
        upstream.url("/feed"),
        upstream.url("/")
    ));
    let document: Value = get_json(&from, "/asyncapi.json").await;
    assert!(!document.to_string().contains("upstream-s3cret"));

    let to = Server::start(KEYS);
    let resp = import(&to, &document).await;
    assert_eq!(resp.status(), 201);
    let answer: Value = resp.json().await.unwrap();
    let skipped = answer["skipped"].to_string();
    assert!(
        skipped.contains("not a relay"),
        "the pub/sub channels: {answer}"
    );
    assert_eq!(relays(&to).await, relays(&from).await);

    // The imported relay relays.
    let mut stream = SseStream::open(&to.url(&format!("/market/quotes?{ADMIN}"))).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    upstream.send("tick", "41");
    let event = next_relayed(&mut stream).await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("tick", "41"));

    // All or nothing: importing it again changes nothing.
    expect_error(import(&to, &document).await, 409, 40930).await;
    assert_eq!(relays(&to).await.len(), 2);
}

#[tokio::test]
async fn another_document_maps_its_http_servers_and_names_what_it_cannot() {
    let upstream = SseUpstream::start().await;
    let document = json!({
        "asyncapi": "3.0.0",
        "info": {"title": "Prices", "version": "1"},
        "servers": {
            "feed": {"host": upstream.url("/").trim_start_matches("http://").trim_end_matches('/'),
                     "protocol": "http", "pathname": "/v2"},
            "events": {"host": "kafka.internal:9092", "protocol": "kafka"},
        },
        "channels": {
            "prices": {"address": "/prices/{symbol}", "servers": [{"$ref": "#/servers/feed"}]},
            "orders": {"address": "orders", "servers": [{"$ref": "#/servers/events"}]},
        },
    });
    let to = Server::start(KEYS);
    let resp = import(&to, &document).await;
    assert_eq!(resp.status(), 201);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["relays"][0]["name"], "feed", "{answer}");
    assert_eq!(
        answer["relays"][0]["topics"]["prices/*"], "/prices/*",
        "{answer}"
    );
    let skipped = answer["skipped"].to_string();
    assert!(
        skipped.contains("server events: protocol \\\"kafka\\\""),
        "{answer}"
    );

    // Nothing to map is refused, with the reasons.
    let kafka_only = json!({
        "asyncapi": "3.0.0",
        "servers": {"events": {"host": "kafka:9092", "protocol": "kafka"}},
        "channels": {"orders": {"address": "orders"}},
    });
    let body = expect_error(import(&to, &kafka_only).await, 400, 40000).await;
    assert!(body.to_string().contains("kafka"), "{body}");
    let body = expect_error(import(&to, &json!({"openapi": "3.1.0"})).await, 400, 40000).await;
    assert!(
        body.to_string().contains("not an AsyncAPI document"),
        "{body}"
    );
}

#[test]
fn the_command_writes_relays_a_config_file_takes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asyncapi.json");
    let document = json!({
        "asyncapi": "2.6.0",
        "servers": {"Live Feed": {"url": "https://sse.example.com/v1", "protocol": "https"},
                    "mqtt": {"url": "mqtt://broker", "protocol": "mqtt"}},
        "channels": {"/ticks/{symbol}": {"subscribe": {}}, "/status": {"subscribe": {}}},
    });
    std::fs::write(&file, document.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["import", "asyncapi"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("[[relay]]") && toml.contains("name = \"live-feed\""),
        "{toml}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("server mqtt"));
    let config = dir.path().join("streamgate.toml");
    std::fs::write(&config, &toml).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{toml}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["import", "asyncapi", "/no/such/file.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.json"));
}
