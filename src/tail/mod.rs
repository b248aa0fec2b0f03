//! `streamgate tail URL`: follow a stream in the terminal.
//!
//! A delta stream's live document (a `data` event replaces it, a `patch` event is applied),
//! or a channel's messages as they come. On a terminal it draws one screen in place, on the
//! alternate screen (the scrollback is left as it was), fitted to the terminal (and drawn
//! again when it is resized): the document
//! with the lines the last patch changed highlighted (scrolled to them when it is taller than
//! the screen), or the latest messages; and a status line: connection state, events per
//! second, the last event id. Otherwise (for scripts) one compact JSON document per change,
//! or a message's data per line. Like a browser's EventSource it reconnects with
//! `Last-Event-ID` and honours `retry:`. A URL that answers something other than an event
//! stream, or refuses the request (4xx), ends it with a message that says so.

mod pretty;
mod screen;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use crate::patch::LiveDocument;
use crate::wire::sse_parser::{SseEvent, SseParser};
use screen::Screen;

/// Follows `url` until interrupted; returns an error when the URL is unusable.
pub async fn run(url: &str) -> Result<(), String> {
    let url: reqwest::Url = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut view = View::new(std::io::stdout().is_terminal().then(Screen::open));
    let followed = tokio::select! {
        followed = follow(&client, &url, &mut view) => followed,
        () = stopped() => Ok(()),
    };
    view.close();
    followed
}

async fn follow(
    client: &reqwest::Client,
    url: &reqwest::Url,
    view: &mut View,
) -> Result<(), String> {
    let mut retry = Duration::from_secs(1);
    loop {
        view.state(State::Connecting);
        let mut request = client.get(url.clone()).header(ACCEPT, "text/event-stream");
        if let Ok(id) = HeaderValue::from_str(&view.last_id)
            && !view.last_id.is_empty()
        {
            request = request.header("last-event-id", id);
        }
        let why = match request.send().await {
            Ok(response) if response.status().is_success() => {
                let kind = response.headers().get(CONTENT_TYPE);
                let kind = kind.and_then(|k| k.to_str().ok()).unwrap_or("nothing");
                if !kind.starts_with("text/event-stream") {
                    return Err(format!(
                        "{url} answered {kind}, not an event stream (text/event-stream): tail a \
                         stream, such as a gateway's /{url} for a polled API or \
                         /sse?channels=NAME for a channel"
                    ));
                }
                view.state(State::Live);
                read(response, view, &mut retry).await
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_client_error() {
                    return Err(format!("{url} answered {status}: {body}"));
                }
                format!("{status}: {body}")
            }
            Err(e) => unreachable(url, &e),
        };
        view.state(State::Waiting { why, retry });
        tokio::time::sleep(retry).await;
    }
}

/// Shows the stream's events until it ends; why it ended.
async fn read(mut response: reqwest::Response, view: &mut View, retry: &mut Duration) -> String {
    let mut parser = SseParser::new();
    // The status line's rate and times move on while nothing comes.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A resized terminal is drawn again at once.
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    loop {
        let resize = async {
            match resized.as_mut() {
                Some(resized) => resized.recv().await,
                None => std::future::pending().await,
            }
        };
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            _ = tick.tick() => {
                view.draw();
                continue;
            }
            _ = resize => {
                view.draw();
                continue;
            }
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return "the stream ended".to_owned(),
            Err(e) => return format!("the stream broke: {e}"),
        };
        for event in parser.feed_events(&chunk) {
            if let Some(ms) = event.retry {
                *retry = Duration::from_millis(ms);
            }
            if !view.show(&event) {
                // The document is out of step: reconnect for a fresh one.
                view.last_id.clear();
                return "the document was out of step; asking for a fresh one".to_owned();
            }
        }
    }
}

/// Ctrl-C, or a SIGTERM or SIGHUP (a terminal closed): the screen is given back either way.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    let hangup = async {
        match hangup.as_mut() {
            Some(hangup) => hangup.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = hangup => {}
    }
}

