//! The server's own HTTP/1 connection loop.
//!
//! Why not hyper for everything: hyper keeps a read buffer and a write buffer (about 15 KiB)
//! for a connection's whole life once it has answered one request, and an SSE subscriber's
//! response never ends; that was three quarters of what an idle subscriber cost. This loop
//! reads each request head into a buffer it frees once the head is parsed, hands the
//! response head and every body chunk straight to the socket (one vectored write each, no
//! copy), and while a stream is idle holds only the socket and the stream's own state.
//!
//! It answers requests without a body (GET, HEAD, DELETE, OPTIONS: every subscription). At
//! the first request with a body, an upgrade or an `Expect`, and for HTTP/2, the connection
//! goes to hyper for the rest of its life, with the bytes already read put back in front.
//! hyper serves TLS connections whole (see `server::tls`).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{Method, Request, Response, StatusCode, Version};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::head::{self, ChunkSize, Framing, Parsed};
use super::idle::Activity;
use super::rewind::Rewind;
use super::write_deadline::{Deadlined, Socket, WriteDeadline};

/// The first read of a request head; most heads fit, larger ones grow the buffer.
const FIRST_READ: usize = 1024;

/// What every connection of a server shares.
pub struct Shared {
    pub app: Router,
    /// Serves the connections handed over.
    pub hyper: auto::Builder<TokioExecutor>,
    /// Serves TLS connections, HTTP/1.1 or HTTP/2 as ALPN chose (no guess at the first
    /// bytes, which hyper would wait for without a time limit).
    pub tls_http1: auto::Builder<TokioExecutor>,
    pub tls_http2: auto::Builder<TokioExecutor>,
    /// The largest request head read (hyper's own limit is the same).
    pub max_head: usize,
    /// `[limits] read_timeout_ms`: how long a request head may take to arrive, counted from
    /// when the connection is ready for it (a connection idle that long between requests is
    /// closed too).
    pub read_timeout: Duration,
    /// `[limits] write_timeout_ms`.
    pub write_timeout: Duration,
}

/// What the connection does next.
// Returned once per request and matched at once: boxing the request would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
enum Next {
    /// Answer this request.
    Request(Request<()>),
    /// hyper takes the connection, the bytes read so far first.
    HandOver,
    /// The head cannot be answered: say why and close.
    Refuse(StatusCode),
    /// The client closed, went quiet, or the server is stopping.
    Close,
}

