//! The `bench` command line and its validation into [`Settings`].

use std::time::Duration;

use clap::Args;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

use super::limits;
use super::marker::RunId;
use super::target::{self, SubscribeTarget};
use super::tls::BenchTls;
use crate::procfs;

/// File descriptors a process keeps for itself besides subscribers: stdio, the runtime's
/// epoll and wakeup descriptors, pipes to worker processes, reqwest's DNS and pool.
const RESERVED_FDS: u64 = 128;

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The payload placed at {payload} reads sgb<run>-<seq>-<send-unix-micros>- plus padding; \
subscribers find it in the raw response body of any server, so latency is measured end to \
end whatever the framing. Only loopback targets are accepted.

With several --subscribe-url, subscriber i (counted over all processes) uses URL i mod n, so \
several servers, each on its own port, are measured at once; the report lists every URL \
(JSON: subscribe_urls, and subscribe_url the first).

Exit status: 0 when the run completed, 1 on bad arguments or when nothing could be measured \
(no subscriber connected, no publish accepted), 2 when --timeout-secs cut the run short.")]
pub struct BenchArgs {
    /// Streaming URL subscribers GET (repeatable: spread round-robin over the URLs).
    #[arg(
        long = "subscribe-url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/sse?channels=bench"
    )]
    pub subscribe_urls: Vec<String>,
    /// Header sent by subscribers, 'Name: value' (repeatable; replaces the default).
    #[arg(
        long = "subscribe-header",
        value_name = "HEADER",
        default_value = "Accept: text/event-stream"
    )]
    pub subscribe_headers: Vec<String>,
    /// URL each message is published to.
    #[arg(long, default_value = "http://127.0.0.1:8080/channels/bench/messages")]
    pub publish_url: String,
    /// Publish request body; {payload} is replaced by the marker.
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = r#"{"data":"{payload}"}"#
    )]
    pub publish_body: String,
    /// Header sent with each publish, 'Name: value' (repeatable; replaces the default).
    #[arg(
        long = "publish-header",
        value_name = "HEADER",
        default_value = "Content-Type: application/json"
    )]
    pub publish_headers: Vec<String>,
    /// HTTP method of the publish request.
    #[arg(long, default_value = "POST")]
    pub publish_method: String,
    /// Subscriber connections to open.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub subscribers: u64,
    /// Messages to publish (0: connect, hold, report memory).
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
    /// Messages per second; 0 publishes as fast as --publish-concurrency allows.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Publish requests in flight at most.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub publish_concurrency: u64,
    /// Pad each payload to about this many bytes (the marker alone is about 40).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=4_194_304))]
    pub payload_bytes: u64,
    /// New subscriber connections per second.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: u32,
    /// Subscriber connections still opening at once, so bursts never overflow the server's
    /// listen backlog.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_window: u32,
    /// Spread subscribers over source addresses 127.0.0.1 ... 127.0.0.K (each has its own
    /// ephemeral ports).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_addrs: u8,
    /// The server's process id: report its memory (VmRSS) and CPU time. For a server made of
    /// several processes, repeat it or separate ids with commas: their figures are summed.
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// After the last publish, wait at most this long for deliveries still on their way.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub settle_ms: u64,
    /// Hold the connections idle this long after all connected, then measure memory.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub hold_secs: u64,
    /// Give up after this long: report what was measured and exit with status 2.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,
    /// Subscribers per process; more are spread over child processes [default: what the
    /// open-file limit allows].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub subscribers_per_process: Option<u64>,
    /// Also print the report as one JSON object on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// The CA certificate (PEM) of an https:// server under test, trusted by subscribers and
    /// publisher.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Subscribers share HTTP/2 connections (over TLS), this many streams on each; 0: one
    /// HTTP/1.1 connection each.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub h2_streams: u64,

    /// Run as a child process holding subscribers for a parent.
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Global index of this process's first subscriber (source address and URL rotation).
    #[arg(long, hide = true, default_value_t = 0)]
    pub first_subscriber: u64,
    /// The run's marker id, so children recognise the parent's messages.
    #[arg(long, hide = true)]
    pub run_id: Option<String>,
}

/// Validated settings for one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub args: BenchArgs,
    pub run: RunId,
    /// One per `--subscribe-url`, in order.
    pub subscribe: Vec<SubscribeTarget>,
    /// For https:// targets (`--tls-ca`).
    pub tls: Option<BenchTls>,
    pub publish_url: Url,
    pub publish_method: Method,
    pub publish_headers: HeaderMap,
    pub per_process: u64,
    pub settle: Duration,
    pub hold: Duration,
    pub timeout: Duration,
}

