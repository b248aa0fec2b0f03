//! What the gateway logs, read from a real process's stderr (a file: no colours): a line
//! per thing served at start-up, an upstream's failure once and its recovery once, JSON
//! lines with `[log] format = "json"`, the access log, and never a secret.

mod common;

use std::time::Duration;

use common::upstream::Upstream;
use common::{Server, SseStream, client};
use serde_json::{Value, json};

/// Free port on loopback (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn logged(config: &str) -> Server {
    Server::start_logged_with(config, &[("RUST_LOG", "info")])
}

async fn until_logged(server: &Server, what: &str) -> String {
    for _ in 0..100 {
        let logs = server.logs();
        if logs.contains(what) {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what:?} never logged:\n{}", server.logs());
}

#[tokio::test]
async fn start_up_says_what_is_served_without_secrets_or_colours() {
    let server = logged(
        r#"
[[api]]
name = "weather"
base_url = "https://user:hunter2@weather.example.com/v1?apikey=s3cr3t"
interval_ms = 2000

[[relay]]
name = "market"
listen_path = "/market"
upstream = "https://feed.example.com/stream?token=t0k3n"

[mercure]
publisher_jwt_key = "!ChangeThisMercureHubJWTSecretKey!"
"#,
    );
    let logs = until_logged(&server, "Mercure hub at").await;
    let base = &server.base;
    for line in [
        format!("listening on {base} (HTTP/1.1 (and h2c)); landing page {base}/"),
        format!(
            "API weather at {base}/apis/weather/{{path}}: polls weather.example.com every 2000 ms"
        ),
        format!("relay market at {base}/market: relays feed.example.com"),
        format!("Mercure hub at {base}/.well-known/mercure"),
    ] {
        assert!(logs.contains(&line), "{line:?} missing:\n{logs}");
    }
    for secret in ["hunter2", "s3cr3t", "t0k3n", "ChangeThis"] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
    }
    assert!(!logs.contains('\u{1b}'), "colour codes in a file:\n{logs}");
}

#[tokio::test]
async fn an_upstream_down_is_logged_once_and_its_recovery_once() {
    let port = free_port();
    let server = logged(&format!(
        "[poll]\ninterval_ms = 100\nmin_interval_ms = 50\nmax_backoff_ms = 200\n\n\
         [[api]]\nname = \"down\"\nbase_url = \"http://127.0.0.1:{port}/?key=s3cr3t\"\n"
    ));
    let _watching = SseStream::open(&server.url("/apis/down/doc")).await;
    until_logged(&server, "failed:").await;
    // Many attempts, one line.
    let failed = "streamgate_poll_requests_total{api=\"down\",result=\"failed\"}";
    for _ in 0..50 {
        if common::metric(&server, failed).await >= 5.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(common::metric(&server, failed).await >= 5.0);
    let logs = server.logs();
    assert_eq!(logs.matches("failed:").count(), 1, "{logs}");
    let line = logs.lines().find(|l| l.contains("failed:")).unwrap();
    assert!(
        line.contains("WARN") && line.contains(&format!("127.0.0.1:{port}")),
        "{line}"
    );

    let _up = Upstream::start_on(&format!("127.0.0.1:{port}"), json!({"ok": true})).await;
    let logs = until_logged(&server, "works again").await;
    assert_eq!(logs.matches("works again").count(), 1, "{logs}");
    assert!(!logs.contains("s3cr3t"), "{logs}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let server = logged("[log]\nformat = \"json\"\n");
    until_logged(&server, "landing page").await;
    let logs = server.logs();
    for line in logs.lines().filter(|l| !l.is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{entry}");
        assert!(entry["message"].is_string(), "{entry}");
    }
}

#[tokio::test]
async fn the_access_log_says_each_request_without_its_secrets() {
    let server = logged(
        "[log]\naccess = true\n\n[[key]]\nname = \"app\"\nsecret = \"app-s3cr3t\"\n\
         capabilities = { \"*\" = [\"*\"] }\n",
    );
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut stream = SseStream::open(&server.url("/sse?channels=room&key=app:app-s3cr3t")).await;
    let published = client()
        .post(server.url("/channels/room/messages?key=app:app-s3cr3t"))
        .json(&json!({"data": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
    stream.next_event().await.unwrap();
    drop(stream);
    let refused = client()
        .get(server.url("/sse?channels=room"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Each line is written once its response is done: the refused one may come last.
    until_logged(&server, "GET /sse?channels=room 401").await;
    let logs = until_logged(&server, "GET /sse?channels=room&key=… 200").await;
    for expected in [
        "GET /healthz 200",
        "POST /channels/room/messages?key=… 201",
        "GET /sse?channels=room 401",
    ] {
        assert!(logs.contains(expected), "{expected:?} missing:\n{logs}");
    }
    let health = logs
        .lines()
        .find(|l| l.contains("GET /healthz 200"))
        .unwrap();
    assert!(
        health.contains("bytes=3") && health.contains("client=127.0.0.1:"),
        "{health}"
    );
    assert!(!logs.contains("app-s3cr3t"), "{logs}");
}
