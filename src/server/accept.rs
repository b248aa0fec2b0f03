//! The accept loop: admits client connections within `[limits] max_connections` and
//! `max_connections_per_ip`, answers the ones over a limit with a 503, and serves the rest
//! (`server::http1`, handing some to hyper; over TLS, hyper serves HTTP/2 or HTTP/1.1 as
//! the client chose), the head limits set above `[limits] max_header_bytes` so the
//! gateway's check (a JSON 431, see `http::limits`) is the one clients meet.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Version, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::http1;
use super::write_deadline::Socket;

use crate::config::LimitsConfig;
use crate::http::ApiError;
use crate::metrics::Limit;
use crate::wire::envelope::{ErrorInfo, codes};

/// hyper's own default for the HTTP/1 read buffer, which must hold a whole request head.
const HYPER_DEFAULT_BUF: usize = 8192 + 4096 * 100;
/// hyper's own default for the HTTP/2 header list size.
const HYPER_DEFAULT_HEADER_LIST: usize = 16 * 1024;
/// Refused connections being answered at once; past it a refused connection is just closed,
/// so a flood of them costs no more than this many small tasks.
const REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refused client gets to send its request and read the answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Streams one HTTP/2 connection carries at once at most (`[limits]
/// max_streams_per_connection` if lower).
const H2_STREAMS: u32 = 128;
/// How often hyper pings an HTTP/2 client, and how long it waits for the answer: a client
/// gone without a word (its machine off, its network changed) lets its streams go.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` resolves, then stops
/// accepting, lets every connection finish its requests (open streams end on the server's
/// own shutdown signal), and returns once all have closed.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: &LimitsConfig,
    stop: impl Future<Output = ()>,
) {
    let admission = Arc::new(Admission::new(limits));
    let shared = Arc::new(http1::Shared {
        app,
        hyper: builder(limits),
        tls_http1: builder(limits).http1_only(),
        tls_http2: builder(limits).http2_only(),
        max_head: max_head(limits),
        read_timeout: limits.read_timeout(),
        write_timeout: limits.write_timeout(),
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    // Every connection holds a receiver: they stop on `true`, and the sender sees them gone.
    let (stopping, stopped) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Every write is a whole response part or a batch of events: Nagle's algorithm
        // would only hold a stream's next event back until the previous one is acked.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set for {peer}: {e}");
        }
        // An IPv4 client on a dual-stack socket counts as its IPv4 address.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let admitted = match admission.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                refuse(stream, tls.clone(), refusal, &refusals);
                continue;
            }
        };
        let (shared, stop) = (Arc::clone(&shared), stopped.clone());
        // Two tasks of their own sizes: a plain connection's keeps no room for a TLS one.
        match &tls {
            None => spawn_admitted(http1::serve(shared, stream, peer, stop), admitted),
            Some(tls) => spawn_admitted(secure(shared, tls.clone(), stream, peer, stop), admitted),
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(stopped);
    stopping.closed().await;
}

/// Runs `connection`, counted as admitted until it ends.
fn spawn_admitted(connection: impl Future<Output = ()> + Send + 'static, admitted: Admitted) {
    tokio::spawn(async move {
        connection.await;
        drop(admitted);
    });
}

/// Serves a TLS connection: the handshake within `[limits] read_timeout_ms` (a client that
/// says nothing does not hold its slot), then hyper, HTTP/2 or HTTP/1.1 as ALPN chose.
async fn secure(
    shared: Arc<http1::Shared>,
    tls: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let stream = tokio::select! {
        shaken = handshake(&tls, stream, peer, shared.read_timeout) => match shaken {
            Some(stream) => stream,
            None => return,
        },
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    let hyper = match stream.get_ref().1.alpn_protocol() {
        Some(b"h2") => &shared.tls_http2,
        _ => &shared.tls_http1,
    };
    http1::hand_over(&shared, hyper, stream, bytes::Bytes::new(), peer, stop).await;
}

/// The TLS handshake with `peer`, within `limit`; `None` (logged at debug) when it failed.
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// The largest request head read, set above the gateway's own limit so that a head a little
/// too large gets the gateway's JSON answer; only a far larger one meets a bare 431.
/// (More than 100 header fields in an HTTP/1 request are refused too, whatever their size.)
fn max_head(limits: &LimitsConfig) -> usize {
    limits
        .max_header_bytes
        .saturating_mul(2)
        .max(HYPER_DEFAULT_BUF)
}

/// hyper, for the connections handed to it, with the same head limits.
fn builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that opens a connection and trickles its request head (slowloris) would
    // otherwise hold a connection slot for ever.
    builder
        .http1()
        .max_buf_size(max_head(limits))
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.read_timeout());
    builder
        .http2()
        .max_header_list_size(
            u32::try_from(
                limits
                    .max_header_bytes
                    .saturating_mul(2)
                    .max(HYPER_DEFAULT_HEADER_LIST),
            )
            .unwrap_or(u32::MAX),
        )
        // A stream is a request: one connection carries as many as the limit says, up to
        // what browsers expect of a server (nginx allows 128).
        .max_concurrent_streams(
            u32::try_from(limits.max_streams_per_connection)
                .map_or(H2_STREAMS, |n| n.min(H2_STREAMS)),
        )
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// As `axum::serve` does: a connection that failed before it was accepted is skipped; any
/// other error (out of file descriptors, typically) is logged and retried a second later,
/// when connections may have closed.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Why a connection was refused: the limit, and what to tell the client.
struct Refusal {
    limit: Limit,
    message: String,
}

