//! When a connection hyper serves has been idle for `[limits] read_timeout_ms`: no request
//! open (from when it begins until its response's body ends: a stream counts for as long as
//! it is open). hyper closes an idle HTTP/1 connection itself, but nothing closes an HTTP/2
//! one whose client answers pings and opens no stream: it would hold its connection slot
//! for ever.

use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use tokio::sync::watch;

use crate::http::watched::{Watcher, watch};

/// Requests open on one connection, and how many have begun (a request begun and done
/// between two looks is activity too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Busy {
    open: usize,
    begun: u64,
}

/// One connection's activity, shared by its requests.
#[derive(Clone)]
pub struct Activity {
    busy: watch::Sender<Busy>,
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            busy: watch::Sender::new(Busy::default()),
        }
    }

    /// A request begins: open until the handle (or the response body it is attached to)
    /// drops.
    pub fn begin(&self) -> Open {
        self.busy.send_modify(|busy| {
            busy.open += 1;
            busy.begun += 1;
        });
        Open(self.busy.clone())
    }

    /// Resolves once the connection has been idle for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut busy = self.busy.subscribe();
        loop {
            if busy.wait_for(|b| b.open == 0).await.is_err() {
                return;
            }
            let seen = busy.borrow_and_update().begun;
            let active = busy.wait_for(|b| b.open > 0 || b.begun != seen);
            if tokio::time::timeout(timeout, active).await.is_err() {
                return;
            }
        }
    }
}

/// A request, counted open while it lives.
pub struct Open(watch::Sender<Busy>);

impl Open {
    /// The request goes on as `response`'s body.
    pub fn attach(self, response: Response<Body>) -> Response<Body> {
        watch(response, self)
    }
}

impl Watcher for Open {}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|busy| busy.open -= 1);
    }
}
