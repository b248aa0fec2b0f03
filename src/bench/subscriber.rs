//! Subscriber connections: raw sockets speaking just enough HTTP/1.1 to read a stream, or,
//! over TLS, HTTP/1.1 or HTTP/2 (several streams on one connection, `--h2-streams`).
//!
//! A plain connection's state is a few small state machines (head, de-chunking, marker
//! scan, sequence window) and no buffer: reads go into one buffer per worker thread,
//! consumed before the next await. That keeps the tool itself small next to the server it
//! measures, even at tens of thousands of connections in one process. A TLS connection
//! keeps a read buffer of its own (the TLS stream is read across an await).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::clock;
use super::marker::{RunId, Scanner, Stamp};
use super::response::{Dechunker, Framing, HeadReader};
use super::tally::{Arrival, Sequence, Tally};
use super::target::SubscribeTarget;
use super::tls::BenchTls;

/// What a TLS subscriber reads at once.
const TLS_READ: usize = 16 * 1024;
/// What an HTTP/2 stream may receive before the subscriber reads it.
const STREAM_WINDOW: u32 = 1 << 20;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; 64 * 1024].into_boxed_slice());
}

/// How one process opens its share of the subscribers.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Subscriber i (global index) uses target i mod n: one per `--subscribe-url`.
    pub targets: Vec<SubscribeTarget>,
    pub run: RunId,
    pub count: u64,
    /// Global index of the first one, for spreading source addresses and targets across
    /// processes.
    pub first: u64,
    pub connect_rate: f64,
    pub connect_window: usize,
    pub source_addrs: u8,
    /// For https:// targets.
    pub tls: Option<BenchTls>,
    /// Streams per HTTP/2 connection; 0: HTTP/1.1, a connection each.
    pub h2_streams: u64,
}

/// Opens `plan.count` subscribers at `plan.connect_rate` per second (over HTTP/2,
/// `plan.h2_streams` on each connection), each then reading its stream until the process
/// ends. Returns once all have been started.
pub async fn open_all(plan: Plan, tally: Arc<Tally>) {
    let window = Arc::new(Semaphore::new(plan.connect_window));
    let start = Instant::now();
    let per_connection = plan.h2_streams.max(1);
    for local in (0..plan.count).step_by(per_connection as usize) {
        let due = start + Duration::from_secs_f64(local as f64 / plan.connect_rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
            return;
        };
        let index = plan.first + local;
        let source = source_address(index, plan.source_addrs);
        // Over HTTP/2, one connection's streams go to one target: targets rotate by
        // connection.
        let which = (plan.first + local) / per_connection;
        let target = plan.targets[(which % plan.targets.len() as u64) as usize].clone();
        let tls = plan.tls.clone().filter(|_| target.tls);
        let slots = local..(local + per_connection).min(plan.count);
        let mut permit = Some(permit);
        let mut subscribers = slots.map(|slot| {
            Connection::new(plan.run, slot as usize, Arc::clone(&tally), permit.take())
        });
        match (plan.h2_streams, tls) {
            (0, tls) => {
                let subscriber = subscribers.next().expect("one slot");
                tokio::spawn(subscriber.run(target, source, tls));
            }
            (_, Some(tls)) => {
                tokio::spawn(run_h2(subscribers.collect(), target, source, tls));
            }
            (_, None) => unreachable!("--h2-streams is refused without --tls-ca"),
        }
    }
}

/// `127.0.0.(1 + index mod K)`, or `None` to let the kernel choose when K is 1.
fn source_address(index: u64, source_addrs: u8) -> Option<SocketAddr> {
    (source_addrs > 1).then(|| {
        let last = 1 + (index % u64::from(source_addrs)) as u8;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0)
    })
}

enum Body {
    Chunked(Dechunker),
    Length(u64),
    Close,
}

/// What a read amounted to.
enum Flow {
    Open,
    /// The response body ended.
    Ended,
}