/// Why `url` could not be reached, in the words a person looks for.
fn unreachable(url: &reqwest::Url, error: &reqwest::Error) -> String {
    let at = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    );
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return format!("connection refused at {at}: is the gateway running there?");
        }
        source = e.source();
    }
    if error.is_timeout() {
        return format!("no answer from {at} in time");
    }
    let mut why = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        why = format!("{why}: {e}");
        source = e.source();
    }
    format!("cannot connect to {at}: {why}")
}

/// Where the connection stands.
enum State {
    Connecting,
    Live,
    Waiting { why: String, retry: Duration },
}

/// What is shown: on a terminal, a screen; otherwise lines.
struct View {
    screen: Option<Screen>,
    document: LiveDocument,
    /// JSON Pointers the last patch added or replaced.
    changed: Vec<String>,
    /// A channel's latest messages, as the screen shows them.
    messages: VecDeque<String>,
    state: State,
    /// Without a screen, the state last said on stderr: said again only when it changes.
    said: String,
    last_id: String,
    /// When the last events came, for the rate.
    arrivals: VecDeque<Instant>,
}

/// The window the rate is counted over.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Messages kept for the screen (more than any terminal has rows).
const MESSAGES: usize = 500;

impl View {
    fn new(screen: Option<Screen>) -> Self {
        View {
            screen,
            document: LiveDocument::default(),
            changed: Vec::new(),
            messages: VecDeque::new(),
            state: State::Connecting,
            said: String::new(),
            last_id: String::new(),
            arrivals: VecDeque::new(),
        }
    }

    fn state(&mut self, state: State) {
        self.state = state;
        if self.screen.is_some() {
            return self.draw();
        }
        let line = match &self.state {
            State::Waiting { why, retry } => {
                format!("{why}; retrying every {} ms", retry.as_millis())
            }
            _ => return,
        };
        if line != self.said {
            eprintln!("{line}");
            self.said = line;
        }
    }

    /// Shows one event; false when the document is out of step.
    fn show(&mut self, event: &SseEvent) -> bool {
        if event.event == "heartbeat" {
            return true;
        }
        self.last_id.clone_from(&event.id);
        let now = Instant::now();
        self.arrivals.push_back(now);
        while self
            .arrivals
            .front()
            .is_some_and(|&t| now - t > RATE_WINDOW)
        {
            self.arrivals.pop_front();
        }
        self.said.clear();
        match self.document.apply(event) {
            Ok(true) => {
                self.changed = match (event.event.as_str(), self.document.get()) {
                    ("patch", Some(document)) => changed(&event.data, document),
                    _ => Vec::new(),
                };
                match &self.screen {
                    Some(_) => self.draw(),
                    None => print_line(
                        &self
                            .document
                            .get()
                            .map(Value::to_string)
                            .unwrap_or_default(),
                    ),
                }
            }
            Ok(false) => {
                let error = event.event == "error";
                match (&self.screen, error) {
                    (None, true) => eprintln!("error: {}", event.data),
                    (None, false) => print_line(&event.data),
                    (Some(_), _) => {
                        self.messages.push_back(message_line(event));
                        if self.messages.len() > MESSAGES {
                            self.messages.pop_front();
                        }
                        self.draw();
                    }
                }
            }
            Err(e) => {
                match &self.screen {
                    Some(_) => self.messages.push_back(e.clone()),
                    None => eprintln!("{e}; asking for a fresh document"),
                }
                return false;
            }
        }
        true
    }

