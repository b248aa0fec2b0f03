//! Prometheus metrics: the handles the hot paths bump, registered once per process.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Handles resolved once, so hot paths do an atomic add, not a registry lookup.
#[derive(Clone)]
pub struct Metrics {
    /// Open streaming connections.
    pub connections: Gauge,
    pub channels: Gauge,
    pub published: Counter,
    pub delivered: Counter,
    /// Events a slow subscriber missed because they left history before it read them.
    pub drops: Counter,
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
                handle
            })
            .clone();
        let metrics = Metrics {
            connections: gauge!("streamgate_connections"),
            channels: gauge!("streamgate_channels"),
            published: counter!("streamgate_messages_published_total"),
            delivered: counter!("streamgate_messages_delivered_total"),
            drops: counter!("streamgate_queue_drops_total"),
        };
        (metrics, handle)
    }
}
