//! The final report: derived figures, a table for people and one JSON object for scripts.

use std::fmt::Write;

use serde::Serialize;

use super::histogram::Snapshot;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The first of `subscribe_urls`, as reports gave it before there could be several.
    pub subscribe_url: String,
    /// Every `--subscribe-url`, subscribers spread over them round-robin.
    pub subscribe_urls: Vec<String>,
    pub publish_url: String,
    pub subscribers: u64,
    pub processes: u64,
    pub connected: u64,
    pub connect_failed: u64,
    /// Accepted connections that ended before the report.
    pub dropped: u64,
    /// From the start until the last subscriber was accepted.
    pub connect_secs: Option<f64>,
    pub hold_secs: u64,
    pub messages: u64,
    pub rate: u32,
    pub payload_bytes: u64,
    pub published: u64,
    pub publish_failed: u64,
    /// From the first publish sent to the last publish answered.
    pub publish_secs: Option<f64>,
    /// Subscribers open when publishing started: each should get every published message.
    pub subscribers_at_publish: u64,
    pub deliveries_expected: u64,
    pub deliveries_received: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Arrived after a higher seq whose publish was in flight at the same time: the server
    /// may order concurrent publishes either way, so this is not an error.
    pub overtaken: u64,
    /// Arrived after a message that was published only once this one had been answered.
    pub out_of_order: u64,
    /// Accepted subscribers that received fewer distinct messages than were published.
    pub subscribers_short: u64,
    pub fewest_received: Option<u64>,
    /// Deliveries per second, from the first publish to the last delivery.
    pub delivered_per_sec: Option<f64>,
    pub latency_us: Option<Latency>,
    /// Publish request round trips.
    pub publish_latency_us: Option<Latency>,
    pub server: Option<Server>,
    /// Resident memory of the load generator's own processes at the end.
    pub bench_rss_kib: Option<u64>,
    pub timed_out: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(snapshot: &Snapshot) -> Option<Latency> {
        let at = |q| snapshot.quantile(q);
        Some(Latency {
            samples: snapshot.count(),
            p50: at(0.5)?,
            p90: at(0.9)?,
            p99: at(0.99)?,
            p999: at(0.999)?,
            max: snapshot.max(),
        })
    }

    pub fn show(self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.samples
        )
    }
}

/// The server process, from `/proc/PID`.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The server's processes; memory and CPU are their sums.
    pub pids: Vec<u32>,
    pub rss_before_kib: Option<u64>,
    /// After every subscriber connected and the connections sat idle.
    pub rss_connected_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub kib_per_connection: Option<f64>,
    /// User plus system CPU from the first publish until deliveries settled.
    pub cpu_us: Option<u64>,
    pub cpu_us_per_delivery: Option<f64>,
}

impl Report {
    /// The table, one figure per line.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(t, "  {label:<17}{value}");
        };
        line("subscribe", self.subscribe_urls.join(", "));
        line("publish", self.publish_url.clone());
        line(
            "subscribers",
            format!(
                "{}/{} connected in {} ({} failed, {} dropped, {} process{})",
                self.connected,
                self.subscribers,
                opt(self.connect_secs, |s| format!("{s:.2} s")),
                self.connect_failed,
                self.dropped,
                self.processes,
                if self.processes == 1 { "" } else { "es" }
            ),
        );
        if self.hold_secs > 0 {
            line("held idle", format!("{} s", self.hold_secs));
        }
        if self.messages > 0 && self.published + self.publish_failed == 0 {
            line("published", "nothing: publishing did not start".to_owned());
        } else if self.messages > 0 {
            let rate = if self.rate == 0 {
                "as fast as possible".to_owned()
            } else {
                format!("{}/s", self.rate)
            };
            line(
                "published",
                format!(
                    "{}/{} ({} failed) of {} B at {rate}, in {}{}",
                    self.published,
                    self.messages,
                    self.publish_failed,
                    self.payload_bytes,
                    opt(self.publish_secs, |s| format!("{s:.2} s")),
                    opt_suffix(self.publish_secs.filter(|&s| s > 0.0), |s| format!(
                        " ({:.0} msg/s)",
                        self.published as f64 / s
                    )),
                ),
            );
            line(
                "deliveries",
                format!(
                    "{} of {} expected ({} subscribers x {} messages)",
                    self.deliveries_received,
                    self.deliveries_expected,
                    self.subscribers_at_publish,
                    self.published
                ),
            );
            line(
                "lost",
                format!(
                    "{} ({:.3}%); {} subscribers short, fewest received {}",
                    self.lost,
                    percent(self.lost, self.deliveries_expected),
                    self.subscribers_short,
                    opt(self.fewest_received, |n| n.to_string()),
                ),
            );
            line(
                "duplicates",
                format!(
                    "{}, out of order {} (plus {} overtaken by concurrent publishes)",
                    self.duplicates, self.out_of_order, self.overtaken
                ),
            );
            line(
                "publish latency",
                opt(self.publish_latency_us, Latency::show),
            );
            line(
                "delivered/s",
                opt(self.delivered_per_sec, |r| format!("{r:.0}")),
            );
            line("latency", opt(self.latency_us, Latency::show));
        }
        if let Some(server) = &self.server {
            line(
                "server memory",
                format!(
                    "{} before, {} connected, {} at the end (pid {})",
                    opt(server.rss_before_kib, mib),
                    opt(server.rss_connected_kib, mib),
                    opt(server.rss_end_kib, mib),
                    server
                        .pids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join("+")
                ),
            );
            line(
                "per connection",
                opt(server.kib_per_connection, |k| format!("{k:.2} KiB")),
            );
            if server.cpu_us.is_some() {
                line(
                    "server CPU",
                    format!(
                        "{} over the publish phase, {} per delivery",
                        opt(server.cpu_us, |us| format!("{:.2} s", us as f64 / 1e6)),
                        opt(server.cpu_us_per_delivery, |us| format!("{us:.3} us")),
                    ),
                );
            }
        }
        line("bench memory", opt(self.bench_rss_kib, mib));
        if self.timed_out {
            line("TIMED OUT", "the figures above are partial".to_owned());
        }
        for error in &self.errors {
            line("error", error.clone());
        }
        t
    }
}

pub fn opt<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), show)
}

fn opt_suffix<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(String::new, show)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
