//! Prometheus metrics: the handles the hot paths bump, registered once per process.

mod histogram;
mod sources;

pub use histogram::{Family, Histogram, Tally};
pub use sources::{AD_HOC, PollMetrics, RelayMetrics};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Handles resolved once, so hot paths do an atomic add, not a registry lookup.
#[derive(Clone)]
pub struct Metrics {
    /// Open streaming connections.
    pub connections: Gauge,
    pub channels: Gauge,
    published: Counter,
    delivered: Counter,
    /// The same counts, readable back (a Prometheus counter is not).
    totals: Arc<Totals>,
    /// Events a slow subscriber missed because they left history before it read them.
    pub drops: Counter,
    /// Bytes of streams written to clients.
    written: Counter,
    /// Writes to streams, and those the write window held (see `outlet::window`).
    writes: Counter,
    held: Counter,
    /// Delivery latency: from an event's append to its bytes going to a stream's socket.
    latency: Arc<Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Installs the process-wide Prometheus recorder (once) and resolves the handles.
    pub fn install() -> (Metrics, PrometheusHandle) {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE
            .get_or_init(|| {
                let handle = PrometheusBuilder::new()
                    .install_recorder()
                    .expect("no other metrics recorder is installed");
                describe_gauge!("streamgate_connections", "Open streaming connections");
                describe_gauge!("streamgate_channels", "Channels in memory");
                describe_counter!(
                    "streamgate_messages_published_total",
                    "Messages appended to channels"
                );
                describe_counter!(
                    "streamgate_messages_delivered_total",
                    "Messages written to streaming connections"
                );
                describe_counter!(
                    "streamgate_queue_drops_total",
                    "Messages a slow subscriber missed because they left history first"
                );
                describe_counter!(
                    "streamgate_bytes_written_total",
                    "Bytes written to clients: streams, and responses of a known length"
                );
                describe_counter!(
                    "streamgate_stream_writes_total",
                    "Writes to streams' sockets: each carries every event that waited"
                );
                describe_counter!(
                    "streamgate_stream_writes_held_total",
                    "Writes to streams held by the write window to gather more events"
                );
                sources::describe();
                describe_gauge!(
                    "streamgate_build_info",
                    "1, with the version of the running build as a label"
                );
                describe_gauge!(
                    "streamgate_process_resident_memory_bytes",
                    "Resident memory of the gateway's process, in bytes"
                );
                describe_gauge!(
                    "streamgate_process_cpu_seconds",
                    "CPU time (user and system) the gateway's process has used, in seconds"
                );
                describe_gauge!(
                    "streamgate_process_open_files",
                    "Files, sockets included, the gateway's process holds open"
                );
                gauge!("streamgate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                describe_counter!(
                    "streamgate_limit_refusals_total",
                    "Connections and requests refused or closed by a limit, by limit"
                );
                // Every series exists from the start, so a dashboard sees 0, not nothing.
                for limit in Limit::ALL {
                    limit.counter().increment(0);
                }
                handle
            })
            .clone();
        let metrics = Metrics {
            connections: gauge!("streamgate_connections"),
            channels: gauge!("streamgate_channels"),
            published: counter!("streamgate_messages_published_total"),
            delivered: counter!("streamgate_messages_delivered_total"),
            totals: Arc::default(),
            drops: counter!("streamgate_queue_drops_total"),
            written: counter!("streamgate_bytes_written_total"),
            writes: counter!("streamgate_stream_writes_total"),
            held: counter!("streamgate_stream_writes_held_total"),
            latency: Arc::default(),
        };
        (metrics, handle)
    }

