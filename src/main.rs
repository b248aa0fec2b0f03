//! The `streamgate` command line: argument parsing only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use streamgate::config::Config;
use streamgate::server::tls::Certs;

/// jemalloc: measured against glibc and mimalloc on the poll step and on idle connections
/// (docs/BENCHMARKS.md, "Allocator, again"), as fast as mimalloc on the first and the
/// smallest on the second.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    version,
    about = "A streaming API gateway: channels, delta streams, SSE fan-out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// TOML config file; without it the embedded defaults apply.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides [server] listen); port 0 picks a free port.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Also serve a built-in, changing stock-ticker API (/demo/quotes, channel demo-quotes).
        #[arg(long)]
        demo: bool,
        /// Let pages of ORIGIN (scheme://host[:port], or *) call the gateway (CORS), besides
        /// [http] cors_origins; repeatable.
        #[arg(long = "cors", value_name = "ORIGIN")]
        cors: Vec<String>,
    },
    /// Validate a config file (and STREAMGATE_* overrides); exit non-zero with the reason.
    CheckConfig { file: PathBuf },
    /// Read a document as config: `import asyncapi FILE`.
    #[command(subcommand)]
    Import(Import),
    /// Follow a stream: show a delta stream's live document, or a channel's messages.
    Tail {
        /// e.g. http://127.0.0.1:8080/apis/demo/quotes
        url: String,
    },
    /// Load-test a local server: pub/sub fan-out (many subscribers, paced publishing,
    /// delivery latency), or `bench poll` for polled APIs as delta streams.
    Bench(Box<streamgate::bench::BenchCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for every crate that uses rustls, chosen before any is used.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::Bench(command) => streamgate::bench::run_command(*command),
        Command::Tail { url } => tail(&url),
        Command::Import(Import::Asyncapi { file }) => import_asyncapi(&file),
        Command::CheckConfig { file } => match load(Some(&file)).and_then(|config| {
            // Serving would load the certificate too.
            tls(&config).map_err(|e| format!("{}: {e}", file.display()))
        }) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve {
            config,
            listen,
            demo,
            cors,
        } => {
            let config_file = config;
            let mut config = match load(config_file.as_deref()) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            for origin in cors {
                if let Err(e) = streamgate::config::check_origin(&origin) {
                    eprintln!("--cors: {e}");
                    return ExitCode::FAILURE;
                }
                config.http.cors_origins.push(origin);
            }
            let store = config_file
                .as_deref()
                .map(streamgate::catalog::Catalog::store_path);
            match serve(config, demo, store) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("streamgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Loads a config as serving it would: the file (or the defaults) and the `STREAMGATE_*`
/// overrides, then the key rules built from it, which check the capabilities and read the
/// token keys' files: a config that cannot serve is refused before anything starts.
fn load(file: Option<&Path>) -> Result<Config, String> {
    let config = Config::load(file, std::env::vars()).map_err(|e| e.to_string())?;
    streamgate::config::check_files(&config)
        .and_then(|()| streamgate::auth::Auth::new(&config).map(drop))
        .map_err(|e| match file {
            Some(file) => format!("{}: {e}", file.display()),
            None => e,
        })?;
    Ok(config)
}

#[derive(Subcommand)]
enum Import {
    /// The relays an AsyncAPI document (JSON, 2.x or 3.0) describes, printed as [[relay]]
    /// tables for a config file; what cannot be mapped is said on stderr. To add them to a
    /// running gateway: POST the document to /admin/import/asyncapi.
    Asyncapi { file: PathBuf },
}

fn import_asyncapi(file: &Path) -> ExitCode {
    #[derive(serde::Serialize)]
    struct Relays {
        relay: Vec<streamgate::config::RelayConfig>,
    }
    let imported = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not JSON ({e}): give the document as JSON",
                    file.display()
                )
            })
        })
        .and_then(|document| streamgate::config::asyncapi_import::relays(&document));
    let imported = match imported {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("streamgate import: {e}");
            return ExitCode::FAILURE;
        }
    };
    for skipped in &imported.skipped {
        eprintln!("skipped: {skipped}");
    }
    if imported.relays.is_empty() {
        eprintln!(
            "streamgate import: nothing in {} maps to a relay",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    match toml::to_string(&Relays {
        relay: imported.relays,
    }) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("streamgate import: cannot write the relays as TOML: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn tail(url: &str) -> ExitCode {
    match streamgate::tail::run(url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamgate tail: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(
    config: Config,
    demo: bool,
    store: Option<std::path::PathBuf>,
) -> std::io::Result<()> {
    log(&config.log);
    let tls = tls(&config).map_err(std::io::Error::other)?;
    if tls.is_some() && demo {
        return Err(std::io::Error::other(
            "--demo serves its demo API over plain HTTP on the gateway's own address; run it \
             without [server] tls_cert_file / tls_key_file",
        ));
    }
    let addr = config.server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    // Printed on stdout so scripts and tests can find a port chosen with `--listen ...:0`.
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("streamgate listening on {scheme}://{local}");
    streamgate::server::run(config, listener, tls, demo, store, stop_signal()).await
}

/// Logs to stderr at `RUST_LOG`'s levels (`info` by default), as `[log] format` says; in
/// colour only on a terminal (a file or a journal would get the escape codes).
///
/// The Redis client's own lines only when `RUST_LOG` names `redis`: it logs every attempt
/// (thousands a second while a cluster is down), where the bus says each change once.
fn log(config: &streamgate::config::LogConfig) {
    use std::io::IsTerminal;
    let wanted = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let named = wanted.split(',').map(str::trim).any(|d| {
        d == "redis"
            || d.starts_with("redis=")
            || d.starts_with("redis::")
            || d.starts_with("redis[")
    });
    let wanted = match named {
        true => wanted,
        false => format!("{wanted},redis=off"),
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(wanted).unwrap_or_else(|_| "info,redis=off".into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.format {
        streamgate::config::LogFormat::Text => {
            logs.with_ansi(std::io::stderr().is_terminal()).init()
        }
        streamgate::config::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// The TLS certificate and key of `[server]`, loaded, when set.
fn tls(config: &Config) -> Result<Option<Arc<Certs>>, String> {
    config
        .server
        .tls_files()
        .map(|(cert, key)| Certs::load(cert, key))
        .transpose()
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