struct Connection {
    slot: usize,
    tally: Arc<Tally>,
    /// Held until the response head arrives: bounds connections opening at once (over
    /// HTTP/2, the first stream of a connection holds it).
    opening: Option<OwnedSemaphorePermit>,
    head: HeadReader,
    body: Option<Body>,
    scanner: Scanner,
    sequence: Sequence,
}

impl Connection {
    fn new(
        run: RunId,
        slot: usize,
        tally: Arc<Tally>,
        opening: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Connection {
            slot,
            tally,
            opening,
            head: HeadReader::default(),
            body: None,
            scanner: Scanner::new(run),
            sequence: Sequence::default(),
        }
    }

    async fn run(
        mut self,
        target: SubscribeTarget,
        source: Option<SocketAddr>,
        tls: Option<BenchTls>,
    ) {
        let outcome = self.stream(&target, source, tls).await;
        self.finish(outcome, &target);
    }

    /// Connects, sends the request and reads the response until it ends.
    async fn stream(
        &mut self,
        target: &SubscribeTarget,
        source: Option<SocketAddr>,
        tls: Option<BenchTls>,
    ) -> Result<(), String> {
        let stream = connect(target, source).await?;
        let Some(tls) = tls else {
            let mut stream = stream;
            send(&mut stream, &target.request).await?;
            return self.read(stream).await;
        };
        let mut stream = handshake(&tls, stream, target).await?;
        send(&mut stream, &target.request).await?;
        let mut buffer = vec![0; TLS_READ];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    if let Flow::Ended = self.take(&buffer[..n])? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Reads one stream of an HTTP/2 connection until it ends.
    async fn stream_h2(
        &mut self,
        connection: h2::client::SendRequest<Bytes>,
        target: &SubscribeTarget,
    ) -> Result<(), String> {
        let failed = |e: h2::Error| format!("HTTP/2: {e}");
        let mut connection = connection.ready().await.map_err(failed)?;
        let (response, _) = connection
            .send_request(target.h2_request.clone(), true)
            .map_err(failed)?;
        let response = response.await.map_err(failed)?;
        self.accepted(response.status().as_u16(), Framing::Close)?;
        let mut body = response.into_body();
        while let Some(data) = body.data().await {
            let data = data.map_err(failed)?;
            let _ = body.flow_control().release_capacity(data.len());
            if let Flow::Ended = self.take(&data)? {
                break;
            }
        }
        Ok(())
    }

    /// Counts how the subscriber ended.
    fn finish(&self, outcome: Result<(), String>, target: &SubscribeTarget) {
        let accepted = self.body.is_some();
        let reason = match outcome {
            Ok(()) if accepted => "the server ended the response".to_owned(),
            Ok(()) => "the server closed the connection without answering".to_owned(),
            Err(e) => e,
        };
        let counter = if accepted {
            &self.tally.dropped
        } else {
            &self.tally.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let what = if accepted { "dropped" } else { "failed" };
        self.tally
            .error(format!("subscriber {what} ({}): {reason}", target.addr));
    }

    async fn read(&mut self, stream: TcpStream) -> Result<(), String> {
        loop {
            stream.readable().await.map_err(|e| e.to_string())?;
            let flow = READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
                Ok(0) => Ok(Flow::Ended),
                Ok(n) => self.take(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Flow::Open),
                Err(e) => Err(e.to_string()),
            })?;
            if let Flow::Ended = flow {
                return Ok(());
            }
        }
    }

    /// The response's head arrived: its body is read from now on.
    fn accepted(&mut self, status: u16, framing: Framing) -> Result<(), String> {
        if !(200..300).contains(&status) {
            return Err(format!("HTTP status {status}"));
        }
        self.body = Some(match framing {
            Framing::Chunked => Body::Chunked(Dechunker::default()),
            Framing::Length(n) => Body::Length(n),
            Framing::Close => Body::Close,
        });
        self.opening = None;
        self.tally.connect_succeeded(self.slot);
        Ok(())
    }

