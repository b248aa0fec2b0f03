//! Subscriber connections: raw sockets speaking just enough HTTP/1.1 to read a stream.
//!
//! A connection's state is a few small state machines (head, de-chunking, marker scan,
//! sequence window) and no buffer: reads go into one buffer per worker thread, consumed
//! before the next await. That keeps the tool itself small next to the server it measures,
//! even at tens of thousands of connections in one process.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::clock;
use super::marker::{RunId, Scanner, Stamp};
use super::response::{Dechunker, Framing, HeadReader};
use super::tally::{Arrival, Sequence, Tally};
use super::target::SubscribeTarget;

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
}

/// Opens `plan.count` connections at `plan.connect_rate` per second, each then reading its
/// stream until the process ends. Returns once all have been started.
pub async fn open_all(plan: Plan, tally: Arc<Tally>) {
    let window = Arc::new(Semaphore::new(plan.connect_window));
    let start = Instant::now();
    for local in 0..plan.count {
        let due = start + Duration::from_secs_f64(local as f64 / plan.connect_rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
            return;
        };
        let index = plan.first + local;
        let source = source_address(index, plan.source_addrs);
        let target = &plan.targets[(index % plan.targets.len() as u64) as usize];
        let connection = Connection::new(plan.run, local as usize, Arc::clone(&tally), permit);
        tokio::spawn(connection.run(target.clone(), source));
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
    /// Held until the response head arrives: bounds connections opening at once.
    opening: Option<OwnedSemaphorePermit>,
    head: HeadReader,
    body: Option<Body>,
    scanner: Scanner,
    sequence: Sequence,
}

impl Connection {
    fn new(run: RunId, slot: usize, tally: Arc<Tally>, opening: OwnedSemaphorePermit) -> Self {
        Connection {
            slot,
            tally,
            opening: Some(opening),
            head: HeadReader::default(),
            body: None,
            scanner: Scanner::new(run),
            sequence: Sequence::default(),
        }
    }

    async fn run(mut self, target: SubscribeTarget, source: Option<SocketAddr>) {
        let outcome = match connect(&target, source).await {
            Ok(stream) => self.read(stream).await,
            Err(e) => Err(e),
        };
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

    fn take(&mut self, mut bytes: &[u8]) -> Result<Flow, String> {
        if self.body.is_none() {
            let Some((head, used)) = self.head.feed(bytes)? else {
                return Ok(Flow::Open);
            };
            if !(200..300).contains(&head.status) {
                return Err(format!("HTTP status {}", head.status));
            }
            self.body = Some(match head.framing {
                Framing::Chunked => Body::Chunked(Dechunker::default()),
                Framing::Length(n) => Body::Length(n),
                Framing::Close => Body::Close,
            });
            self.opening = None;
            self.tally.connect_succeeded(self.slot);
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
    let mut stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(&target.request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    Ok(stream)
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
