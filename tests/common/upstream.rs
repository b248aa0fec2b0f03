//! A real upstream JSON API for poll tests: an HTTP server whose document and behaviour the
//! test changes while the gateway polls it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// How the upstream answers the next requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// The document, with an ETag; 304 when the client's If-None-Match matches.
    Serve,
    Status(u16),
    NotJson,
    /// Waits this long before answering.
    Slow(Duration),
    Redirect(String),
}

#[derive(Debug)]
struct Inner {
    document: Value,
    version: u64,
    behaviour: Behaviour,
    requests: u64,
    not_modified: u64,
    /// Slow answers being made now, and the most there ever were at once.
    slow_now: u64,
    slow_peak: u64,
    /// The last request's headers and query, by path.
    last: HashMap<String, (HeaderMap, Option<String>)>,
}

#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl Upstream {
    pub async fn start(document: Value) -> Upstream {
        Self::start_on("127.0.0.1:0", document).await
    }

    pub async fn start_on(bind: &str, document: Value) -> Upstream {
        let inner = Arc::new(Mutex::new(Inner {
            document,
            version: 1,
            behaviour: Behaviour::Serve,
            requests: 0,
            not_modified: 0,
            slow_now: 0,
            slow_peak: 0,
            last: HashMap::new(),
        }));
        let app = Router::new()
            .route("/{*path}", get(answer))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { inner, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, document: Value) {
        let mut inner = self.inner.lock().unwrap();
        inner.document = document;
        inner.version += 1;
    }

    pub fn document(&self) -> Value {
        self.inner.lock().unwrap().document.clone()
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.inner.lock().unwrap().behaviour = behaviour;
    }

    pub fn requests(&self) -> u64 {
        self.inner.lock().unwrap().requests
    }

    /// The most `Slow` answers that were in the making at once.
    pub fn slow_peak(&self) -> u64 {
        self.inner.lock().unwrap().slow_peak
    }

    pub fn not_modified(&self) -> u64 {
        self.inner.lock().unwrap().not_modified
    }

    /// The headers and query of the last request for `path`.
    pub fn last_request(&self, path: &str) -> (HeaderMap, Option<String>) {
        self.inner
            .lock()
            .unwrap()
            .last
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("no request for {path}"))
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let (behaviour, document, etag) = {
        let mut inner = inner.lock().unwrap();
        inner.requests += 1;
        let seen = (headers.clone(), uri.query().map(str::to_owned));
        inner.last.insert(uri.path().to_owned(), seen);
        let etag = format!("\"v{}\"", inner.version);
        if inner.behaviour == Behaviour::Serve
            && headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            inner.not_modified += 1;
            return StatusCode::NOT_MODIFIED.into_response();
        }
        (inner.behaviour.clone(), inner.document.to_string(), etag)
    };
    match behaviour {
        Behaviour::Serve => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::ETAG, etag.as_str()),
            ],
            document,
        )
            .into_response(),
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Behaviour::NotJson => "<html>not json</html>".into_response(),
        Behaviour::Slow(wait) => {
            /// Counts a slow answer until it is sent or abandoned.
            struct Making(Arc<Mutex<Inner>>);
            impl Drop for Making {
                fn drop(&mut self) {
                    self.0.lock().unwrap().slow_now -= 1;
                }
            }
            {
                let mut inner = inner.lock().unwrap();
                inner.slow_now += 1;
                inner.slow_peak = inner.slow_peak.max(inner.slow_now);
            }
            let _making = Making(Arc::clone(&inner));
            tokio::time::sleep(wait).await;
            document.into_response()
        }
        Behaviour::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    }
}