    fn take(&mut self, mut bytes: &[u8]) -> Result<Flow, String> {
        if self.body.is_none() {
            let Some((head, used)) = self.head.feed(bytes)? else {
                return Ok(Flow::Open);
            };
            self.accepted(head.status, head.framing)?;
            bytes = &bytes[used..];
        }
        let received_at = clock::unix_micros();
        let Connection {
            slot,
            body,
            scanner,
            sequence,
            tally,
            ..
        } = self;
        let mut fresh = 0;
        let mut record = |stamp: Stamp| {
            let counter = match sequence.observe(stamp) {
                Arrival::InOrder => None,
                Arrival::Repeat => {
                    tally.duplicates.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Arrival::Overtaken => Some(&tally.overtaken),
                Arrival::OutOfOrder => Some(&tally.out_of_order),
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            fresh += 1;
            tally
                .latency
                .record(received_at.saturating_sub(stamp.sent_us));
        };
        let flow = match body.as_mut().expect("set when the head arrived") {
            Body::Chunked(dechunker) => {
                let done = dechunker.feed(bytes, |data| scanner.feed(data, &mut record))?;
                if done { Flow::Ended } else { Flow::Open }
            }
            Body::Length(remaining) => {
                let take = (*remaining).min(bytes.len() as u64);
                scanner.feed(&bytes[..take as usize], &mut record);
                *remaining -= take;
                if *remaining == 0 {
                    Flow::Ended
                } else {
                    Flow::Open
                }
            }
            Body::Close => {
                scanner.feed(bytes, &mut record);
                Flow::Open
            }
        };
        if fresh > 0 {
            tally.delivered(*slot, fresh, received_at);
        }
        Ok(flow)
    }
}

/// Opens `streams` (at least one) as streams of one HTTP/2 connection over TLS to
/// `target`, each read by a task of its own.
async fn run_h2(
    streams: Vec<Connection>,
    target: SubscribeTarget,
    source: Option<SocketAddr>,
    tls: BenchTls,
) {
    // Each stream may have a window's worth in flight; the connection, all of theirs.
    let window = STREAM_WINDOW
        .saturating_mul(streams.len() as u32)
        .min(i32::MAX as u32);
    let connected = async {
        let stream = handshake(&tls, connect(&target, source).await?, &target).await?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(window)
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok::<_, String>(send)
    }
    .await;
    let target = Arc::new(target);
    for mut stream in streams {
        match &connected {
            Err(e) => stream.finish(Err(e.clone()), &target),
            Ok(send) => {
                let (send, target) = (send.clone(), Arc::clone(&target));
                tokio::spawn(async move {
                    let outcome = stream.stream_h2(send, &target).await;
                    stream.finish(outcome, &target);
                });
            }
        }
    }
}

async fn connect(
    target: &SubscribeTarget,
    source: Option<SocketAddr>,
) -> Result<TcpStream, String> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(source) = source {
        socket
            .bind(source)
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// The TLS handshake with `target` (a loopback address: its certificate names the IP).
async fn handshake(
    tls: &BenchTls,
    stream: TcpStream,
    target: &SubscribeTarget,
) -> Result<TlsStream<TcpStream>, String> {
    let name = ServerName::IpAddress(target.addr.ip().into());
    tls.connector
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

async fn send(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    request: &[u8],
) -> Result<(), String> {
    // A TLS stream may hold the request's records until flushed.
    let sent = async {
        stream.write_all(request).await?;
        stream.flush().await
    };
    sent.await.map_err(|e| format!("sending the request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_rotate() {
        assert_eq!(source_address(7, 1), None);
        let addr = |i| source_address(i, 3).unwrap().ip().to_string();
        assert_eq!(
            [addr(0), addr(1), addr(2), addr(3)],
            ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]
        );
    }
}
