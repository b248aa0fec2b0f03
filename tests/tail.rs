//! `streamgate tail` follows a delta stream and keeps its document, as a person would see it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Server;
use common::upstream::Upstream;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_keeps_the_live_document() {
    let big = serde_json::from_str::<Value>("123456789012345678901234567890").unwrap();
    let mut doc = json!({"items": (0..30).map(|i| json!({"id": i, "v": i})).collect::<Vec<_>>()});
    let upstream = Upstream::start(doc.clone()).await;
    let server = Server::start(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\nmin_interval_ms = 50\n",
    );
    let mut tail = Killed(
        Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args(["tail", &server.url(&format!("/{}", upstream.url("/doc")))])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Not a terminal: one compact JSON document per line, after every change.
    let (lines_tx, lines) = mpsc::channel();
    let stdout = tail.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let expect = |expected: &Value| {
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(10))
                .expect("tail printed the document");
            if serde_json::from_str::<Value>(&line).unwrap() == *expected {
                return;
            }
        }
    };
    expect(&doc);
    doc["items"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"id": "new", "v": big}));
    upstream.set(doc.clone());
    expect(&doc);
    doc["items"][5]["v"] = json!("changed");
    upstream.set(doc.clone());
    expect(&doc);
}

/// A child process that does not outlive its test, pass or fail.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tail_refuses_what_is_not_a_url() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["tail", "not a url"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a URL"));
}
