//! The parent process: it opens subscribers (itself and through workers), holds them,
//! publishes, waits for stragglers, and turns what every process saw into a [`Report`].
//!
//! Phases run under one deadline; when it passes, whatever was measured so far is reported.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::args::Settings;
use super::clock;
use super::publisher::{Pace, Published, Publisher};
use super::report::{Latency, Report, Server};
use super::subscriber::{self, Plan};
use super::tally::{Progress, Summary, Tally};
use super::worker::Worker;
use crate::procfs;

/// How often the coordinator looks at the counters.
const POLL: Duration = Duration::from_millis(20);
/// How often a progress line goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// With `--pid` and no `--hold-secs`: how long connections sit idle before memory is read,
/// so the server has finished setting them up.
const IDLE_BEFORE_MEASURING: Duration = Duration::from_secs(1);
/// How long a worker may take to send its summary once told to stop.
const WORKER_GRACE: Duration = Duration::from_secs(10);

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// No subscriber connected, or no publish was accepted.
    NothingMeasured,
    TimedOut,
}

/// `total` split into the fewest near-equal shares of at most `per_process`.
fn shares(total: u64, per_process: u64) -> Vec<u64> {
    let processes = total.div_ceil(per_process).max(1);
    (0..processes)
        .map(|i| total / processes + u64::from(i < total % processes))
        .collect()
}

/// The subscriber plan for one process's `count` subscribers starting at global index
/// `first`; connect rate and window are shared out in proportion.
pub fn plan(settings: &Settings, count: u64, first: u64) -> Plan {
    let args = &settings.args;
    let fraction = count as f64 / args.subscribers as f64;
    Plan {
        targets: settings.subscribe.clone(),
        run: settings.run,
        count,
        first,
        connect_rate: (f64::from(args.connect_rate) * fraction).max(1.0),
        connect_window: ((f64::from(args.connect_window) * fraction) as usize).max(1),
        source_addrs: args.source_addrs,
        tls: settings.tls.clone(),
        h2_streams: args.h2_streams,
    }
}

struct Run<'a> {
    settings: &'a Settings,
    start_us: u64,
    start: Instant,
    tally: Arc<Tally>,
    workers: Vec<Worker>,
    published: Arc<Published>,
    last_progress: Instant,
    expected: Option<u64>,
    subscribers_at_publish: u64,
    rss_before: Option<u64>,
    rss_connected: Option<u64>,
    cpu_before: Option<u64>,
    cpu_after: Option<u64>,
    errors: Vec<String>,
}

/// Runs the whole benchmark and reports; `Err` only when it could not start.
pub async fn run(settings: &Settings) -> Result<(Report, Outcome), String> {
    let args = &settings.args;
    let pids = &args.pids;
    let start = Instant::now();
    let deadline = start + settings.timeout;
    let shares = shares(args.subscribers, settings.per_process);
    let mut run = Run {
        settings,
        start_us: clock::unix_micros(),
        start,
        tally: Arc::new(Tally::new(shares[0] as usize)),
        workers: Vec::new(),
        published: Arc::new(Published::default()),
        last_progress: start,
        expected: None,
        subscribers_at_publish: 0,
        rss_before: procfs::rss_kib_total(pids),
        rss_connected: None,
        cpu_before: None,
        cpu_after: None,
        errors: Vec::new(),
    };
    let mut first = shares[0];
    for &count in &shares[1..] {
        run.workers
            .push(Worker::spawn(settings, &plan(settings, count, first))?);
        first += count;
    }
    tokio::spawn(subscriber::open_all(
        plan(settings, shares[0], 0),
        Arc::clone(&run.tally),
    ));

    let timed_out = tokio::time::timeout_at(deadline, run.phases())
        .await
        .is_err();
    if let (Some(_), None) = (run.cpu_before, run.cpu_after) {
        run.cpu_after = procfs::cpu_micros_total(pids);
    }
    Ok(run.finish(shares.len() as u64, timed_out).await)
}