/// Serves one connection until it closes or `stop` turns true (then a response under way is
/// finished, and streams end on the server's own shutdown signal).
pub async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::new();
    loop {
        // Boxed: the connection's task keeps room for its largest state for its whole life,
        // and the state it spends its life in is a stream being written, not these.
        let step = Box::pin(next_step(&shared, &mut stream, &mut buf, peer, &mut stop)).await;
        let answer = match step {
            Step::Answer(answer) => answer,
            Step::HandOver => {
                let hyper = &shared.hyper;
                return Box::pin(hand_over(&shared, hyper, stream, buf.freeze(), peer, stop)).await;
            }
            Step::Close => return,
        };
        let kept = if answer.framing == Framing::None {
            write_all(
                &mut stream,
                shared.write_timeout,
                &mut [IoSlice::new(&answer.head)],
            )
            .await
            .map(|()| true)
        } else {
            // With a pipelined request already read, the client's end of the connection is
            // not watched: it may have sent its requests and closed its sending side, and
            // is still owed the answers (hyper does the same).
            let watch_close = buf.is_empty();
            if matches!(answer.framing, Framing::Chunked | Framing::Close) && buf.len() > FIRST_READ
            {
                // A large pipelined rest is left in the whole read buffer (see
                // `next_request`); a body of unknown length, a stream, may take for ever:
                // the rest moves to a buffer of its own size meanwhile.
                buf = BytesMut::from(&buf[..]);
            }
            write_body(
                &mut stream,
                shared.write_timeout,
                answer.head.freeze(),
                answer.body,
                answer.framing,
                watch_close,
            )
            .await
        };
        if !(answer.keep_alive && matches!(kept, Ok(true))) || *stop.borrow() {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// What the connection does after reading.
enum Step {
    /// Write this response.
    Answer(Answer),
    /// hyper takes the connection, the bytes read so far first.
    HandOver,
    /// The connection is done.
    Close,
}

/// A response to write.
struct Answer {
    /// The response head's bytes.
    head: BytesMut,
    body: Body,
    framing: Framing,
    /// Whether the connection stays open after it.
    keep_alive: bool,
}

/// Reads the next request head and answers it (or refuses it).
async fn next_step(
    shared: &Shared,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) -> Step {
    let next = tokio::time::timeout(
        shared.read_timeout,
        next_request(stream, buf, shared.max_head, stop),
    )
    .await
    .unwrap_or(Next::Close);
    match next {
        // Boxed: a connection waiting for its next request keeps no room for this.
        Next::Request(request) => {
            let watch_close = buf.is_empty();
            let answered = answer(&shared.app, stream, request, peer, watch_close, stop);
            match Box::pin(answered).await {
                Some(answer) => Step::Answer(answer),
                None => Step::Close,
            }
        }
        Next::HandOver => Step::HandOver,
        Next::Refuse(status) => {
            let _ = refuse(stream, shared.write_timeout, status).await;
            Step::Close
        }
        Next::Close => Step::Close,
    }
}

/// Runs `request` through the router, and returns what `serve` writes; None when the
/// client closed the connection before the answer was ready (the handler is dropped then,
/// with whatever it was waiting on, as hyper does). Only watched when `watch_close`.
async fn answer(
    app: &Router,
    stream: &TcpStream,
    request: Request<()>,
    peer: SocketAddr,
    mut watch_close: bool,
    stop: &watch::Receiver<bool>,
) -> Option<Answer> {
    let keep_alive = head::keeps_alive(request.version(), request.headers());
    let version = request.version();
    let head_only = request.method() == Method::HEAD;
    let mut request = request.map(|()| Body::empty());
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request);
    let mut response = std::pin::pin!(response);
    let response = loop {
        tokio::select! {
            biased;
            response = response.as_mut() => break response.unwrap_or_else(|never| match never {}),
            closed = client_closed(stream), if watch_close => {
                if closed {
                    return None;
                }
                watch_close = false;
            }
        }
    };
    // During a shutdown the connection closes after this response: its head says so.
    let keep_alive = keep_alive && !*stop.borrow();
    Some(response_head(response, head_only, version, keep_alive))
}

/// Reads until `buf` holds a whole request head, and takes the head out of it when this
/// loop answers the request (what follows it, pipelined, stays).
async fn next_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max_head: usize,
    stop: &mut watch::Receiver<bool>,
) -> Next {
    loop {
        if !buf.is_empty() {
            match head::parse(buf) {
                Parsed::Partial => {}
                Parsed::Http2 => return Next::HandOver,
                Parsed::Bad(status) => return Next::Refuse(status),
                Parsed::Request { request, .. } if !head::is_simple(&request) => {
                    return Next::HandOver;
                }
                Parsed::Request { len, request } => {
                    buf.advance(len);
                    // Let the head's buffer go: an idle stream keeps no read buffer. A
                    // small rest (pipelined requests) moves to a buffer of its own; a large
                    // one stays where it is until the requests in it have been taken.
                    if buf.is_empty() {
                        *buf = BytesMut::new();
                    } else if buf.len() <= FIRST_READ {
                        *buf = BytesMut::from(&buf[..]);
                    }
                    return Next::Request(request);
                }
            }
        }
        if buf.len() >= max_head {
            return Next::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        if buf.is_empty() {
            // No buffer until there is something to read: an idle connection keeps none.
            tokio::select! {
                ready = std::future::poll_fn(|cx| stream.poll_read_ready(cx)) => {
                    if ready.is_err() {
                        return Next::Close;
                    }
                }
                () = stopping(stop) => return Next::Close,
            }
        }
        if buf.len() == buf.capacity() {
            let grow = buf.len().max(FIRST_READ).min(max_head - buf.len());
            buf.reserve(grow);
        }
        tokio::select! {
            read = stream.read_buf(buf) => match read {
                Ok(0) | Err(_) => return Next::Close,
                Ok(_) => {}
            },
            () = stopping(stop) => return Next::Close,
        }
    }
}

/// The response head's bytes, the body, how the body is delimited, and whether the
/// connection stays open after it.
fn response_head(
    response: Response<Body>,
    head_only: bool,
    version: Version,
    keep_alive: bool,
) -> Answer {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let mut keep_alive = keep_alive && !head::says_close(&parts.headers);
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    // A HEAD answer's body is always empty: only a declared length is the real one.
    let hinted = if head_only {
        None
    } else {
        http_body::Body::size_hint(&body).exact()
    };
    let length = declared.or(hinted);
    let no_body_allowed = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match length {
        _ if head_only || no_body_allowed => Framing::None,
        Some(length) => Framing::Length(length),
        None if version == Version::HTTP_11 => Framing::Chunked,
        None => Framing::Close,
    };
    keep_alive &= framing != Framing::Close;
    let length_field = if no_body_allowed { None } else { length };
    let mut out = BytesMut::with_capacity(256);
    head::write_response(
        &mut out,
        version,
        status,
        &parts.headers,
        framing,
        length_field,
        keep_alive,
    );
    Answer {
        head: out,
        body,
        framing,
        keep_alive,
    }
}

/// Writes the body frame by frame, each with the bytes still pending before it (the head,
/// first), as one vectored write. Between frames it watches the socket, so a client that
/// goes away ends an idle stream at once. Says whether the body was written whole.
async fn write_body(
    stream: &mut TcpStream,
    write_timeout: Duration,
    mut pending: Bytes,
    mut body: Body,
    framing: Framing,
    mut watch_close: bool,
) -> io::Result<bool> {
    let mut written: u64 = 0;
    loop {
        let frame = if pending.is_empty() {
            tokio::select! {
                biased;
                frame = body.frame() => frame,
                closed = client_closed(stream), if watch_close => {
                    if closed {
                        return Ok(false);
                    }
                    // A closed connection shows up at the next write instead.
                    watch_close = false;
                    continue;
                }
            }
        } else {
            // A response ready at once (most that are not streams) goes out in one write.
            match body.frame().now_or_never() {
                Some(frame) => frame,
                None => {
                    write_all(stream, write_timeout, &mut [IoSlice::new(&pending)]).await?;
                    pending = Bytes::new();
                    continue;
                }
            }
        };
        let data = match frame {
            None => {
                let end: &[u8] = if framing == Framing::Chunked {
                    b"0\r\n\r\n"
                } else {
                    b""
                };
                write_all(
                    stream,
                    write_timeout,
                    &mut [IoSlice::new(&pending), IoSlice::new(end)],
                )
                .await?;
                return Ok(match framing {
                    Framing::Length(length) => written == length,
                    _ => framing == Framing::Chunked,
                });
            }
            Some(Err(e)) => {
                tracing::debug!("response body failed: {e}");
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        written += data.len() as u64;
        if let Framing::Length(length) = framing
            && written > length
        {
            tracing::warn!("a response body ran past its content-length; closing");
            return Ok(false);
        }
        if framing == Framing::Chunked {
            let size = ChunkSize::new(data.len());
            write_all(
                stream,
                write_timeout,
                &mut [
                    IoSlice::new(&pending),
                    IoSlice::new(size.as_bytes()),
                    IoSlice::new(&data),
                    IoSlice::new(b"\r\n"),
                ],
            )
            .await?;
        } else {
            write_all(
                stream,
                write_timeout,
                &mut [IoSlice::new(&pending), IoSlice::new(&data)],
            )
            .await?;
        }
        pending = Bytes::new();
    }
}

/// Resolves with true when the client has closed its end, with false when it sent bytes
/// (its next request, pipelined: it waits its turn, and is not consumed).
async fn client_closed(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    // `poll_peek`, not `peek`: it keeps no waiter in the (long-lived) state it is part of.
    let peeked =
        std::future::poll_fn(|cx| stream.poll_peek(cx, &mut tokio::io::ReadBuf::new(&mut probe)))
            .await;
    !matches!(peeked, Ok(n) if n > 0)
}

/// Writes all of `bufs`, however many writes the socket takes; fails once the socket has
/// accepted nothing for `timeout`.
async fn write_all(
    stream: &mut TcpStream,
    timeout: Duration,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    let mut deadline = WriteDeadline::new(timeout);
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = std::future::poll_fn(|cx| {
            let written = Pin::new(&mut *stream).poll_write_vectored(cx, bufs);
            deadline.poll(cx, stream, written)
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Answers a head that cannot be served, as hyper would: status only, then close. Written
/// with the write timeout too: a client may have pipelined it behind a large answer it never
/// reads.
async fn refuse(stream: &mut TcpStream, timeout: Duration, status: StatusCode) -> io::Result<()> {
    let line = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    write_all(stream, timeout, &mut [IoSlice::new(line.as_bytes())]).await?;
    stream.shutdown().await
}

/// Serves the rest of the connection with hyper, `read` (bytes already read) first.
pub async fn hand_over<S: Socket>(
    shared: &Shared,
    hyper: &auto::Builder<TokioExecutor>,
    stream: S,
    read: Bytes,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let requests = activity.clone();
    // Handlers that need the client's address read it as axum's `ConnectInfo`.
    let service = shared
        .app
        .clone()
        .map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        })
        .map_future(move |answer| {
            let open = requests.begin();
            async move { answer.await.map(|response| open.attach(response)) }
        });
    let io = TokioIo::new(Rewind::new(
        read,
        Deadlined::new(stream, shared.write_timeout),
    ));
    let connection = hyper.serve_connection(io, TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopping(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = activity.idle_for(shared.read_timeout) => {
            tracing::trace!("connection from {peer} idle; closing it");
            // Nothing is open: a client still silent (an HTTP/2 one that never sent its
            // preface) is not waited for long.
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(shared.read_timeout, connection.as_mut()).await {
                Ok(ended) => ended,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = ended {
        tracing::trace!("connection from {peer} ended: {e}");
    }
}

/// Resolves once the server is stopping (or gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
