//! Shared test support: a real `streamgate` process on a free port, and real clients.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod mercure;
pub mod presence;
pub mod redis;
pub mod sse_upstream;
pub mod tls;
pub mod upstream;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use streamgate::wire::sse_parser::{SseEvent, SseFrame, SseParser};

/// Keys of a gateway with an admin (`ops:ops-secret`, the admin API only) and an
/// application (`app:app-secret`, every channel).
pub const OPS_AND_APP: &str = r#"
[[key]]
name = "ops"
secret = "ops-secret"
capabilities = { "admin" = ["admin"] }

[[key]]
name = "app"
secret = "app-secret"
capabilities = { "*" = ["publish", "subscribe"] }
"#;

/// A gateway process, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    dir: tempfile::TempDir,
    log: Option<tempfile::NamedTempFile>,
}

impl Server {
    /// Starts `streamgate serve` with `config` (TOML) on 127.0.0.1 and a free port.
    pub fn start(config: &str) -> Server {
        Self::start_with(config, &[], &[])
    }

    /// Like `start`, with extra `serve` arguments and environment variables.
    pub fn start_with(config: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn(config, args, env, Stdio::inherit())
    }

    /// Like `start`, logging everything (`RUST_LOG=trace`) to a file `logs()` reads.
    pub fn start_logged(config: &str) -> Server {
        Self::start_logged_with(config, &[])
    }

    /// Like `start_logged`, with extra environment variables.
    pub fn start_logged_with(config: &str, env: &[(&str, &str)]) -> Server {
        let log = tempfile::NamedTempFile::new().unwrap();
        let env: Vec<(&str, &str)> = [("RUST_LOG", "trace")]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        let mut server = Self::spawn(config, &[], &env, Stdio::from(log.reopen().unwrap()));
        server.log = Some(log);
        server
    }

    /// What the server logged (see `start_logged`).
    pub fn logs(&self) -> String {
        let log = self.log.as_ref().expect("started with start_logged");
        std::fs::read_to_string(log.path()).unwrap()
    }

    /// Stops this process and starts another on the same address, config file and folder
    /// (with whatever the first left there), as clients see a restart.
    pub fn restart(mut self) -> Server {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let listen = self
            .base
            .split_once("://")
            .map_or("", |(_, a)| a)
            .to_owned();
        drop(self);
        Self::spawn_in(dir, &listen, &[], &[], Stdio::inherit())
    }

    fn spawn(config: &str, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("streamgate.toml"), config).unwrap();
        Self::spawn_in(dir, "127.0.0.1:0", args, env, stderr)
    }

    fn spawn_in(
        dir: tempfile::TempDir,
        listen: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let path = dir.path().join("streamgate.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .args(["--listen", listen])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning streamgate");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("streamgate listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from streamgate: {line:?}"))
            .to_owned();
        Server {
            child,
            base,
            dir,
            log: None,
        }
    }

    /// The folder holding the server's config file (for files the config names).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Publishes `body` as JSON; asserts 201 and returns the message ids.
pub async fn publish(server: &Server, channel: &str, body: Value) -> Vec<String> {
    let resp = client()
        .post(server.url(&format!("/channels/{channel}/messages")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "publish to {channel}");
    let v: Value = resp.json().await.unwrap();
    v["messageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// GETs `path` and parses the JSON answer (asserting 200).
pub async fn get_json<T: serde::de::DeserializeOwned>(server: &Server, path: &str) -> T {
    let resp = client().get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// GETs `path` and returns the body as text, exactly as sent (serde_json would respell
/// numbers).
pub async fn get_text(server: &Server, path: &str) -> String {
    let resp = client().get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.text().await.unwrap()
}

/// The history of a channel, newest first.
pub async fn history(server: &Server, channel: &str) -> Vec<Value> {
    get_json(server, &format!("/channels/{channel}/messages")).await
}

/// The server's Prometheus metrics page.
pub async fn metrics_text(server: &Server) -> String {
    metrics_text_via(&client(), server).await
}

/// The metrics page, read with `via` (a client bound to a given source address).
pub async fn metrics_text_via(via: &reqwest::Client, server: &Server) -> String {
    via.get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One sample of the server's Prometheus metrics.
pub async fn metric(server: &Server, name: &str) -> f64 {
    metric_via(&client(), server, name).await
}

/// One sample of the metrics, read with `via`.
pub async fn metric_via(via: &reqwest::Client, server: &Server, name: &str) -> f64 {
    let text = metrics_text_via(via, server).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .parse()
        .unwrap()
}

/// Waits until `check` holds, for up to 10 s.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts an error response: status, ErrorInfo code, and the full ErrorInfo shape.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: u64) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body: Value = resp.json().await.expect("error body is JSON");
    let info = &body["error"];
    assert_eq!(info["code"], code, "{body}");
    assert_eq!(info["statusCode"], status, "{body}");
    assert!(
        info["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(info["href"].as_str().is_some(), "{body}");
    body
}

/// A streaming response read with the crate's WHATWG SSE parser.
pub struct SseStream {
    pub response: reqwest::Response,
    parser: SseParser,
    frames: VecDeque<SseFrame>,
}

impl SseStream {
    pub async fn open(url: &str) -> SseStream {
        Self::open_with(url, HeaderMap::new()).await
    }

    pub async fn open_with(url: &str, headers: HeaderMap) -> SseStream {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .headers(headers)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "opening {url}");
        SseStream::of(response)
    }

    /// Reads `response` as a stream.
    pub fn of(response: reqwest::Response) -> SseStream {
        SseStream {
            response,
            parser: SseParser::new(),
            frames: VecDeque::new(),
        }
    }

    /// The next frame (event or comment); `None` when the stream ended or 10 s passed.
    pub async fn next_frame(&mut self) -> Option<SseFrame> {
        self.next_frame_within(Duration::from_secs(10)).await
    }

    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<SseFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            let mut out = Vec::new();
            self.parser.feed(&chunk, &mut out);
            self.frames.extend(out);
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            match self.next_frame().await? {
                SseFrame::Event(e) => return Some(e),
                SseFrame::Comment(_) => continue,
            }
        }
    }

    pub async fn events(&mut self, n: usize) -> Vec<SseEvent> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let e = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("stream ended after {} of {n} events", out.len()));
            out.push(e);
        }
        out
    }

    /// Asserts nothing arrives for `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        if let Some(frame) = self.next_frame_within(wait).await {
            panic!("expected no more frames, got {frame:?}");
        }
    }
}

