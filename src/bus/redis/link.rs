//! How the bus reaches Redis. One server: a multiplexed connection runs the commands and
//! scripts, and a pub/sub connection of its own hears the announcements (a subscribed
//! connection can run nothing else). A Redis Cluster: one cluster connection (RESP3) does
//! both: commands go to the shard of their first key, and sharded subscriptions' messages
//! come back as pushes, so an announcement is sent only to the shard that holds its channel
//! (classic `PUBLISH` is broadcast to every shard of a cluster).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, PubSubSink};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ErrorKind, Pipeline, PushInfo, PushKind, RedisError, RedisFuture, RedisResult, Value,
};
use tokio::sync::{Mutex, mpsc};

/// Where commands and scripts go.
#[derive(Clone)]
pub(super) enum Commands {
    Single(ConnectionManager),
    /// Connected on first use (the gateway starts while Redis is down), and again after a
    /// failed attempt.
    Cluster(Cluster),
}

/// A Redis Cluster's connection, made on first use and made again after it failed.
///
/// The cluster client repairs its connection by itself, but not always: left with no node
/// to ask (all were unreachable at the moment it learnt the slots), it retries the slots at
/// once, forever, never reaching the configured nodes again, and spins a core meanwhile. So
/// a connection that failed for want of a node is given up (its task ends with its last
/// handle), and the next command makes a new one from the configured nodes; an attempt
/// that failed is not made again within `RETRY` (callers get its error meanwhile).
#[derive(Clone)]
pub(super) struct Cluster {
    client: Arc<ClusterClient>,
    state: Arc<Mutex<State>>,
}

/// How soon a failed attempt to connect to the cluster is made again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    current: Option<Made>,
    /// How many connections were made: each one's number.
    made: u64,
    /// The last attempt's failure, and when.
    refused: Option<(Instant, RedisError)>,
}

/// One connection to the cluster, numbered: a failure seen late never gives up a newer one.
#[derive(Clone)]
pub(super) struct Made {
    number: u64,
    connection: ClusterConnection,
}

impl Cluster {
    pub(super) fn new(client: ClusterClient) -> Self {
        Cluster {
            client: Arc::new(client),
            state: Arc::default(),
        }
    }

    /// The connection, made if there is none. An attempt runs as a task of its own: a
    /// caller that gives up waiting (its command timed out) does not cut it short, and what
    /// it found is kept for the next caller.
    async fn connection(&self) -> RedisResult<Made> {
        // Every command passes here: no task for the one already made.
        if let Some(made) = &self.state.lock().await.current {
            return Ok(made.clone());
        }
        let cluster = self.clone();
        match tokio::spawn(async move { cluster.connect().await }).await {
            Ok(made) => made,
            Err(e) => Err(RedisError::from((
                ErrorKind::Io,
                "the attempt to connect to the cluster ended",
                e.to_string(),
            ))),
        }
    }

