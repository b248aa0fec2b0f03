//! How the bus reaches Redis. One server: a multiplexed connection runs the commands and
//! scripts, and a pub/sub connection of its own hears the announcements (a subscribed
//! connection can run nothing else). A Redis Cluster: one cluster connection (RESP3) does
//! both: commands go to the shard of their first key, and sharded subscriptions' messages
//! come back as pushes, so an announcement is sent only to the shard that holds its channel
//! (classic `PUBLISH` is broadcast to every shard of a cluster).

use std::sync::Arc;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, PubSubSink};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushInfo, PushKind, RedisFuture, Value};
use tokio::sync::{OnceCell, mpsc};

/// Where commands and scripts go.
#[derive(Clone)]
pub(super) enum Commands {
    Single(ConnectionManager),
    /// Connected on first use (the gateway starts while Redis is down), and again after a
    /// failed attempt.
    Cluster(Cluster),
}

/// A Redis Cluster's connection, made on first use.
#[derive(Clone)]
pub(super) struct Cluster {
    client: Arc<ClusterClient>,
    connection: Arc<OnceCell<ClusterConnection>>,
}

impl Cluster {
    pub(super) fn new(client: ClusterClient) -> Self {
        Cluster {
            client: Arc::new(client),
            connection: Arc::default(),
        }
    }

    /// The connection, made if it is not yet.
    pub(super) async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
        let made = self
            .connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await?;
        Ok(made.clone())
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(manager) => manager.req_packed_command(cmd),
            Commands::Cluster(cluster) => {
                Box::pin(async move { cluster.connection().await?.req_packed_command(cmd).await })
            }
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
                let mut connection = cluster.connection().await?;
                connection.req_packed_commands(cmd, offset, count).await
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
    Cluster(ClusterConnection),
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
            Sink::Cluster(connection) => connection.ssubscribe(channel).await,
        }
    }

    /// How many channels one subscription command takes: one server many, a cluster one
    /// (each may be on another shard).
    pub(super) fn batch(&self) -> usize {
        match self {
            Sink::Single(_) => 512,
            Sink::Cluster(_) => 1,
        }
    }

    /// Subscribes to `channels`, at most `batch` of them.
    pub(super) async fn subscribe_batch(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.subscribe(channels).await,
            Sink::Cluster(connection) => connection.ssubscribe(channels).await,
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.unsubscribe(channel).await,
            Sink::Cluster(connection) => connection.sunsubscribe(channel).await,
        }
    }

    /// Whether the announcements can still reach this node: the pub/sub connection
    /// answers, or every primary of the cluster does.
    pub(super) async fn probe(&mut self) -> redis::RedisResult<()> {
        match self {
            Sink::Single(sink) => sink.ping::<Value>().await.map(drop),
            Sink::Cluster(connection) => redis::cmd("PING")
                .query_async::<Value>(connection)
                .await
                .map(drop),
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
                let connection = cluster.connection().await?;
                // Heard on a connection given up: the hub reads back what it missed.
                while pushes.try_recv().is_ok() {}
                Ok((Sink::Cluster(connection), Hearing::Cluster(pushes)))
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