    /// Draws the screen, if there is one.
    fn draw(&self) {
        let Some(screen) = &self.screen else {
            return;
        };
        let size = Screen::size();
        let room = size.0 - 1;
        let lines: Vec<pretty::Line>;
        let (body, extent): (Vec<(&str, bool)>, String) = match self.document.get() {
            Some(document) => {
                lines = pretty::lines(document);
                let touched = |pointer: &str| {
                    self.changed.iter().any(|c| {
                        let below = pointer.strip_prefix(c.as_str());
                        pointer == c || below.is_some_and(|rest| rest.starts_with('/'))
                    })
                };
                // The first change in sight, with a little of what precedes it.
                let first = lines.iter().position(|l| touched(&l.pointer));
                let top = first.unwrap_or(0).saturating_sub(2);
                let top = top.min(lines.len().saturating_sub(room));
                let body: Vec<(&str, bool)> = lines[top..]
                    .iter()
                    .take(room)
                    .map(|l| (l.text.as_str(), touched(&l.pointer)))
                    .collect();
                let extent = match lines.len() > room {
                    true => format!(
                        "  lines {}–{} of {}",
                        top + 1,
                        top + body.len(),
                        lines.len()
                    ),
                    false => String::new(),
                };
                (body, extent)
            }
            None => {
                let skip = self.messages.len().saturating_sub(room);
                let body = self.messages.iter().skip(skip);
                (body.map(|m| (m.as_str(), false)).collect(), String::new())
            }
        };
        screen.draw(size, &body, &self.status(&extent));
    }

    fn status(&self, extent: &str) -> String {
        let state = match &self.state {
            State::Connecting => "connecting…".to_owned(),
            State::Live => "● live".to_owned(),
            State::Waiting { why, retry } => {
                format!("{why}; retrying in {} ms", retry.as_millis())
            }
        };
        let now = Instant::now();
        let recent = self
            .arrivals
            .iter()
            .filter(|&&t| now - t <= RATE_WINDOW)
            .count();
        let rate = recent as f64 / RATE_WINDOW.as_secs_f64();
        let id = match self.last_id.is_empty() {
            true => String::new(),
            false => format!("  id {}", self.last_id),
        };
        format!(" {state}  {rate:.1} events/s{id}{extent}")
    }

    fn close(self) {
        if let Some(screen) = self.screen {
            screen.close();
        }
    }
}

/// The paths a patch (a JSON array of RFC 6902 operations) added or replaced in `document`
/// (an append, `/items/-`, is the array's last element now).
fn changed(patch: &str, document: &Value) -> Vec<String> {
    let Ok(Value::Array(ops)) = serde_json::from_str::<Value>(patch) else {
        return Vec::new();
    };
    ops.iter()
        .filter(|op| op["op"] != "remove" && op["op"] != "test")
        .filter_map(|op| op["path"].as_str())
        .map(|path| match path.strip_suffix("/-") {
            Some(array) => match document.pointer(array).and_then(Value::as_array) {
                Some(items) => format!("{array}/{}", items.len().saturating_sub(1)),
                None => path.to_owned(),
            },
            None => path.to_owned(),
        })
        .collect()
}

/// A message as the screen lists it: an enveloped message as `channel: data`, anything
/// else as its event type and data.
fn message_line(event: &SseEvent) -> String {
    let data = match serde_json::from_str::<Value>(&event.data) {
        Ok(Value::Object(message)) if message.contains_key("channel") => {
            let channel = message["channel"].as_str().unwrap_or("");
            let data = match &message["data"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            return format!("{channel}: {data}");
        }
        _ => &event.data,
    };
    match event.event.as_str() {
        "" | "message" => data.clone(),
        name => format!("{name}: {data}"),
    }
}

/// One line for scripts; a closed stdout (a pipe whose reader left) ends the program quietly.
fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::changed;
    use serde_json::json;

    #[test]
    fn a_patch_changes_what_it_adds_or_replaces_an_append_the_last_element() {
        let document = json!({"items": [1, 2, 3], "n": 1});
        let patch = r#"[{"op":"add","path":"/items/-","value":3},{"op":"replace","path":"/n","value":1},
                        {"op":"remove","path":"/gone"}]"#;
        assert_eq!(changed(patch, &document), ["/items/2", "/n"]);
    }
}
