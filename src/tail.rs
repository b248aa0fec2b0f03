//! `streamgate tail URL`: follow a stream in the terminal.
//!
//! For a delta stream it keeps the live document (a `data` event replaces it, a `patch` event
//! is applied) and shows it after every change: redrawn in place on a terminal, one compact
//! JSON line per change otherwise (for scripts). Pub/sub messages are printed as they come.
//! Like a browser's EventSource it reconnects with `Last-Event-ID` and honours `retry:`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderValue};
use serde_json::Value;

use crate::patch;
use crate::wire::json;
use crate::wire::sse_parser::{SseEvent, SseParser};

/// Follows `url` until interrupted; returns only when the URL is unusable.
pub async fn run(url: &str) -> Result<(), String> {
    let url: reqwest::Url = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut view = View::new(std::io::stdout().is_terminal());
    let mut last_id = String::new();
    let mut retry = Duration::from_secs(1);
    loop {
        let mut request = client.get(url.clone()).header(ACCEPT, "text/event-stream");
        if !last_id.is_empty()
            && let Ok(id) = HeaderValue::from_str(&last_id)
        {
            request = request.header("last-event-id", id);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let mut response = response;
                let mut parser = SseParser::new();
                'read: while let Ok(Some(chunk)) = response.chunk().await {
                    for event in parser.feed_events(&chunk) {
                        if let Some(ms) = event.retry {
                            retry = Duration::from_millis(ms);
                        }
                        last_id.clone_from(&event.id);
                        if !view.show(&event) {
                            // The document is out of step: reconnect for a fresh snapshot.
                            last_id.clear();
                            break 'read;
                        }
                    }
                }
                eprintln!("stream ended; reconnecting in {} ms", retry.as_millis());
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_client_error() {
                    return Err(format!("{status}: {body}"));
                }
                eprintln!("{status}: {body}; retrying in {} ms", retry.as_millis());
            }
            Err(e) => eprintln!("cannot connect: {e}; retrying in {} ms", retry.as_millis()),
        }
        tokio::time::sleep(retry).await;
    }
}

/// What the terminal shows.
struct View {
    redraw: bool,
    document: Option<Value>,
}

impl View {
    fn new(redraw: bool) -> Self {
        View {
            redraw,
            document: None,
        }
    }

    /// Shows one event; false when a patch could not be applied.
    fn show(&mut self, event: &SseEvent) -> bool {
        let data = || json::parse(event.data.as_bytes());
        match event.event.as_str() {
            "data" => match data() {
                Ok(document) => self.document = Some(document),
                Err(e) => eprintln!("a data event is not JSON: {e}"),
            },
            "patch" => {
                let applied = match (self.document.as_mut(), data()) {
                    (Some(document), Ok(ops)) => patch::parse(&ops)
                        .and_then(|p| patch::apply(document, &p).map_err(|e| e.to_string())),
                    (None, _) => Err("a patch came before any document".into()),
                    (_, Err(e)) => Err(format!("not JSON: {e}")),
                };
                if let Err(e) = applied {
                    eprintln!("cannot apply a patch ({e}); asking for a fresh document");
                    self.document = None;
                    return false;
                }
            }
            "error" => {
                eprintln!("error: {}", event.data);
                return true;
            }
            "heartbeat" => return true,
            _ => {
                println!("{}", event.data);
                return true;
            }
        }
        self.render(&event.id);
        true
    }

    fn render(&self, id: &str) {
        let Some(document) = &self.document else {
            return;
        };
        let mut out = std::io::stdout().lock();
        let shown = if self.redraw {
            let pretty = serde_json::to_string_pretty(document).expect("a Value serializes");
            // Clear the screen, home the cursor, then the document and where it stands.
            write!(out, "\x1b[2J\x1b[H{pretty}\n\n-- id {id}\n")
        } else {
            writeln!(out, "{document}")
        };
        // A closed stdout (a pipe whose reader left) ends the program quietly.
        if shown.and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }
}
