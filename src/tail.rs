//! `streamgate tail URL`: follow a stream in the terminal.
//!
//! For a delta stream it keeps the live document (a `data` event replaces it, a `patch` event
//! is applied) and shows it after every change: redrawn in place on a terminal, one compact
//! JSON line per change otherwise (for scripts). Pub/sub messages are printed as they come.
//! Like a browser's EventSource it reconnects with `Last-Event-ID` and honours `retry:`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderValue};

use crate::patch::LiveDocument;
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
    document: LiveDocument,
}

impl View {
    fn new(redraw: bool) -> Self {
        View {
            redraw,
            document: LiveDocument::default(),
        }
    }

    /// Shows one event; false when the document is out of step.
    fn show(&mut self, event: &SseEvent) -> bool {
        match self.document.apply(event) {
            Ok(true) => self.render(&event.id),
            Ok(false) => match event.event.as_str() {
                "error" => eprintln!("error: {}", event.data),
                "heartbeat" => {}
                _ => println!("{}", event.data),
            },
            Err(e) => {
                eprintln!("{e}; asking for a fresh document");
                return false;
            }
        }
        true
    }

    fn render(&self, id: &str) {
        let Some(document) = self.document.get() else {
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
