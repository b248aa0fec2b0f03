//! Child processes holding subscribers when one process may not open enough sockets.
//!
//! A child is the same binary run as `bench --worker` with its share of the subscribers. It
//! writes one JSON line per report on stdout: progress every 100 ms, and its full summary
//! when its stdin closes (the parent's "stop", which also comes if the parent dies). The
//! parent keeps publishing and timing to itself, so every send time comes from one process
//! and latency is comparable across children.

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::args::Settings;
use super::subscriber::{self, Plan};
use super::tally::{Progress, Summary, Tally};
use crate::procfs;

/// How often a child reports progress: often enough that the parent sees the last delivery
/// soon after it happens.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A child outlives the parent's timeout by this much at most, should the parent hang.
const ORPHAN_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Progress(Progress),
    Final(Box<Summary>),
}

/// Runs this process as a child: open the subscribers, report, stop when stdin closes.
pub async fn serve(settings: &Settings, plan: Plan) -> Result<(), String> {
    let tally = Arc::new(Tally::new(plan.count as usize));
    tokio::spawn(subscriber::open_all(plan, Arc::clone(&tally)));
    let deadline = Instant::now() + settings.timeout + ORPHAN_GRACE;
    let mut stop = tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    });
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => write_line(&Line::Progress(tally.progress()))?,
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let summary = tally.summary(procfs::rss_kib(std::process::id()));
    write_line(&Line::Final(Box::new(summary)))
}

fn write_line(line: &Line) -> Result<(), String> {
    let text = serde_json::to_string(line).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to the parent: {e}"))
}

/// The parent's handle on one child.
pub struct Worker {
    count: u64,
    child: Child,
    stdin: Option<ChildStdin>,
    progress: Arc<Mutex<Progress>>,
    reader: JoinHandle<Result<Summary, String>>,
}

impl Worker {
    /// Starts a child holding the subscribers of `plan`.
    pub fn spawn(settings: &Settings, plan: &Plan) -> Result<Worker, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start a worker process: {e}"))?;
        let args = &settings.args;
        let mut command = Command::new(exe);
        command
            .arg("bench")
            .arg("--worker")
            .args(["--run-id", settings.run.as_str()])
            .args(["--subscribers", &plan.count.to_string()])
            .args(["--first-subscriber", &plan.first.to_string()])
            .args([
                "--connect-rate",
                &(plan.connect_rate.ceil() as u64).to_string(),
            ])
            .args(["--connect-window", &plan.connect_window.to_string()])
            .args(["--source-addrs", &args.source_addrs.to_string()])
            .args(["--timeout-secs", &args.timeout_secs.to_string()])
            .args(["--subscribers-per-process", &plan.count.to_string()]);
        for url in &args.subscribe_urls {
            command.args(["--subscribe-url", url]);
        }
        for header in &args.subscribe_headers {
            command.args(["--subscribe-header", header]);
        }
        if let Some(ca) = &args.tls_ca {
            command.arg("--tls-ca").arg(ca);
        }
        command.args(["--h2-streams", &args.h2_streams.to_string()]);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let progress = Arc::new(Mutex::new(Progress::default()));
        let reader = tokio::spawn(read_reports(stdout, Arc::clone(&progress)));
        Ok(Worker {
            count: plan.count,
            stdin: child.stdin.take(),
            child,
            progress,
            reader,
        })
    }

    /// The child's last progress report. A child that ended before it was told to stop
    /// counts its unopened subscribers as failed, so nobody waits for them.
    pub fn progress(&self) -> Progress {
        let mut progress = *self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if self.stdin.is_some() && self.reader.is_finished() {
            progress.failed = self.count.saturating_sub(progress.connected);
        }
        progress
    }

    /// Tells the child to stop: closing its stdin makes it send its summary and exit.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
    }

    /// Stops the child if not done yet and waits up to `grace` for its summary.
    pub async fn finish(mut self, grace: Duration) -> Result<Summary, String> {
        self.stop();
        let summary = match tokio::time::timeout(grace, &mut self.reader).await {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => Err(format!("worker process reader failed: {e}")),
            Err(_) => Err("worker process did not report in time".to_owned()),
        };
        if summary.is_err() {
            let _ = self.child.start_kill();
        }
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        summary
    }
}

async fn read_reports(
    stdout: tokio::process::ChildStdout,
    progress: Arc<Mutex<Progress>>,
) -> Result<Summary, String> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("reading a worker process: {e}"))?
    {
        match serde_json::from_str(&line) {
            Ok(Line::Progress(p)) => *progress.lock().unwrap_or_else(|e| e.into_inner()) = p,
            Ok(Line::Final(summary)) => return Ok(*summary),
            Err(e) => return Err(format!("unreadable worker report ({e}): {line:?}")),
        }
    }
    Err("a worker process exited without a report (see its error above)".to_owned())
}