    /// `n` events entered channels.
    pub fn published(&self, n: u64) {
        self.published.increment(n);
        self.totals.published.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` events were written to a streaming connection.
    pub fn delivered(&self, n: u64) {
        self.delivered.increment(n);
        self.totals.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// A chunk of `bytes` went to a stream, with `latencies` of the events in it.
    pub fn wrote(&self, bytes: usize, latencies: &Tally) {
        self.written.increment(bytes as u64);
        self.writes.increment(1);
        if !latencies.is_empty() {
            self.latency.add(latencies);
        }
    }

    /// The write window held a stream's write.
    pub fn held(&self) {
        self.held.increment(1);
    }

    /// `bytes` of a response that is not a stream went to a client.
    pub fn answered(&self, bytes: u64) {
        self.written.increment(bytes);
    }

    /// What `/metrics` answers: the exporter's series, then the gateway's own histograms,
    /// the process's figures read now.
    pub fn render(&self, prometheus: &PrometheusHandle) -> String {
        Self::observe_process();
        let mut text = prometheus.render();
        histogram::write(
            "streamgate_delivery_latency_seconds",
            "From an event's append on this node to its bytes going to a stream's socket",
            &self.latency,
            &mut text,
        );
        sources::write(&mut text);
        text
    }

    /// A polled API was requested (its series are `PollMetrics`'s).
    pub fn polled(&self) {
        self.totals.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads the process's figures into their gauges (at each scrape: read then, not kept
    /// up to date in between).
    fn observe_process() {
        let pid = std::process::id();
        if let Some(kib) = crate::procfs::rss_kib(pid) {
            gauge!("streamgate_process_resident_memory_bytes").set((kib * 1024) as f64);
        }
        if let Some(micros) = crate::procfs::cpu_micros(pid) {
            gauge!("streamgate_process_cpu_seconds").set(micros as f64 / 1e6);
        }
        if let Some(open) = crate::procfs::open_files(pid) {
            gauge!("streamgate_process_open_files").set(open as f64);
        }
    }

    /// The counts since the process started.
    pub fn counts(&self) -> Counts {
        let totals = &self.totals;
        Counts {
            published: totals.published.load(Ordering::Relaxed),
            delivered: totals.delivered.load(Ordering::Relaxed),
            polls: totals.polls.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
struct Totals {
    published: AtomicU64,
    delivered: AtomicU64,
    polls: AtomicU64,
}

/// Counts since the process started, read at one time: what the gateway's own figures are
/// made of (see `sources::figures`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub published: u64,
    pub delivered: u64,
    pub polls: u64,
}

/// A limit that refuses connections or requests: the `limit` label of
/// `streamgate_limit_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `[limits] max_connections`.
    Connections,
    /// `[limits] max_connections_per_ip`.
    ConnectionsPerIp,
    /// `[limits] publish_rate_per_key` / `publish_burst`.
    PublishRate,
    /// `[limits] max_streams_per_connection`.
    StreamsPerConnection,
    /// `[limits] max_header_bytes`.
    HeaderSize,
    /// `[limits] max_body_bytes`, and `[channels] max_message_bytes` for a publish.
    BodySize,
    /// `[limits] read_timeout_ms`, for a request body.
    BodyTimeout,
    /// `[limits] max_body_buffer_bytes`.
    BodyBuffer,
    /// `[limits] write_timeout_ms`: a connection closed because its client read nothing.
    WriteTimeout,
}

impl Limit {
    const ALL: [Limit; 9] = [
        Limit::Connections,
        Limit::ConnectionsPerIp,
        Limit::PublishRate,
        Limit::StreamsPerConnection,
        Limit::HeaderSize,
        Limit::BodySize,
        Limit::BodyTimeout,
        Limit::BodyBuffer,
        Limit::WriteTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::ConnectionsPerIp => "connections_per_ip",
            Limit::PublishRate => "publish_rate",
            Limit::StreamsPerConnection => "streams_per_connection",
            Limit::HeaderSize => "header_size",
            Limit::BodySize => "body_size",
            Limit::BodyTimeout => "body_timeout",
            Limit::BodyBuffer => "body_buffer",
            Limit::WriteTimeout => "write_timeout",
        }
    }

    fn counter(self) -> Counter {
        counter!("streamgate_limit_refusals_total", "limit" => self.label())
    }

    /// Counts one refusal. Refusals are rare next to deliveries, so the registry lookup
    /// this does is not worth a cached handle.
    pub fn refused(self) {
        self.counter().increment(1);
    }
}
