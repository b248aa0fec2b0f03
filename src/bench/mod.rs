//! The load generator behind `streamgate bench`.
//!
//! It measures a pub/sub server from outside, through HTTP only, so the same run can be
//! pointed at streamgate, Nchan or Pushpin: subscribers open raw streaming GETs, the
//! coordinator publishes messages whose payload carries a marker (sequence number and send
//! time), and every subscriber finds that marker in whatever framing the server uses.
//!
//! - [`args`]: the command line and its validation.
//! - [`coordinator`]: the phases of a run (connect, hold, publish, settle) and the report.
//! - [`subscriber`]: one hand-written HTTP/1.1 streaming connection, with [`response`]
//!   (head and chunked framing) and [`marker`] (payload marker and its scanner).
//! - [`publisher`]: paced, bounded publishing over a pooled HTTP client.
//! - [`tally`] and [`histogram`]: what a process counted, in a form that adds up across
//!   processes; [`worker`]: child processes when one cannot hold every socket.
//! - [`limits`], [`procfs`], [`target`], [`clock`]: the operating system, the server process,
//!   the loopback-only targets, and the shared clock.
//!
//! `streamgate bench poll` is the other scenario, polled JSON APIs as delta streams:
//! [`poll`] runs it against a simulated API ([`upstream`]), its subscribers sharing each
//! topic's documents ([`documents`]), and [`poll_report`] tells it.

mod args;
mod clock;
mod coordinator;
mod documents;
mod histogram;
mod limits;
mod marker;
mod poll;
mod poll_report;
mod publisher;
mod report;
mod response;
mod subscriber;
mod tally;
mod target;
mod tls;
mod upstream;
mod worker;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use args::BenchArgs;
use args::Settings;
use coordinator::Outcome;
pub use upstream::Document;

/// `streamgate bench [OPTIONS]` (pub/sub fan-out) or `streamgate bench poll [OPTIONS]`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    #[command(flatten)]
    pub pubsub: BenchArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Polled JSON APIs as delta streams: a simulated API with one changing document per
    /// topic, many SSE subscribers per topic, latency from each version's making.
    Poll(poll::PollArgs),
}

/// Runs the scenario asked for and returns the exit status.
pub fn run_command(command: BenchCommand) -> ExitCode {
    match command.scenario {
        Some(Scenario::Poll(args)) => run_poll(args),
        None => run(command.pubsub),
    }
}

fn run_poll(args: poll::PollArgs) -> ExitCode {
    let json = args.json;
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            let report = runtime.block_on(poll::run(args));
            // Thousands of open streams need no orderly teardown: the process is ending.
            runtime.shutdown_background();
            report
        });
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("streamgate bench poll: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = format!("streamgate bench poll report\n{}", report.table());
    if json {
        eprint!("{table}");
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("streamgate bench poll: cannot encode the report: {e}"),
        }
    } else {
        print!("{table}");
    }
    if report.connected == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `streamgate bench` to completion on its own runtime and returns the exit status.
fn run(args: BenchArgs) -> ExitCode {
    let open_files = limits::raise_open_files();
    let settings = match Settings::new(args, open_files) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("streamgate bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("streamgate bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = if settings.args.worker {
        let plan = coordinator::plan(
            &settings,
            settings.args.subscribers,
            settings.args.first_subscriber,
        );
        match runtime.block_on(worker::serve(&settings, plan)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("streamgate bench worker: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match runtime.block_on(coordinator::run(&settings)) {
            Ok((report, outcome)) => print(&settings, &report, outcome),
            Err(e) => {
                eprintln!("streamgate bench: {e}");
                ExitCode::FAILURE
            }
        }
    };
    // Thousands of parked connection tasks need no orderly teardown: the process is ending.
    runtime.shutdown_background();
    status
}

fn print(settings: &Settings, report: &report::Report, outcome: Outcome) -> ExitCode {
    let table = format!("streamgate bench report\n{}", report.table());
    if settings.args.json {
        eprint!("{table}");
        match serde_json::to_string(report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("streamgate bench: cannot encode the report: {e}"),
        }
    } else {
        print!("{table}");
    }
    match outcome {
        Outcome::Completed => ExitCode::SUCCESS,
        Outcome::NothingMeasured => ExitCode::FAILURE,
        Outcome::TimedOut => ExitCode::from(2),
    }
}
