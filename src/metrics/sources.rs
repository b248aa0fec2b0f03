//! The series of polled APIs and relays, labelled by the name the operator gave them
//! (`api`, `relay`): few values, never a URL or a secret. Ad-hoc polls share `api="*"`.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, counter, describe_counter};

use super::histogram::{Family, Histogram};

/// The `api` label of polls made for no configured API.
pub const AD_HOC: &str = "*";

static POLL_DURATION: Family = Family::new(
    "streamgate_poll_duration_seconds",
    "Time from a poll's request to its whole answer, by API",
    "api",
);

/// Describes the series (once, when the recorder is installed).
pub(super) fn describe() {
    describe_counter!(
        "streamgate_poll_requests_total",
        "Requests made to polled APIs, by API and result (ok, not_modified, failed)"
    );
    describe_counter!(
        "streamgate_poll_failures_total",
        "Failed polls, by API and reason (the HTTP status, or timeout, connect, tls, refused, parse, size)"
    );
    describe_counter!(
        "streamgate_poll_bytes_in_total",
        "Bytes of documents read from polled APIs, by API"
    );
    describe_counter!(
        "streamgate_poll_patch_bytes_out_total",
        "Bytes of JSON Patch published for polled APIs' changes, by API"
    );
    describe_counter!(
        "streamgate_poll_skipped_slots_total",
        "Poll slots skipped because the topic's previous poll was still running, by API"
    );
    describe_counter!(
        "streamgate_relay_connections_total",
        "Connections made to relays' upstream SSE servers, by relay"
    );
    describe_counter!(
        "streamgate_relay_reconnects_total",
        "Times a relay's upstream connection failed or ended (made again while watched), by relay"
    );
    describe_counter!(
        "streamgate_relay_events_total",
        "Events received from relays' upstream SSE servers, by relay"
    );
}

/// Writes the histograms kept here.
pub(super) fn write(out: &mut String) {
    POLL_DURATION.write(out);
}

/// The handles of one API's polls, resolved when its poller starts.
pub struct PollMetrics {
    api: Arc<str>,
    ok: Counter,
    not_modified: Counter,
    failed: Counter,
    bytes_in: Counter,
    patch_bytes: Counter,
    skipped: Counter,
    duration: Arc<Histogram>,
}

impl PollMetrics {
    /// The handles of `api`'s series (`AD_HOC` for polls of no configured API).
    pub fn of(api: &str) -> Self {
        let result = |result: &'static str| counter!("streamgate_poll_requests_total", "api" => api.to_owned(), "result" => result);
        PollMetrics {
            api: Arc::from(api),
            ok: result("ok"),
            not_modified: result("not_modified"),
            failed: result("failed"),
            bytes_in: counter!("streamgate_poll_bytes_in_total", "api" => api.to_owned()),
            patch_bytes: counter!("streamgate_poll_patch_bytes_out_total", "api" => api.to_owned()),
            skipped: counter!("streamgate_poll_skipped_slots_total", "api" => api.to_owned()),
            duration: POLL_DURATION.of(api),
        }
    }

    /// A poll answered with a document of `bytes` (`None`: not modified), in `took`.
    pub fn answered(&self, bytes: Option<usize>, took: Duration) {
        match bytes {
            Some(bytes) => {
                self.ok.increment(1);
                self.bytes_in.increment(bytes as u64);
            }
            None => self.not_modified.increment(1),
        }
        self.duration.record_us(took.as_micros() as u64);
    }

    /// A poll failed for `reason`, after `took`.
    pub fn failed(&self, reason: &str, took: Duration) {
        self.failed.increment(1);
        let (api, reason) = (self.api.to_string(), reason.to_owned());
        counter!("streamgate_poll_failures_total", "api" => api, "reason" => reason).increment(1);
        self.duration.record_us(took.as_micros() as u64);
    }

    /// A patch of `bytes` was published.
    pub fn patched(&self, bytes: usize) {
        self.patch_bytes.increment(bytes as u64);
    }

    /// `slots` poll slots were skipped.
    pub fn skipped(&self, slots: u64) {
        self.skipped.increment(slots);
    }
}

/// The handles of one relay's upstream connections.
pub struct RelayMetrics {
    pub connections: Counter,
    pub reconnects: Counter,
    pub events: Counter,
}

impl RelayMetrics {
    pub fn of(relay: &str) -> Self {
        let relay = relay.to_owned();
        RelayMetrics {
            connections: counter!("streamgate_relay_connections_total", "relay" => relay.clone()),
            reconnects: counter!("streamgate_relay_reconnects_total", "relay" => relay.clone()),
            events: counter!("streamgate_relay_events_total", "relay" => relay),
        }
    }
}
