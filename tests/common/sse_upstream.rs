//! A real upstream SSE server for relay tests: it numbers the events the test sends, replays
//! after a `Last-Event-ID`, records every request, and can die and come back on its port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use axum::routing::any;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Chunk = Result<Bytes, std::io::Error>;

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

impl Seen {
    /// The raw bytes of the request's `Last-Event-ID`, if any.
    pub fn last_event_id(&self) -> Option<Vec<u8>> {
        self.headers
            .get("last-event-id")
            .map(|v| v.as_bytes().to_vec())
    }
}

#[derive(Default)]
struct Inner {
    /// Every event sent, as written: its id is its index + 1.
    log: Vec<Bytes>,
    live: Vec<mpsc::UnboundedSender<Chunk>>,
    seen: Vec<Seen>,
    /// Bodies served once on a path (then the response ends); later requests stream live.
    scripts: HashMap<String, Bytes>,
    /// Bodies served on every request for a path (then the response ends).
    repeated: HashMap<String, Bytes>,
    /// Resume from the `Last-Event-ID` event itself rather than after it, as some servers do.
    inclusive_resume: bool,
}

pub struct SseUpstream {
    inner: Arc<Mutex<Inner>>,
    /// Responses currently being streamed (dropped when the client goes away).
    open: Arc<AtomicUsize>,
    pub addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl SseUpstream {
    pub async fn start() -> SseUpstream {
        let upstream = SseUpstream {
            inner: Arc::default(),
            open: Arc::default(),
            addr: "127.0.0.1:0".parse().unwrap(),
            server: Mutex::new(None),
        };
        upstream.listen("127.0.0.1:0".parse().unwrap()).await
    }

    async fn listen(mut self, addr: SocketAddr) -> SseUpstream {
        // A stopped server's listener closes once its aborted task is dropped: retry a bit.
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {addr}: {e}"),
            }
        };
        self.addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/{*path}", any(answer))
            .with_state((Arc::clone(&self.inner), Arc::clone(&self.open)));
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        *self.server.lock().unwrap() = Some(task);
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends an event to every open stream; returns its id.
    pub fn send(&self, event: &str, data: &str) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        let id = inner.log.len() as u64 + 1;
        let mut text = format!("id: {id}\nevent: {event}\n");
        for line in data.split('\n') {
            text.push_str(&format!("data: {line}\n"));
        }
        text.push('\n');
        let bytes = Bytes::from(text);
        inner.log.push(bytes.clone());
        inner.live.retain(|tx| tx.send(Ok(bytes.clone())).is_ok());
        id
    }

    /// Writes raw bytes to every open stream (not logged, not replayed).
    pub fn send_raw(&self, bytes: &[u8]) {
        let bytes = Bytes::copy_from_slice(bytes);
        let mut inner = self.inner.lock().unwrap();
        inner.live.retain(|tx| tx.send(Ok(bytes.clone())).is_ok());
    }

    /// Serves `body` once on `path`, then ends that response.
    pub fn script(&self, path: &str, body: &[u8]) {
        let body = Bytes::copy_from_slice(body);
        self.inner
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_owned(), body);
    }

    /// Serves `body` on every request for `path`, each response ending after it.
    pub fn script_every_time(&self, path: &str, body: &[u8]) {
        let body = Bytes::copy_from_slice(body);
        self.inner
            .lock()
            .unwrap()
            .repeated
            .insert(path.to_owned(), body);
    }

    /// Resumes from the `Last-Event-ID` event itself (sending it again) from now on.
    pub fn resume_inclusively(&self) {
        self.inner.lock().unwrap().inclusive_resume = true;
    }

    /// Dies: stops listening (connections are refused) and breaks every open stream.
    pub fn stop(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
        let mut inner = self.inner.lock().unwrap();
        for tx in inner.live.drain(..) {
            let _ = tx.send(Err(std::io::Error::other("upstream died")));
        }
    }

    /// Comes back on the same port, with its event log.
    pub async fn restart(self) -> SseUpstream {
        let addr = self.addr;
        self.listen(addr).await
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Decrements the open-stream count when the response body is dropped.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    State((inner, open)): State<(Arc<Mutex<Inner>>, Arc<AtomicUsize>)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
    {
        let mut inner = inner.lock().unwrap();
        inner.seen.push(Seen {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers.clone(),
        });
        let scripted = inner.scripts.remove(uri.path());
        if let Some(body) = scripted.or_else(|| inner.repeated.get(uri.path()).cloned()) {
            let _ = tx.send(Ok(body));
            drop(tx);
        } else {
            let after: usize = headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .map(|id| id - usize::from(inner.inclusive_resume && id > 0))
                .unwrap_or(inner.log.len());
            for bytes in inner.log.iter().skip(after) {
                let _ = tx.send(Ok(bytes.clone()));
            }
            inner.live.push(tx);
        }
    }
    open.fetch_add(1, Ordering::SeqCst);
    let guard = OpenGuard(open);
    let body = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let chunk = rx.recv().await?;
        Some((chunk, (rx, guard)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap()
}

/// One byte-level SSE vector (`tests/fixtures/sse-vectors`).
#[derive(Debug, serde::Deserialize)]
pub struct Vector {
    pub name: String,
    pub body: String,
    pub expected: Vec<Expected>,
}

/// An event a vector's body dispatches, as a browser sees it.
#[derive(Debug, serde::Deserialize)]
pub struct Expected {
    #[serde(rename = "type")]
    pub event: String,
    pub data: String,
    #[serde(rename = "lastEventId")]
    pub last_event_id: String,
}

/// The byte-level SSE vectors derived from the WPT EventSource suite.
pub fn wpt_vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sse-vectors/vectors.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("SSE vectors are required at {path}: {e}"));
    let vectors: Vec<Vector> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 20, "the whole vector file");
    vectors
}