    async fn connect(&self) -> RedisResult<Made> {
        let mut state = self.state.lock().await;
        if let Some(made) = &state.current {
            return Ok(made.clone());
        }
        if let Some((at, error)) = &state.refused
            && at.elapsed() < RETRY
        {
            return Err(error.clone());
        }
        match self.client.get_async_connection().await {
            Ok(connection) => {
                state.made += 1;
                let made = Made {
                    number: state.made,
                    connection,
                };
                state.current = Some(made.clone());
                state.refused = None;
                Ok(made)
            }
            Err(error) => {
                state.refused = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// `answer` as it is, giving `made` up first if it failed for want of a node (not for
    /// what a node said).
    async fn checked<T>(&self, made: &Made, answer: RedisResult<T>) -> RedisResult<T> {
        if let Err(error) = &answer
            && (error.is_io_error() || error.kind() == ErrorKind::ClusterConnectionNotFound)
        {
            let mut state = self.state.lock().await;
            if state
                .current
                .as_ref()
                .is_some_and(|c| c.number == made.number)
            {
                tracing::debug!("the redis cluster connection failed ({error}); making a new one");
                state.current = None;
            }
        }
        answer
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(manager) => manager.req_packed_command(cmd),
            Commands::Cluster(cluster) => Box::pin(async move {
                let made = cluster.connection().await?;
                let answer = made.connection.clone().req_packed_command(cmd).await;
                cluster.checked(&made, answer).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Single(manager) => manager.req_packed_commands(cmd, offset, count),
            Commands::Cluster(cluster) => Box::pin(async move {
                let made = cluster.connection().await?;
                let mut connection = made.connection.clone();
                let answer = connection.req_packed_commands(cmd, offset, count).await;
                cluster.checked(&made, answer).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(manager) => manager.get_db(),
            Commands::Cluster(_) => 0,
        }
    }
}

/// Where subscriptions to announcements are asked.
#[derive(Clone)]
pub(super) enum Sink {
    Single(PubSubSink),
    Cluster(Cluster, Made),
}

impl Sink {
    /// The command that announces on a channel this sink hears.
    pub(super) fn publish_command(cluster: bool) -> &'static str {
        match cluster {
            true => "SPUBLISH",
            false => "PUBLISH",
        }
    }

    pub(super) async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.subscribe(channel).await,
            Sink::Cluster(cluster, made) => {
                let answer = made.connection.ssubscribe(channel).await;
                cluster.checked(made, answer).await
            }
        }
    }

    /// How many channels one subscription command takes: one server many, a cluster one
    /// (each may be on another shard).
    pub(super) fn batch(&self) -> usize {
        match self {
            Sink::Single(_) => 512,
            Sink::Cluster(..) => 1,
        }
    }

    /// Subscribes to `channels`, at most `batch` of them.
    pub(super) async fn subscribe_batch(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.subscribe(channels).await,
            Sink::Cluster(cluster, made) => {
                let answer = made.connection.ssubscribe(channels).await;
                cluster.checked(made, answer).await
            }
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.unsubscribe(channel).await,
            Sink::Cluster(cluster, made) => {
                let answer = made.connection.sunsubscribe(channel).await;
                cluster.checked(made, answer).await
            }
        }
    }

    /// Whether the announcements can still reach this node: the pub/sub connection
    /// answers, or every primary of the cluster does.
    pub(super) async fn probe(&mut self) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.ping::<Value>().await.map(drop),
            Sink::Cluster(cluster, made) => {
                let mut connection = made.connection.clone();
                let answer = redis::cmd("PING")
                    .query_async::<Value>(&mut connection)
                    .await;
                cluster.checked(made, answer.map(drop)).await
            }
        }
    }
}

/// What announcements are heard from: a pub/sub connection of its own, made afresh after a
/// failure, for one server; the pushes of the cluster connection for a cluster.
pub(super) enum Listener {
    Single(Box<redis::Client>),
    Cluster(Cluster, mpsc::UnboundedReceiver<PushInfo>),
}

/// What a listener hears.
pub(super) enum Heard {
    /// An announcement: its channel and payload.
    Message(String, Vec<u8>),
    /// A connection to the cluster was lost: what was announced meanwhile went unheard.
    Lost,
    /// The cluster ended the subscription to a channel: its slot moved to another shard.
    Ended(String),
}

/// Announcements as they come (see `Listener::connect`).
pub(super) enum Hearing<'a> {
    Single(redis::aio::PubSubStream),
    Cluster(&'a mut mpsc::UnboundedReceiver<PushInfo>),
}

impl Listener {
    /// A connection to hear on: where to subscribe, and what it hears.
    pub(super) async fn connect(&mut self) -> redis::RedisResult<(Sink, Hearing<'_>)> {
        match self {
            Listener::Single(client) => {
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Ok((Sink::Single(sink), Hearing::Single(stream)))
            }
            Listener::Cluster(cluster, pushes) => {
                let made = cluster.connection().await?;
                // Heard on a connection given up: the hub reads back what it missed.
                while pushes.try_recv().is_ok() {}
                Ok((
                    Sink::Cluster(cluster.clone(), made),
                    Hearing::Cluster(pushes),
                ))
            }
        }
    }
}

impl Hearing<'_> {
    /// The next thing heard; `None` once the connection is gone.
    pub(super) async fn next(&mut self) -> Option<Heard> {
        match self {
            Hearing::Single(stream) => {
                let message = stream.next().await?;
                let channel = message.get_channel_name().to_owned();
                Some(Heard::Message(
                    channel,
                    message.get_payload_bytes().to_vec(),
                ))
            }
            Hearing::Cluster(pushes) => loop {
                let push = pushes.recv().await?;
                match (push.kind, &push.data[..]) {
                    (
                        PushKind::SMessage,
                        [Value::BulkString(channel), Value::BulkString(payload)],
                    ) => {
                        let channel = String::from_utf8_lossy(channel).into_owned();
                        return Some(Heard::Message(channel, payload.clone()));
                    }
                    (PushKind::Disconnection, _) => return Some(Heard::Lost),
                    (PushKind::SUnsubscribe, [Value::BulkString(channel), ..]) => {
                        let channel = String::from_utf8_lossy(channel).into_owned();
                        return Some(Heard::Ended(channel));
                    }
                    // Subscriptions confirmed (again, after a reconnection).
                    _ => continue,
                }
            },
        }
    }
}
