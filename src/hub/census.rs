//! The streams open on this node, one card each: how many (the `streamgate_connections`
//! gauge, the figures) and, for the admin stats, which: each one's channels and what it was
//! sent. A card is made when an outlet opens and gone when it drops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use super::shown_name;
use crate::metrics::{Metrics, Tally};

/// The cards of the open streams.
#[derive(Debug)]
pub struct Census {
    metrics: Metrics,
    next: AtomicU64,
    /// By number: oldest first.
    cards: Mutex<BTreeMap<u64, Arc<Card>>>,
}

/// Kept small: every idle stream has one.
#[derive(Debug)]
struct Card {
    opened_ms: u64,
    /// The id a client addresses and resumes the connection by, when it has one.
    connection: Option<Box<str>>,
    /// Most streams read one channel: no allocation for it.
    channels: Mutex<SmallVec<[Arc<str>; 1]>>,
    delivered: AtomicU64,
    /// What it is sent counts in the metrics (not a watcher of the node's own figures).
    metered: bool,
}

/// One open stream, as the admin stats show it.
#[derive(Debug, serde::Serialize)]
pub struct StreamStats {
    #[serde(rename = "connectionId", skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "openedAt")]
    pub opened_ms: u64,
    /// As `shown_name` shows them.
    pub channels: Vec<String>,
    /// Events written to it so far.
    pub delivered: u64,
}

impl Census {
    pub fn new(metrics: Metrics) -> Census {
        Census {
            metrics,
            next: AtomicU64::new(0),
            cards: Mutex::default(),
        }
    }

    /// A card for a stream opening now, counted until the handle drops; what it is sent
    /// counts in the metrics when `metered`.
    pub fn open(self: &Arc<Self>, connection: Option<String>, metered: bool) -> Counted {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let card = Arc::new(Card {
            opened_ms: crate::clock::now_ms(),
            connection: connection.map(String::into_boxed_str),
            channels: Mutex::default(),
            delivered: AtomicU64::new(0),
            metered,
        });
        self.cards.lock().unwrap().insert(number, Arc::clone(&card));
        self.metrics.connections.increment(1.0);
        Counted {
            census: Arc::clone(self),
            number,
            card,
        }
    }

    /// How many streams are open.
    pub fn count(&self) -> usize {
        self.cards.lock().unwrap().len()
    }

    /// The open streams, oldest first, at most `most` of them.
    pub fn list(&self, most: usize) -> Vec<StreamStats> {
        let cards: Vec<Arc<Card>> = {
            let cards = self.cards.lock().unwrap();
            cards.values().take(most).cloned().collect()
        };
        cards
            .into_iter()
            .map(|card| StreamStats {
                connection: card.connection.as_deref().map(str::to_owned),
                opened_ms: card.opened_ms,
                channels: card
                    .channels
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|c| shown_name(c))
                    .collect(),
                delivered: card.delivered.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// An open stream's card: dropped when the stream closes.
#[derive(Debug)]
pub struct Counted {
    census: Arc<Census>,
    number: u64,
    card: Arc<Card>,
}

impl Counted {
    /// The stream reads `channel` from now on.
    pub fn joined(&self, channel: Arc<str>) {
        self.card.channels.lock().unwrap().push(channel);
    }

    /// The stream no longer reads `channel`.
    pub fn left(&self, channel: &str) {
        let mut channels = self.card.channels.lock().unwrap();
        if let Some(i) = channels.iter().position(|c| &**c == channel) {
            channels.remove(i);
        }
    }

    /// A chunk of `bytes` is written to the stream, its events' delivery latencies with it.
    pub fn wrote(&self, bytes: usize, latencies: &Tally) {
        if self.card.metered {
            self.census.metrics.wrote(bytes, latencies);
        }
    }

    /// The write window held the stream's next write.
    pub fn held(&self) {
        if self.card.metered {
            self.census.metrics.held();
        }
    }

    /// `n` events were written to the stream.
    pub fn delivered(&self, n: u64) {
        self.card.delivered.fetch_add(n, Ordering::Relaxed);
        if self.card.metered {
            self.census.metrics.delivered(n);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.census.cards.lock().unwrap().remove(&self.number);
        self.census.metrics.connections.decrement(1.0);
    }
}