impl Run<'_> {
    async fn phases(&mut self) {
        let settings = self.settings;
        let args = &settings.args;
        let total = args.subscribers;
        self.wait(None, |p| p.connected + p.failed >= total).await;
        let progress = self.progress();
        if progress.connected == 0 {
            return;
        }
        let idle = if args.hold_secs > 0 {
            settings.hold
        } else if !args.pids.is_empty() {
            IDLE_BEFORE_MEASURING
        } else {
            Duration::ZERO
        };
        self.wait(Some(Instant::now() + idle), |_| false).await;
        self.rss_connected = procfs::rss_kib_total(&args.pids);
        if args.messages == 0 {
            return;
        }

        let publisher = match Publisher::new(settings) {
            Ok(publisher) => Arc::new(publisher),
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        let progress = self.progress();
        self.subscribers_at_publish = progress.connected.saturating_sub(progress.dropped);
        self.expected = Some(args.messages.saturating_mul(self.subscribers_at_publish));
        self.cpu_before = procfs::cpu_micros_total(&args.pids);
        let pace = Pace {
            messages: args.messages,
            rate: args.rate,
            concurrency: args.publish_concurrency as usize,
        };
        let publishing = publisher.run(pace, Arc::clone(&self.published));
        tokio::pin!(publishing);
        loop {
            tokio::select! {
                () = &mut publishing => break,
                () = tokio::time::sleep(POLL) => self.tick(),
            }
        }

        let accepted = self.published.accepted.load(Ordering::Relaxed);
        let expected = accepted.saturating_mul(self.subscribers_at_publish);
        self.expected = Some(expected);
        let settle = Instant::now() + settings.settle;
        self.wait(Some(settle), |p| p.received >= expected).await;
        self.cpu_after = procfs::cpu_micros_total(&args.pids);
    }

    /// Polls the counters until `done` says so or `until` passes, printing progress.
    async fn wait(&mut self, until: Option<Instant>, mut done: impl FnMut(&Progress) -> bool) {
        loop {
            if done(&self.progress()) || until.is_some_and(|t| Instant::now() >= t) {
                return;
            }
            tokio::time::sleep(POLL).await;
            self.tick();
        }
    }

    fn progress(&self) -> Progress {
        let mut total = self.tally.progress();
        for worker in &self.workers {
            total.add(&worker.progress());
        }
        total
    }

    /// Prints a progress line on stderr when one is due.
    fn tick(&mut self) {
        if self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_progress = Instant::now();
        let p = self.progress();
        let args = &self.settings.args;
        let mut line = format!(
            "[{:6.1}s] connected {}/{} ({} failed, {} dropped)",
            self.start.elapsed().as_secs_f64(),
            p.connected,
            args.subscribers,
            p.failed,
            p.dropped
        );
        if let Some(expected) = self.expected {
            let accepted = self.published.accepted.load(Ordering::Relaxed);
            let failed = self.published.failed.load(Ordering::Relaxed);
            line += &format!(
                "  published {accepted}/{} ({failed} failed)  delivered {}/{expected}",
                args.messages, p.received
            );
        }
        eprintln!("{line}");
    }

    /// Stops the workers, gathers everything and derives the report.
    async fn finish(mut self, processes: u64, timed_out: bool) -> (Report, Outcome) {
        // All children summarise at once; the first one's grace covers the others.
        for worker in &mut self.workers {
            worker.stop();
        }
        let mut summary = self.tally.summary(procfs::rss_kib(std::process::id()));
        for worker in std::mem::take(&mut self.workers) {
            match worker.finish(WORKER_GRACE).await {
                Ok(theirs) => summary.merge(&theirs),
                Err(e) => self.errors.push(e),
            }
        }
        let settings = self.settings;
        let args = &settings.args;
        let published = self.published.accepted.load(Ordering::Relaxed);
        let publish_failed = self.published.failed.load(Ordering::Relaxed);
        let first_send_us = self.published.first_send_us.load(Ordering::Relaxed);
        let last_ack_us = self.published.last_ack_us.load(Ordering::Relaxed);
        let errors: Vec<String> = self
            .errors
            .iter()
            .cloned()
            .chain(summary.first_error.clone())
            .chain(self.published.first_error())
            .collect();
        let Summary {
            progress,
            duplicates,
            overtaken,
            out_of_order,
            last_connect_us,
            last_receive_us,
            ..
        } = summary;
        let expected = published.saturating_mul(self.subscribers_at_publish);
        let received = progress.received;
        let publishing = args.messages > 0 && self.expected.is_some();
        let outcome = if timed_out {
            Outcome::TimedOut
        } else if progress.connected == 0 || (args.messages > 0 && published == 0) {
            Outcome::NothingMeasured
        } else {
            Outcome::Completed
        };
        let report = Report {
            subscribe_url: args.subscribe_urls[0].clone(),
            subscribe_urls: args.subscribe_urls.clone(),
            publish_url: args.publish_url.clone(),
            subscribers: args.subscribers,
            processes,
            connected: progress.connected,
            connect_failed: progress.failed,
            dropped: progress.dropped,
            connect_secs: seconds_between(self.start_us, last_connect_us),
            hold_secs: args.hold_secs,
            messages: args.messages,
            rate: args.rate,
            payload_bytes: args.payload_bytes,
            published,
            publish_failed,
            publish_secs: seconds_between(first_send_us, last_ack_us),
            subscribers_at_publish: self.subscribers_at_publish,
            deliveries_expected: expected,
            deliveries_received: received,
            lost: expected.saturating_sub(received),
            duplicates,
            overtaken,
            out_of_order,
            subscribers_short: if publishing {
                summary
                    .per_connection
                    .iter()
                    .filter(|&&(count, _)| count < published)
                    .map(|&(_, connections)| connections)
                    .sum()
            } else {
                0
            },
            fewest_received: summary
                .per_connection
                .first()
                .filter(|_| publishing)
                .map(|&(count, _)| count),
            delivered_per_sec: seconds_between(first_send_us, last_receive_us)
                .filter(|&s| s > 0.0)
                .map(|s| received as f64 / s),
            latency_us: Latency::of(&summary.latency),
            publish_latency_us: Latency::of(&self.published.round_trip.snapshot()),
            server: (!args.pids.is_empty()).then(|| self.server(&progress, received)),
            bench_rss_kib: summary.rss_kib,
            timed_out,
            errors,
        };
        (report, outcome)
    }

    fn server(&self, progress: &Progress, received: u64) -> Server {
        let pids = &self.settings.args.pids;
        let cpu_us = self
            .cpu_before
            .zip(self.cpu_after)
            .map(|(before, after)| after.saturating_sub(before));
        let open = progress.connected.saturating_sub(progress.dropped);
        Server {
            pids: pids.clone(),
            rss_before_kib: self.rss_before,
            rss_connected_kib: self.rss_connected,
            rss_end_kib: procfs::rss_kib_total(pids),
            kib_per_connection: self
                .rss_before
                .zip(self.rss_connected)
                .filter(|_| open > 0)
                .map(|(before, after)| (after as f64 - before as f64) / open as f64),
            cpu_us,
            cpu_us_per_delivery: cpu_us
                .filter(|_| received > 0)
                .map(|us| us as f64 / received as f64),
        }
    }
}

/// Seconds from `from_us` to `to_us` (Unix micros), when both happened.
fn seconds_between(from_us: u64, to_us: u64) -> Option<f64> {
    (from_us > 0 && to_us >= from_us).then(|| (to_us - from_us) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_even_and_bounded() {
        assert_eq!(shares(10, 100), vec![10]);
        assert_eq!(shares(10, 4), vec![4, 3, 3]);
        assert_eq!(shares(40_000, 19_856), vec![13_334, 13_333, 13_333]);
        assert_eq!(shares(1, 1), vec![1]);
    }
}
