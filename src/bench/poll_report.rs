//! The report of `streamgate bench poll`: a table for people and one JSON object for scripts.

use std::fmt::Write;

use serde::Serialize;

use super::report::{Latency, mib, opt};

#[derive(Debug, Clone, Serialize)]
pub struct PollReport {
    pub gateway: String,
    pub upstream: String,
    pub topics: u64,
    pub subscribers: u64,
    pub connected: u64,
    pub connect_secs: f64,
    /// Connecting stopped at `--connect-timeout-s` before every subscriber was connected.
    pub connect_timed_out: bool,
    /// Accepted streams that ended or fell out of step before the end.
    pub dropped: u64,
    /// Items in each document.
    pub items: u64,
    pub doc_bytes: u64,
    pub churn: f64,
    pub interval_ms: u64,
    pub poll_interval_ms: u64,
    /// The measuring window, once every subscriber was connected.
    pub measured_secs: f64,
    /// `data` and `patch` events read in the window, all subscribers together.
    pub events: u64,
    pub events_per_sec: f64,
    /// From when a version was made (`sentAt`) to when a subscriber read it: includes the
    /// wait for the gateway's next poll, up to one poll interval.
    pub latency_us: Option<Latency>,
    /// From when the gateway's poll fetched a version to when a subscriber read it.
    pub after_fetch_us: Option<Latency>,
    /// Versions the gateway fetched that a subscriber skipped (between the first and the
    /// last version it read).
    pub missed_versions: u64,
    pub subscribers_missing: u64,
    /// Distinct versions read, all subscribers together.
    pub versions_seen: u64,
    /// Versions subscribers skipped because no poll fell in their lifetime (the version and
    /// poll clocks drift against each other); nothing a subscriber could have received.
    pub versions_unfetched: u64,
    pub requests_per_topic_per_interval: f64,
    pub gateway_process: Option<Gateway>,
    /// This process (the subscribers and the simulated API) over the measuring window, in %
    /// of one core: on one machine, what the gateway could not use.
    pub bench_cpu_percent: Option<f64>,
    pub errors: Vec<String>,
}

/// The gateway process, from `/proc/PID`.
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    pub pid: u32,
    /// CPU over the measuring window, in % of one core.
    pub cpu_percent: Option<f64>,
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
}

impl PollReport {
    /// The table, one figure per line.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(t, "  {label:<17}{value}");
        };
        line("gateway", self.gateway.clone());
        line("simulated API", self.upstream.clone());
        line(
            "documents",
            format!(
                "{} topics of {} B ({} items), {:.0}% of items changed every {} ms",
                self.topics,
                self.doc_bytes,
                self.items,
                self.churn * 100.0,
                self.interval_ms
            ),
        );
        line(
            "subscribers",
            format!(
                "{}/{} connected in {:.2} s ({} dropped), pollInterval={}",
                self.connected,
                self.subscribers,
                self.connect_secs,
                self.dropped,
                self.poll_interval_ms
            ),
        );
        line(
            "events",
            format!(
                "{} in {:.1} s ({:.0}/s)",
                self.events, self.measured_secs, self.events_per_sec
            ),
        );
        line("latency", opt(self.latency_us, Latency::show));
        line("after fetch", opt(self.after_fetch_us, Latency::show));
        line(
            "missed versions",
            format!(
                "{} ({} subscribers) of {} read; {} never fetched by a poll",
                self.missed_versions,
                self.subscribers_missing,
                self.versions_seen,
                self.versions_unfetched
            ),
        );
        line(
            "upstream load",
            format!(
                "{:.2} requests per topic per interval",
                self.requests_per_topic_per_interval
            ),
        );
        if let Some(gateway) = &self.gateway_process {
            line(
                "gateway CPU",
                opt(gateway.cpu_percent, |p| format!("{p:.0}% of one core")),
            );
            line(
                "gateway memory",
                format!(
                    "{} -> {} (pid {})",
                    opt(gateway.rss_start_kib, mib),
                    opt(gateway.rss_end_kib, mib),
                    gateway.pid
                ),
            );
        }
        line(
            "bench CPU",
            opt(self.bench_cpu_percent, |p| {
                format!("{p:.0}% of one core (subscribers and simulated API)")
            }),
        );
        for error in &self.errors {
            line("error", error.clone());
        }
        t
    }
}