/// The Message envelope of an SSE `message` event.
pub fn envelope(event: &SseEvent) -> Value {
    assert_eq!(event.event, "message", "{event:?}");
    serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("{e}: {:?}", event.data))
}

/// Opens a dynamic connection; returns it and its id.
pub async fn dynamic(server: &Server, query: &str) -> (SseStream, String) {
    let mut stream = SseStream::open(&server.url(&format!("/sse?dynamic=true{query}"))).await;
    let connected = stream.next_event().await.unwrap();
    assert_eq!(connected.event, "connected");
    assert!(
        connected.id.is_empty(),
        "the greeting is not a resume point"
    );
    let data: Value = serde_json::from_str(&connected.data).unwrap();
    (stream, data["connectionId"].as_str().unwrap().to_owned())
}

pub async fn add(server: &Server, id: &str, body: Value) -> reqwest::Response {
    client()
        .post(server.url(&format!("/connections/{id}/subscriptions")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Headers that resume after `id`, as a browser's EventSource sends them on reconnecting.
pub fn last_event_id(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(id).unwrap();
    headers.insert("last-event-id", value);
    headers
}

/// The next event that is not an `error`, checking it has a gateway id.
pub async fn next_relayed(stream: &mut SseStream) -> SseEvent {
    loop {
        let event = stream.next_event().await.expect("an event");
        if event.event != "error" {
            assert!(!event.id.is_empty(), "every event has an id: {event:?}");
            return event;
        }
    }
}

/// Resumes dynamic connection `id` after event `last_id`, checking it is announced again
/// under the same id.
pub async fn resume_dynamic(server: &Server, last_id: &str, id: &str) -> SseStream {
    let headers = last_event_id(last_id);
    let mut resumed = SseStream::open_with(&server.url("/sse?dynamic=true"), headers).await;
    let connected = resumed.next_event().await.unwrap();
    assert_eq!(connected.event, "connected", "{connected:?}");
    let again: Value = serde_json::from_str(&connected.data).unwrap();
    assert_eq!(again["connectionId"], id);
    resumed
}

/// The data of the next `n` events, by event type (one event of each type expected).
pub async fn events_by_kind(
    stream: &mut SseStream,
    n: usize,
) -> std::collections::HashMap<String, Value> {
    let mut by_kind = std::collections::HashMap::new();
    for _ in 0..n {
        let e = stream.next_event().await.unwrap();
        by_kind.insert(e.event.clone(), serde_json::from_str(&e.data).unwrap());
    }
    by_kind
}

/// Waits until every node says it is ready (it reaches Redis and hears announcements). A
/// Redis Cluster restarted under a loaded machine (the whole suite at once) has taken the
/// cluster client over 15 s to find again: the test is of recovery, not of its speed.
pub async fn until_ready(nodes: &[Server]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for node in nodes {
        loop {
            let ready = client().get(node.url("/readyz")).send().await.unwrap();
            if ready.status() == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node not ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Pauses (`STOP`) or resumes (`CONT`) a node's process, as a long stall would.
pub fn signal(node: &Server, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(node.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