/// Answers a refused connection's first request with a 503 ErrorInfo (after the TLS
/// handshake, with `tls`) and closes it, or just closes it when too many refusals are being
/// answered already.
fn refuse(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    refusal: Refusal,
    in_flight: &Arc<Semaphore>,
) {
    refusal.limit.refused();
    tracing::debug!(limit = ?refusal.limit, "connection refused");
    let Ok(permit) = Arc::clone(in_flight).try_acquire_owned() else {
        return;
    };
    let info = ErrorInfo::new(codes::TOO_MANY_CONNECTIONS, refusal.message);
    tokio::spawn(async move {
        let answered = async {
            match tls {
                None => answer_refused(stream, info).await,
                Some(tls) => {
                    let peer = stream.peer_addr().ok()?;
                    let stream = handshake(&tls, stream, peer, REFUSAL_TIMEOUT).await?;
                    answer_refused::<TlsStream<TcpStream>>(stream, info).await;
                }
            }
            Some(())
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answered).await;
        drop(permit);
    });
}

/// Answers every request on `stream` with `info`, closing it after the first over HTTP/1.
async fn answer_refused<S: Socket>(stream: S, info: ErrorInfo) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut response = ApiError(info.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        // HTTP/2 has no such field: the connection ends when hyper has answered.
        if request.version() < Version::HTTP_2 {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(false);
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The open connections, counted against the limits.
struct Admission {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl Admission {
    fn new(limits: &LimitsConfig) -> Admission {
        Admission {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            open: Mutex::default(),
        }
    }

    /// Counts a new connection from `ip`, or says which limit it would exceed.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(Refusal {
                limit: Limit::Connections,
                message: format!(
                    "the gateway has {} connections open, the most it accepts \
                     ([limits] max_connections); try again shortly",
                    open.total
                ),
            });
        }
        let from_ip = open.by_ip.entry(ip).or_default();
        if *from_ip >= self.max_per_ip {
            return Err(Refusal {
                limit: Limit::ConnectionsPerIp,
                message: format!(
                    "{from_ip} connections from your address are open, the most allowed \
                     ([limits] max_connections_per_ip); close one, or share one connection \
                     between streams"
                ),
            });
        }
        *from_ip += 1;
        open.total += 1;
        Ok(Admitted {
            admission: Arc::clone(self),
            ip,
        })
    }
}

/// One admitted connection; it stops counting when dropped.
struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission::new(&LimitsConfig {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..LimitsConfig::default()
        }))
    }

    #[test]
    fn counts_per_address_and_in_total_and_forgets_closed_ones() {
        let admission = admission(3, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = admission.admit(a).ok().unwrap();
        let _a2 = admission.admit(a).ok().unwrap();
        let refused = admission.admit(a).err().unwrap();
        assert_eq!(refused.limit, Limit::ConnectionsPerIp);
        let _b1 = admission.admit(b).ok().unwrap();
        let refused = admission.admit(b).err().unwrap();
        assert_eq!(refused.limit, Limit::Connections);
        drop(a1);
        assert!(admission.admit(b).is_ok());
        assert!(!admission.open.lock().unwrap().by_ip.is_empty());
    }

    #[test]
    fn an_address_with_no_connection_is_forgotten() {
        let admission = admission(10, 10);
        drop(admission.admit([10, 0, 0, 1].into()).ok().unwrap());
        let open = admission.open.lock().unwrap();
        assert_eq!(open.total, 0);
        assert!(open.by_ip.is_empty());
    }
}
