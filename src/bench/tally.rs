//! What one process's subscribers have seen: counters shared by all its connections, the
//! latency histogram, and per-connection delivery counts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::clock;
use super::histogram::{Histogram, Snapshot};
use super::marker::Stamp;

/// Shared by every subscriber task of a process; all updates are relaxed atomics.
pub struct Tally {
    pub connected: AtomicU64,
    /// Connections that never got a 2xx response head.
    pub failed: AtomicU64,
    /// Connections that ended after they had been accepted.
    pub dropped: AtomicU64,
    /// Distinct messages received, summed over connections.
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    /// See [`Arrival`] for the difference.
    pub overtaken: AtomicU64,
    pub out_of_order: AtomicU64,
    /// Unix micros of the last successful connect and of the last delivery.
    pub last_connect_us: AtomicU64,
    pub last_receive_us: AtomicU64,
    pub latency: Histogram,
    /// Per connection, by index within the process: 0 until the server accepted it, then one
    /// more than the distinct messages it received, so that connections that never opened
    /// stay out of the per-connection figures.
    per_connection: Box<[AtomicU64]>,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    pub fn new(connections: usize) -> Tally {
        Tally {
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            overtaken: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            last_connect_us: AtomicU64::new(0),
            last_receive_us: AtomicU64::new(0),
            latency: Histogram::default(),
            per_connection: (0..connections).map(|_| AtomicU64::new(0)).collect(),
            first_error: Mutex::new(None),
        }
    }

    /// Keeps the first error only: with thousands of connections the rest repeat it.
    pub fn error(&self, message: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(message);
    }

    pub fn connect_succeeded(&self, slot: usize) {
        self.per_connection[slot].store(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
        self.last_connect_us
            .fetch_max(clock::unix_micros(), Ordering::Relaxed);
    }

    /// Counts `fresh` distinct messages delivered on connection `slot` at `at_us`.
    pub fn delivered(&self, slot: usize, fresh: u64, at_us: u64) {
        self.received.fetch_add(fresh, Ordering::Relaxed);
        self.per_connection[slot].fetch_add(fresh, Ordering::Relaxed);
        self.last_receive_us.fetch_max(at_us, Ordering::Relaxed);
    }

    pub fn progress(&self) -> Progress {
        Progress {
            connected: self.connected.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }

    pub fn summary(&self, rss_kib: Option<u64>) -> Summary {
        let mut per_connection = BTreeMap::new();
        for slot in &self.per_connection {
            if let Some(received) = slot.load(Ordering::Relaxed).checked_sub(1) {
                *per_connection.entry(received).or_insert(0) += 1;
            }
        }
        Summary {
            progress: self.progress(),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            overtaken: self.overtaken.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            last_connect_us: self.last_connect_us.load(Ordering::Relaxed),
            last_receive_us: self.last_receive_us.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
            per_connection: per_connection.into_iter().collect(),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            rss_kib,
        }
    }
}

/// The counters worth showing while a run goes on.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Progress {
    pub connected: u64,
    pub failed: u64,
    pub dropped: u64,
    pub received: u64,
}

impl Progress {
    pub fn add(&mut self, other: &Progress) {
        self.connected += other.connected;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.received += other.received;
    }
}

/// Everything a process saw, in a form that adds up across processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub progress: Progress,
    pub duplicates: u64,
    pub overtaken: u64,
    pub out_of_order: u64,
    pub last_connect_us: u64,
    pub last_receive_us: u64,
    pub latency: Snapshot,
    /// `(distinct messages received, accepted connections that received exactly that many)`.
    pub per_connection: Vec<(u64, u64)>,
    pub first_error: Option<String>,
    /// The process's own resident memory, to show the load generator's footprint.
    pub rss_kib: Option<u64>,
}

