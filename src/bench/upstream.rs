//! The simulated API of `streamgate bench poll`: a real HTTP server on loopback serving one
//! JSON document per topic at `/topic/{n}`, a new version of every document each interval.
//!
//! Each version carries its number and the time it was made (`{"version", "sentAt",
//! "items"}`), so a subscriber reading the document knows how old it is. The server also
//! notes when each version was first served, that is when the gateway's poll picked it up:
//! the age of a version at that moment is the wait for the next poll, not the gateway's work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::clock;

/// What the documents look like and how fast they change.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub topics: usize,
    pub doc_bytes: usize,
    /// Share of the items changed by each new version.
    pub churn: f64,
    pub interval: Duration,
}

/// One topic's current document and what was asked of it.
#[derive(Default)]
pub struct Topic {
    current: RwLock<(u64, Bytes)>,
    requests: AtomicU64,
    /// Version -> Unix microseconds it was first served.
    served: Mutex<BTreeMap<u64, u64>>,
}

impl Topic {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// When `version` was first served, in Unix microseconds.
    pub fn served_at(&self, version: u64) -> Option<u64> {
        lock(&self.served).get(&version).copied()
    }

    /// The versions served in `first..=last`.
    pub fn served_between(&self, first: u64, last: u64) -> Vec<u64> {
        lock(&self.served)
            .range(first..=last)
            .map(|(&v, _)| v)
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a map of numbers half-written: keep using it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub topics: Arc<[Topic]>,
    /// Items in each document.
    pub items: usize,
}

impl Upstream {
    /// Makes the first version of every document, starts the thread that makes the next ones
    /// and the HTTP server (on a thread of its own) on a free loopback port.
    pub fn start(shape: Shape) -> Result<Upstream, String> {
        let topics: Arc<[Topic]> = (0..shape.topics).map(|_| Topic::default()).collect();
        let mut documents: Vec<Document> = (0..shape.topics)
            .map(|t| Document::new(t, shape.doc_bytes))
            .collect();
        let items = documents.first().map_or(0, |d| d.items.len());
        for (document, topic) in documents.iter_mut().zip(topics.iter()) {
            *topic.current.write().unwrap_or_else(|e| e.into_inner()) = document.next(0.0);
        }
        let makers = Arc::clone(&topics);
        // A thread of its own: serializing 100 documents of 50 KB takes milliseconds that
        // would otherwise delay the subscribers' reads on the runtime's threads.
        std::thread::Builder::new()
            .name("bench-upstream".into())
            .spawn(move || make_versions(shape, documents, &makers))
            .map_err(|e| format!("cannot start the simulated API: {e}"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on loopback for the simulated API: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the simulated API's address: {e}"))?;
        let app = Router::new()
            .route("/topic/{n}", get(serve_topic))
            .with_state(Arc::clone(&topics));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the simulated API's runtime: {e}"))?;
        // A runtime and thread of its own: on the subscribers' runtime, busy parsing
        // thousands of events, the gateway's polls would wait and skip their slots.
        std::thread::Builder::new()
            .name("bench-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = axum::serve(listener, app).await;
                        }
                        Err(e) => eprintln!("the simulated API cannot serve: {e}"),
                    }
                })
            })
            .map_err(|e| format!("cannot start the simulated API: {e}"))?;
        Ok(Upstream {
            addr,
            topics,
            items,
        })
    }
}

async fn serve_topic(State(topics): State<Arc<[Topic]>>, Path(n): Path<usize>) -> Response {
    let Some(topic) = topics.get(n) else {
        return (StatusCode::NOT_FOUND, "no such topic").into_response();
    };
    topic.requests.fetch_add(1, Ordering::Relaxed);
    let (version, body) = topic
        .current
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    lock(&topic.served)
        .entry(version)
        .or_insert_with(clock::unix_micros);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Every interval, the next version of every topic, until the process ends.
fn make_versions(shape: Shape, mut documents: Vec<Document>, topics: &[Topic]) {
    let start = Instant::now();
    for tick in 1u32.. {
        std::thread::sleep(
            (start + shape.interval * tick).saturating_duration_since(Instant::now()),
        );
        for (document, topic) in documents.iter_mut().zip(topics) {
            let next = document.next(shape.churn);
            *topic.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        }
    }
}

/// One topic's items (quotes) and their version: the documents of the simulated API, also
/// the input of the poll step's criterion benchmark.
pub struct Document {
    version: u64,
    items: Vec<Value>,
    rng: StdRng,
}

impl Document {
    /// As many quotes as fit in about `bytes`.
    pub fn new(topic: usize, bytes: usize) -> Document {
        let mut rng = StdRng::seed_from_u64(topic as u64);
        let quote = |rng: &mut StdRng, i: usize| {
            let price = rng.random_range(10.0..500.0);
            json!({
                "symbol": format!("T{topic}S{i:05}"),
                "price": cents(price),
                "bid": cents(price * 0.999),
                "ask": cents(price * 1.001),
                "volume": rng.random_range(1_000..1_000_000u64),
            })
        };
        let size = quote(&mut rng, 0).to_string().len() + 1;
        let items = (0..(bytes / size).max(1))
            .map(|i| quote(&mut rng, i))
            .collect();
        Document {
            version: 0,
            items,
            rng,
        }
    }

    /// The next version with `churn` of the items changed: its number and its body.
    pub fn next(&mut self, churn: f64) -> (u64, Bytes) {
        let changed = ((self.items.len() as f64 * churn).round() as usize).min(self.items.len());
        for i in rand::seq::index::sample(&mut self.rng, self.items.len(), changed) {
            let price = self.items[i]["price"].as_f64().unwrap_or(100.0)
                * self.rng.random_range(0.99..1.01);
            let volume =
                self.items[i]["volume"].as_u64().unwrap_or(0) + self.rng.random_range(1..500u64);
            let item = &mut self.items[i];
            item["price"] = json!(cents(price));
            item["bid"] = json!(cents(price * 0.999));
            item["ask"] = json!(cents(price * 1.001));
            item["volume"] = json!(volume);
        }
        self.version += 1;
        // Milliseconds with microsecond decimals: whole milliseconds would add up to 1 ms to
        // every latency measured.
        let sent_at = clock::unix_micros() as f64 / 1000.0;
        let body = json!({"version": self.version, "sentAt": sent_at, "items": self.items});
        (self.version, Bytes::from(body.to_string()))
    }
}

fn cents(price: f64) -> f64 {
    (price * 100.0).round() / 100.0
}
