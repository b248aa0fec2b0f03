//! `streamgate bench poll`: polled JSON APIs as delta streams, at scale.
//!
//! The scenario of AMPLIFY Streams' published figures: a simulated API ([`super::upstream`])
//! with one document per topic that changes every interval, many SSE subscribers per topic on
//! the gateway's ad-hoc poll URL, each keeping its document from `data` and `patch` events
//! and reading from it which version it holds and when that version was made. The
//! subscribers of a topic share the work of parsing and applying ([`super::documents`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::Url;
use reqwest::header::ACCEPT;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::documents::TopicDocuments;
use super::histogram::Histogram;
use super::poll_report::{Gateway, PollReport};
use super::report::Latency;
use super::upstream::{Shape, Topic, Upstream};
use super::{clock, limits, target};
use crate::procfs;
use crate::wire::sse_parser::SseParser;

/// File descriptors the bench keeps besides subscribers: stdio, the runtime, the simulated
/// API's listener and the gateway's polls of it.
const RESERVED_FDS: u64 = 256;

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The gateway must allow the simulated API as a target and poll it as often as asked:

  [poll]
  allowed_targets = [\"http://127.0.0.1:*/*\"]
  min_interval_ms = 500      # at most --poll-interval-ms

Exit status: 0 when the run completed, 1 on bad arguments or when no subscriber could \
connect.")]
pub struct PollArgs {
    /// The gateway's base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Documents (topics) served by the simulated API.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub topics: u64,
    /// Subscribers in all, spread evenly over the topics.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub subscribers: u64,
    /// Size of each document, about (an array of quotes).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(100..=100_000_000))]
    pub doc_bytes: u64,
    /// Share of the items changed by each new version (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub churn: f64,
    /// A new version of every document this often.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval_ms: u64,
    /// The `pollInterval` subscribers ask the gateway for.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub poll_interval_ms: u64,
    /// How long to measure once every subscriber is connected.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration_s: u64,
    /// Stop connecting after this long and measure the subscribers connected by then.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub connect_timeout_s: u64,
    /// Subscriber connections still opening at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_window: u32,
    /// The gateway's process id: report its CPU and memory.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Also print the report as one JSON object on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// The config lines a gateway needs to serve this scenario.
fn config_hint(args: &PollArgs) -> String {
    format!(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\nmin_interval_ms = {}",
        args.poll_interval_ms
    )
}

/// What the subscribers share.
struct Shared {
    topics: Arc<[Topic]>,
    /// Each topic's documents as its subscribers hold them.
    documents: Vec<TopicDocuments>,
    measuring: AtomicBool,
    events: AtomicU64,
    /// From when a version was made to when a subscriber read it.
    latency: Histogram,
    /// From when the gateway's poll fetched a version to when a subscriber read it.
    after_fetch: Histogram,
    /// Accepted streams that ended, or whose document fell out of step, before the end.
    dropped: AtomicU64,
    failed: AtomicU64,
    connected: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// Per subscriber, the versions it read while measuring.
    seen: Vec<Mutex<Vec<u64>>>,
}

impl Shared {
    fn errors_mut(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, counter: &AtomicU64, message: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors_mut();
        // The first few tell what went wrong; thousands of copies would not.
        if errors.len() < 5 {
            errors.push(message);
        }
    }
}

/// Runs the scenario; `Err` for a run that could not start.
pub async fn run(args: PollArgs) -> Result<PollReport, String> {
    let gateway = target::loopback_url("gateway", &args.gateway)?;
    if !(0.0..=1.0).contains(&args.churn) {
        return Err(format!(
            "--churn {}: expected a share from 0 to 1",
            args.churn
        ));
    }
    if args.subscribers < args.topics {
        return Err(format!(
            "--subscribers {} is fewer than --topics {}: every topic needs a subscriber",
            args.subscribers, args.topics
        ));
    }
    let open_files = limits::raise_open_files();
    if args.subscribers + RESERVED_FDS > open_files {
        return Err(format!(
            "{} subscribers need {} open files, the limit is {open_files}; raise it with ulimit -n",
            args.subscribers,
            args.subscribers + RESERVED_FDS
        ));
    }
    if let Some(pid) = args.gateway_pid {
        procfs::check(pid).map_err(|e| e.replace("--pid", "--gateway-pid"))?;
    }
    let interval = Duration::from_millis(args.interval_ms);
    let upstream = Upstream::start(Shape {
        topics: args.topics as usize,
        doc_bytes: args.doc_bytes as usize,
        churn: args.churn,
        interval,
    })?;
    eprintln!(
        "simulated API on http://{} ({} topics of {} items); the gateway needs:\n{}",
        upstream.addr,
        args.topics,
        upstream.items,
        config_hint(&args)
    );
    let url = |topic: u64| -> Result<Url, String> {
        let text = format!(
            "{}/http://{}/topic/{topic}?pollInterval={}",
            gateway.as_str().trim_end_matches('/'),
            upstream.addr,
            args.poll_interval_ms
        );
        Url::parse(&text).map_err(|e| format!("{text:?} is not a URL: {e}"))
    };
    let client = reqwest::Client::builder()
        .http1_only()
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let shared = Arc::new(Shared {
        topics: Arc::clone(&upstream.topics),
        documents: (0..args.topics)
            .map(|_| TopicDocuments::default())
            .collect(),
        measuring: AtomicBool::new(false),
        events: AtomicU64::new(0),
        latency: Histogram::default(),
        after_fetch: Histogram::default(),
        dropped: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        connected: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        seen: (0..args.subscribers).map(|_| Mutex::default()).collect(),
    });
    let rss_start = args.gateway_pid.and_then(procfs::rss_kib);

    // The first subscriber alone: a gateway that refuses the target says so once, clearly.
    let first = open(&client, url(0)?).await.map_err(|e| {
        format!(
            "{e}\nthe gateway must allow the simulated API and its poll interval:\n{}",
            config_hint(&args)
        )
    })?;
    shared.connected.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(read(first, 0, 0, Arc::clone(&shared)));
    let window = Arc::new(Semaphore::new(args.connect_window as usize));
    let connect_start = Instant::now();
    let connect_all = async {
        let mut opening = Vec::new();
        for slot in 1..args.subscribers as usize {
            let topic = slot as u64 % args.topics;
            let permit = Arc::clone(&window)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            opening.push(tokio::spawn(subscribe(
                client.clone(),
                url(topic)?,
                slot,
                topic as usize,
                Arc::clone(&shared),
                permit,
            )));
        }
        for task in opening {
            let _ = task.await;
        }
        Ok::<(), String>(())
    };
    // A client too slow for the streams it already holds (or a gateway too slow to accept)
    // could take hours to connect everyone: measure those connected by the deadline.
    let connect_limit = Duration::from_secs(args.connect_timeout_s);
    let connect_timed_out = match tokio::time::timeout(connect_limit, connect_all).await {
        Ok(connected) => {
            connected?;
            false
        }
        Err(_) => true,
    };
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    if connect_timed_out {
        shared.errors_mut().push(format!(
            "only {connected} of {} subscribers connected within --connect-timeout-s {}; \
             the figures are theirs (is the bench itself out of CPU?)",
            args.subscribers, args.connect_timeout_s
        ));
    }

    let requests = || upstream.topics.iter().map(Topic::requests).sum::<u64>();
    let cpu = || args.gateway_pid.and_then(procfs::cpu_micros);
    let own_cpu = || procfs::cpu_micros(std::process::id());
    let (requests_start, cpu_start, start) = (requests(), cpu(), Instant::now());
    let own_cpu_start = own_cpu();
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration_s)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let measured = start.elapsed();
    let (requests_end, cpu_end, own_cpu_end) = (requests(), cpu(), own_cpu());
    let percent = |start: Option<u64>, end: Option<u64>| {
        start
            .zip(end)
            .map(|(a, b)| b.saturating_sub(a) as f64 * 100.0 / measured.as_micros() as f64)
    };

    let missed = missed_versions(&shared, args.topics as usize);
    let events = shared.events.load(Ordering::Relaxed);
    let intervals = measured.as_secs_f64() / interval.as_secs_f64();
    let errors = shared.errors_mut().clone();
    Ok(PollReport {
        gateway: gateway.to_string(),
        upstream: format!("http://{}", upstream.addr),
        topics: args.topics,
        subscribers: args.subscribers,
        connected,
        connect_secs,
        connect_timed_out,
        dropped: shared.dropped.load(Ordering::Relaxed),
        items: upstream.items as u64,
        doc_bytes: args.doc_bytes,
        churn: args.churn,
        interval_ms: args.interval_ms,
        poll_interval_ms: args.poll_interval_ms,
        measured_secs: measured.as_secs_f64(),
        events,
        events_per_sec: events as f64 / measured.as_secs_f64(),
        latency_us: Latency::of(&shared.latency.snapshot()),
        after_fetch_us: Latency::of(&shared.after_fetch.snapshot()),
        missed_versions: missed.missed,
        subscribers_missing: missed.subscribers,
        versions_seen: missed.seen,
        versions_unfetched: missed.unfetched,
        requests_per_topic_per_interval: (requests_end - requests_start) as f64
            / args.topics as f64
            / intervals,
        gateway_process: args.gateway_pid.map(|pid| Gateway {
            pid,
            cpu_percent: percent(cpu_start, cpu_end),
            rss_start_kib: rss_start,
            rss_end_kib: procfs::rss_kib(pid),
        }),
        bench_cpu_percent: percent(own_cpu_start, own_cpu_end),
        errors,
    })
}

/// Opens one stream; `Err` says why the gateway did not accept it.
async fn open(client: &reqwest::Client, url: Url) -> Result<reqwest::Response, String> {
    let response = client
        .get(url)
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot reach the gateway: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(format!("the gateway answered {status}: {body}"))
}

async fn subscribe(
    client: reqwest::Client,
    url: Url,
    slot: usize,
    topic: usize,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) {
    let opened = open(&client, url).await;
    drop(permit);
    match opened {
        Ok(response) => {
            shared.connected.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(read(response, slot, topic, shared));
        }
        Err(e) => shared.error(&shared.failed, e),
    }
}

/// Reads one stream until the process ends, keeping its document and timing every version.
async fn read(mut response: reqwest::Response, slot: usize, topic: usize, shared: Arc<Shared>) {
    let mut parser = SseParser::new();
    let mut state = None;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break shared.error(&shared.dropped, "the gateway ended a stream".into()),
            Err(e) => break shared.error(&shared.dropped, format!("a stream broke: {e}")),
        };
        let now = clock::unix_micros();
        for event in parser.feed_events(&chunk) {
            let (version, sent_at_ms) = match shared.documents[topic].follow(state, &event) {
                Ok(Some((next, stamp))) => {
                    state = Some(next);
                    stamp
                }
                Ok(None) => continue,
                Err(e) => return shared.error(&shared.dropped, e),
            };
            if !shared.measuring.load(Ordering::Relaxed) {
                continue;
            }
            shared.events.fetch_add(1, Ordering::Relaxed);
            let made = (sent_at_ms * 1000.0) as u64;
            shared.latency.record(now.saturating_sub(made));
            if let Some(fetched) = shared.topics[topic].served_at(version) {
                shared.after_fetch.record(now.saturating_sub(fetched));
            }
            shared.seen[slot]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(version);
        }
    }
}

struct Missed {
    /// Versions the gateway fetched that a subscriber did not read, between the first and
    /// the last it read.
    missed: u64,
    subscribers: u64,
    seen: u64,
    /// Versions a subscriber skipped that the gateway never fetched either.
    unfetched: u64,
}

/// Versions the gateway's polls never fetched are not counted: no subscriber could have them,
/// and how often a poll falls between two versions depends on the two clocks' phases.
fn missed_versions(shared: &Shared, topics: usize) -> Missed {
    let mut total = Missed {
        missed: 0,
        subscribers: 0,
        seen: 0,
        unfetched: 0,
    };
    for (slot, seen) in shared.seen.iter().enumerate() {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.sort_unstable();
        seen.dedup();
        let (Some(&first), Some(&last)) = (seen.first(), seen.last()) else {
            continue;
        };
        let missed = shared.topics[slot % topics]
            .served_between(first, last)
            .into_iter()
            .filter(|v| seen.binary_search(v).is_err())
            .count() as u64;
        total.missed += missed;
        total.subscribers += u64::from(missed > 0);
        total.seen += seen.len() as u64;
        total.unfetched += (last - first + 1) - seen.len() as u64 - missed;
    }
    total
}