impl Settings {
    /// Checks everything a run needs before it opens a single connection.
    pub fn new(args: BenchArgs, open_files: u64) -> Result<Settings, String> {
        let run = match &args.run_id {
            Some(text) => RunId::parse(text)
                .ok_or_else(|| format!("--run-id {text:?}: expected eight lowercase hex digits"))?,
            None => RunId::random(),
        };
        let subscribe_headers = args
            .subscribe_headers
            .iter()
            .map(|h| target::header("subscribe-header", h))
            .collect::<Result<Vec<_>, _>>()?;
        let subscribe = args
            .subscribe_urls
            .iter()
            .map(|text| {
                let url = target::loopback_url("subscribe-url", text)?;
                SubscribeTarget::new(&url, &subscribe_headers)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let publish_url = target::loopback_url("publish-url", &args.publish_url)?;
        let tls = args
            .tls_ca
            .as_deref()
            .map(|file| BenchTls::load(file, args.h2_streams > 0))
            .transpose()?;
        let secure = subscribe
            .iter()
            .map(|t| t.tls)
            .chain([publish_url.scheme() == "https"]);
        if tls.is_none() && secure.clone().any(|tls| tls) {
            return Err(
                "https:// targets need --tls-ca FILE: the CA that signed the server's \
                        certificate"
                    .into(),
            );
        }
        if args.h2_streams > 0 && subscribe.iter().any(|t| !t.tls) {
            return Err(
                "--h2-streams needs https:// --subscribe-url targets (HTTP/2 over TLS)".into(),
            );
        }
        let publish_method = Method::from_bytes(
            args.publish_method.to_ascii_uppercase().as_bytes(),
        )
        .map_err(|_| {
            format!(
                "--publish-method {:?} is not an HTTP method",
                args.publish_method
            )
        })?;
        let mut publish_headers = HeaderMap::new();
        for text in &args.publish_headers {
            let (name, value) = target::header("publish-header", text)?;
            publish_headers.append(name, value);
        }
        if args.messages > 0 && args.publish_body.matches("{payload}").count() != 1 {
            return Err(
                "--publish-body must contain {payload} exactly once: it is replaced by \
                        the marker subscribers look for"
                    .to_owned(),
            );
        }
        for &pid in &args.pids {
            procfs::check(pid)?;
        }
        if args.source_addrs > 1 && subscribe.iter().any(|t| !t.addr.is_ipv4()) {
            return Err(
                "--source-addrs above 1 needs IPv4 --subscribe-url targets (127.x.y.z)".into(),
            );
        }
        let ports = limits::ephemeral_ports();
        let per_source = args.subscribers.div_ceil(u64::from(args.source_addrs));
        if per_source > ports {
            return Err(format!(
                "{} subscribers over {} source address(es) need {per_source} local ports each, \
                 but only {ports} are available (net.ipv4.ip_local_port_range); raise \
                 --source-addrs to at least {}",
                args.subscribers,
                args.source_addrs,
                args.subscribers.div_ceil(ports)
            ));
        }
        let reserve = RESERVED_FDS + args.publish_concurrency;
        let capacity = open_files.saturating_sub(reserve);
        let per_process = match args.subscribers_per_process {
            Some(n) if n > capacity => {
                return Err(format!(
                    "--subscribers-per-process {n} exceeds what the open-file limit \
                     ({open_files}) leaves for connections ({capacity})"
                ));
            }
            Some(n) => n,
            None if capacity == 0 => {
                return Err(format!(
                    "the open-file limit ({open_files}) leaves no room for connections; \
                     raise it with ulimit -n"
                ));
            }
            None => capacity,
        };
        Ok(Settings {
            settle: Duration::from_millis(args.settle_ms),
            hold: Duration::from_secs(args.hold_secs),
            timeout: Duration::from_secs(args.timeout_secs),
            run,
            subscribe,
            tls,
            publish_url,
            publish_method,
            publish_headers,
            per_process,
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn settings(argv: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        Settings::new(cli.bench, 20_000)
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.args.subscribers, 100);
        assert_eq!(s.subscribe.len(), 1);
        assert_eq!(s.subscribe[0].addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.per_process, 20_000 - 128 - 64);
        assert_eq!(s.publish_method, Method::POST);
        assert_eq!(s.publish_headers["content-type"], "application/json");
    }

    #[test]
    fn every_subscribe_url_is_a_target_in_order() {
        let s = settings(&[
            "--subscribe-url",
            "http://127.0.0.1:1/sse",
            "--subscribe-url",
            "http://127.0.0.1:2/sse",
        ])
        .unwrap();
        let addrs: Vec<_> = s.subscribe.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:1", "127.0.0.1:2"]);
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--subscribe-url", "http://192.168.1.1/sse"],
                "not loopback",
            ),
            (
                &[
                    "--subscribe-url",
                    "http://127.0.0.1:1/sse",
                    "--subscribe-url",
                    "http://192.168.1.1/sse",
                ],
                "not loopback",
            ),
            (
                &[
                    "--subscribe-url",
                    "http://127.0.0.1:1/sse",
                    "--subscribe-url",
                    "http://[::1]:2/sse",
                    "--source-addrs",
                    "2",
                ],
                "IPv4",
            ),
            (&["--publish-url", "ftp://127.0.0.1/"], "only http://"),
            (&["--publish-body", "{}"], "{payload}"),
            (&["--publish-header", "oops"], "Name: value"),
            (&["--publish-method", "GE T"], "not an HTTP method"),
            (&["--subscribers", "0"], "subscribers"),
            (&["--subscribers-per-process", "30000"], "open-file limit"),
            (&["--subscribers", "100000"], "--source-addrs"),
            (&["--run-id", "XYZ"], "hex"),
            (&["--settle-ms", "18446744073709551615"], "settle-ms"),
            (&["--payload-bytes", "99999999"], "payload-bytes"),
        ];
        for (argv, expected) in cases {
            let error = settings(argv).unwrap_err();
            assert!(error.contains(expected), "{argv:?}: {error}");
        }
    }
}