impl Summary {
    pub fn merge(&mut self, other: &Summary) {
        self.progress.add(&other.progress);
        self.duplicates += other.duplicates;
        self.overtaken += other.overtaken;
        self.out_of_order += other.out_of_order;
        self.last_connect_us = self.last_connect_us.max(other.last_connect_us);
        self.last_receive_us = self.last_receive_us.max(other.last_receive_us);
        self.latency.merge(&other.latency);
        let mut counts: BTreeMap<u64, u64> = self.per_connection.iter().copied().collect();
        for &(received, connections) in &other.per_connection {
            *counts.entry(received).or_insert(0) += connections;
        }
        self.per_connection = counts.into_iter().collect();
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.rss_kib = match (self.rss_kib, other.rss_kib) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// One connection's view of the message sequence: it tells a repeat from a late arrival
/// within the last 128 positions, and a true reordering from a race between publishes that
/// were in flight together, in a few words whatever the number of messages.
#[derive(Debug, Default)]
pub struct Sequence {
    /// One more than the highest seq seen; 0 before the first message.
    next: u64,
    /// Bit `k` set: seq `next - 1 - k` was seen.
    window: u128,
    /// The highest `settled` among the messages seen: every seq below it had been answered
    /// before one of them was sent, so it should have arrived before that one.
    settled: u64,
}

/// How a received message relates to those seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// New, after a higher seq whose publish overlapped its own: the server may order
    /// concurrent publishes either way.
    Overtaken,
    /// New, after a message published once this one had been answered: the server reordered.
    OutOfOrder,
    Repeat,
}

impl Sequence {
    pub fn observe(&mut self, stamp: Stamp) -> Arrival {
        let seq = stamp.seq;
        let late = if seq < self.settled {
            Arrival::OutOfOrder
        } else {
            Arrival::Overtaken
        };
        self.settled = self.settled.max(stamp.settled);
        if seq >= self.next {
            let shift = seq + 1 - self.next;
            self.window = if shift >= 128 {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.next = seq + 1;
            // A gap is not disorder by itself: it becomes disorder if a skipped seq turns up.
            return Arrival::InOrder;
        }
        let back = self.next - 1 - seq;
        if back >= 128 {
            // Too far back to remember: counted as new.
            return late;
        }
        let bit = 1u128 << back;
        if self.window & bit != 0 {
            Arrival::Repeat
        } else {
            self.window |= bit;
            late
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64, settled: u64) -> Stamp {
        Stamp {
            seq,
            settled,
            sent_us: 0,
        }
    }

    #[test]
    fn repeats_and_late_arrivals() {
        let mut sequence = Sequence::default();
        assert_eq!(sequence.observe(stamp(0, 0)), Arrival::InOrder);
        assert_eq!(sequence.observe(stamp(2, 1)), Arrival::InOrder);
        assert_eq!(sequence.observe(stamp(1, 1)), Arrival::Overtaken);
        assert_eq!(sequence.observe(stamp(1, 1)), Arrival::Repeat);
        assert_eq!(sequence.observe(stamp(2, 1)), Arrival::Repeat);
        assert_eq!(sequence.observe(stamp(500, 400)), Arrival::InOrder);
        assert_eq!(sequence.observe(stamp(3, 3)), Arrival::OutOfOrder);
        assert_eq!(sequence.observe(stamp(499, 400)), Arrival::Overtaken);
        assert_eq!(sequence.observe(stamp(499, 400)), Arrival::Repeat);
        assert_eq!(sequence.observe(stamp(450, 400)), Arrival::Overtaken);
    }

    #[test]
    fn summaries_add_up() {
        let tally = Tally::new(3);
        for slot in 0..2 {
            tally.connect_succeeded(slot);
            tally.delivered(slot, 5, 1);
        }
        tally.latency.record(100);
        let mut total = tally.summary(Some(10));
        total.merge(&tally.summary(Some(20)));
        assert_eq!(total.per_connection, vec![(5, 4)]);
        assert_eq!(total.latency.count(), 2);
        assert_eq!(total.rss_kib, Some(30));
    }
}
