//! `[limits] write_timeout_ms`: a client whose socket accepts nothing of what is written to
//! it for that long is cut off. Otherwise a client that never reads would hold, besides its
//! connection, the kernel's socket buffers full of what it was sent, for ever.
//!
//! Used by the server's own loop for each of its writes, and around the socket (plain or
//! TLS) of every connection hyper serves.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

use crate::metrics::Limit;

/// When a write that is waiting for the socket gives up.
pub struct WriteDeadline {
    timeout: Duration,
    /// Set while the socket accepts nothing; boxed, as most writes never wait.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    pub fn new(timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            timeout,
            stalled: None,
        }
    }

    /// Passes on `written`, the outcome of a write to `socket`; a write that has waited
    /// `timeout` since the socket last accepted something fails instead, and `socket` is
    /// set to be reset when closed.
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        socket: &TcpStream,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if written.is_ready() {
            self.stalled = None;
            return written;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        self.stalled = None;
        Limit::WriteTimeout.refused();
        tracing::debug!("a client read nothing for {timeout:?}; closing its connection");
        // A reset, not a close: a close would leave what the client never read in the
        // kernel's buffers until the kernel gives up on it, minutes later.
        if let Err(e) = socket.set_zero_linger() {
            tracing::debug!("SO_LINGER not set: {e}");
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing within [limits] write_timeout_ms",
        )))
    }
}

/// A client connection, plain or TLS, with the TCP socket under it (a stalled connection's
/// socket is reset).
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// A socket whose writes (and flushes: TLS writes records out then) have a
/// `WriteDeadline`; reads go straight through.
pub struct Deadlined<S> {
    socket: S,
    deadline: WriteDeadline,
}

impl<S: Socket> Deadlined<S> {
    pub fn new(socket: S, timeout: Duration) -> Deadlined<S> {
        Deadlined {
            socket,
            deadline: WriteDeadline::new(timeout),
        }
    }
}

impl<S: Socket> AsyncRead for Deadlined<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<S: Socket> AsyncWrite for Deadlined<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.socket).poll_write(cx, buf);
        this.deadline.poll(cx, this.socket.tcp(), written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.socket).poll_write_vectored(cx, bufs);
        this.deadline.poll(cx, this.socket.tcp(), written)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.socket).poll_flush(cx);
        this.deadline.poll(cx, this.socket.tcp(), flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let shut = Pin::new(&mut this.socket).poll_shutdown(cx);
        this.deadline.poll(cx, this.socket.tcp(), shut)
    }
}
