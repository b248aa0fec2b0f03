//! `streamgate tail` follows a delta stream and keeps its document, as a person would see it:
//! on a pseudo-terminal (its screen read back as a terminal shows it), or as lines for
//! scripts.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
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

/// `streamgate tail` on a pseudo-terminal of 24 rows and 80 columns, its screen as the
/// terminal shows it.
struct Terminal {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Arc<Mutex<vt100::Parser>>,
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Terminal {
    fn run(url: &str) -> Terminal {
        let pair = portable_pty::native_pty_system()
            .openpty(portable_pty::PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut command = portable_pty::CommandBuilder::new(env!("CARGO_BIN_EXE_streamgate"));
        command.args(["tail", url]);
        command.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(command).unwrap();
        drop(pair.slave);
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size(24), size(80), 1000)));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let written = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                written.lock().unwrap().process(&buf[..n]);
            }
        });
        Terminal {
            child,
            screen,
            master: pair.master,
        }
    }

    /// Resizes the terminal, as a window resized does (SIGWINCH to the program).
    fn resize(&self, rows: u16, cols: u16) {
        let size = portable_pty::PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        };
        let nonzero = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = self.screen.lock().unwrap();
        parser.screen_mut().set_size(nonzero(rows), nonzero(cols));
        self.master.resize(size).unwrap();
    }

    /// The screen's rows once `check` holds for them (within 10 s).
    async fn until(
        &self,
        what: &str,
        check: impl Fn(&[String], &vt100::Screen) -> bool,
    ) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            {
                let parser = self.screen.lock().unwrap();
                let screen = parser.screen();
                let rows: Vec<String> = screen.rows(0, screen.size().1.get()).collect();
                if check(&rows, screen) {
                    return rows;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}; the screen:\n{}",
                    rows.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_document_fits_the_screen_and_the_change_is_highlighted() {
    let item = |i: usize| json!({"id": i, "about": format!("item {i} {}", "-".repeat(90))});
    let mut doc = json!({"items": (0..40).map(item).collect::<Vec<_>>()});
    let upstream = Upstream::start(doc.clone()).await;
    let server = Server::start(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\nmin_interval_ms = 50\n",
    );
    let terminal = Terminal::run(&server.url(&format!("/{}", upstream.url("/doc"))));
    let rows = terminal
        .until("the document and a live status line", |rows, _| {
            rows[23].contains("● live") && rows[0] == "{"
        })
        .await;
    {
        let parser = terminal.screen.lock().unwrap();
        let screen = parser.screen();
        // Drawn in place on the alternate screen: nothing goes to the scrollback.
        assert!(screen.alternate_screen());
        assert_eq!(screen.scrollback(), 0);
        assert!(
            screen.cell(23, 0).unwrap().inverse(),
            "the status line stands out"
        );
    }
    assert!(rows[23].contains("lines 1–23 of 164"), "{}", rows[23]);
    // A line wider than the terminal is cut, not wrapped.
    let long = rows.iter().find(|r| r.contains("item 0 ")).unwrap();
    assert!(long.ends_with('…'), "{long}");

    // A change far down the document: shown, highlighted, the status line says where.
    doc["items"][30]["id"] = json!("changed");
    upstream.set(doc.clone());
    let rows = terminal
        .until("the changed line in sight", |rows, _| {
            rows.iter().any(|r| r.contains("\"id\": \"changed\""))
        })
        .await;
    let row = rows
        .iter()
        .position(|r| r.contains("\"id\": \"changed\""))
        .unwrap();
    {
        let parser = terminal.screen.lock().unwrap();
        let screen = parser.screen();
        let at = rows[row].find('"').unwrap() as u16;
        assert!(
            screen.cell(row as u16, at).unwrap().inverse(),
            "the change is highlighted"
        );
        let other = rows.iter().position(|r| r.contains("\"about\"")).unwrap();
        let at = rows[other].find('"').unwrap() as u16;
        assert!(
            !screen.cell(other as u16, at).unwrap().inverse(),
            "what did not change is not"
        );
        assert!(rows[23].contains("events/s"), "{}", rows[23]);
        assert!(
            !rows[23].contains("lines 1–"),
            "scrolled to the change: {}",
            rows[23]
        );
    }

    // The terminal grows: the screen follows, its status line on the new last row.
    terminal.resize(40, 100);
    let rows = terminal
        .until("the screen redrawn to the new size", |rows, _| {
            rows.len() == 40 && rows[39].contains("● live")
        })
        .await;
    assert!(rows[39].contains("of 164"), "{}", rows[39]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_channel_shows_its_latest_messages() {
    let server = Server::start("");
    let terminal = Terminal::run(&server.url("/sse?channels=room"));
    terminal
        .until("connected", |rows, _| rows[23].contains("● live"))
        .await;
    for i in 0..30 {
        common::publish(&server, "room", json!({"data": format!("m{i}")})).await;
    }
    let rows = terminal
        .until("the latest message at the bottom", |rows, _| {
            rows[22] == "room: m29"
        })
        .await;
    assert_eq!(rows[0], "room: m7", "the newest that fit: {rows:?}");
}

#[test]
fn a_url_that_is_not_an_event_stream_is_said_to_be_so() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(Upstream::start(json!({"a": 1})));
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["tail", &upstream.url("/doc")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not an event stream"), "{said}");
}

#[test]
fn connection_refused_is_said_once_as_such() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tail = Killed(
        Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args(["tail", &format!("http://127.0.0.1:{port}/sse?channels=x")])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Three attempts, a second apart.
    std::thread::sleep(Duration::from_millis(2500));
    let _ = tail.0.kill();
    let mut said = String::new();
    tail.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    let expected = format!("connection refused at 127.0.0.1:{port}");
    assert_eq!(said.matches(&expected).count(), 1, "{said}");
}
