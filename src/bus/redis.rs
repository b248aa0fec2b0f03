//! Many nodes' bus: Redis holds each pub/sub channel's history and gives its positions.
//!
//! Per channel (the name in braces: a Redis Cluster hash tag, so a channel's keys live on one
//! shard and one script may touch them all):
//! - `sg:{name}:m`, a hash: the channel's epoch `e` and its last offset `o`;
//! - `sg:{name}:s`, a stream: the history, one entry per event, its id `{offset}-0`, fields
//!   `t` (when it was appended, ms) and `d` (the event as the hub stores it, JSON);
//! - `sg:{name}:i`, a sorted set: publisher-given message ids still in history, by offset;
//! - `sg:{name}:n`, the pub/sub channel that announces each append to the nodes listening.
//!
//! One script appends: it draws the epoch on first use, counts offsets, answers a known
//! publisher id again instead of appending, trims by count and age, and announces what it
//! appended, so every node sees one order. Positions never come from a clock.
//!
//! Announcements go over one pub/sub connection per node, apart from the multiplexed
//! connection that runs the scripts (a subscribed connection can run nothing else). It is
//! probed every few seconds: a subscription that died silently (a failover, a proxy) is
//! noticed and made again, and the hub then reads what it missed (`Notice::Reconnected`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{Client, Script, Value};
use tokio::sync::mpsc;

/// How long a command may take before the bus reports Redis as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the announcement connection is probed, and how long a probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// How long a channel's epoch outlives its last append at least: a subscriber that sees
/// nothing for this long and then a message is told of a gap it did not have.
const EPOCH_KEEP_MS: u64 = 7 * 24 * 3600 * 1000;
/// Announcements waiting for the hub at most; the connection's reader waits beyond.
const NOTICES: usize = 4096;

const APPEND: &str = r#"
-- KEYS: meta, stream, ids. ARGV: proposed epoch, size, ttl ms, epoch keep ms, now ms,
-- announce channel, then per event: id, given (1: a publisher's id), JSON.
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
local answer = {tonumber(epoch)}
local notice = {epoch}
for i = 7, #ARGV, 3 do
  local known = false
  if ARGV[i + 1] == '1' then known = redis.call('ZSCORE', KEYS[3], ARGV[i]) end
  if known then
    table.insert(answer, -tonumber(known))
  else
    local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
    redis.call('XADD', KEYS[2], offset .. '-0', 't', ARGV[5], 'd', ARGV[i + 2])
    if ARGV[i + 1] == '1' then redis.call('ZADD', KEYS[3], offset, ARGV[i]) end
    table.insert(answer, offset)
    table.insert(notice, offset)
    table.insert(notice, ARGV[i + 2])
  end
end
if #notice > 1 then
  redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[2])
  local oldest = tonumber(ARGV[5]) - tonumber(ARGV[3])
  while true do
    local front = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 64)
    if #front == 0 then break end
    local cut = nil
    for _, entry in ipairs(front) do
      if tonumber(entry[2][2]) >= oldest then cut = entry[1] break end
    end
    if cut then redis.call('XTRIM', KEYS[2], 'MINID', cut) break end
    local last = tonumber(string.match(front[#front][1], '^%d+'))
    redis.call('XTRIM', KEYS[2], 'MINID', (last + 1) .. '-0')
  end
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if first then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.match(first[1], '^%d+'))
  else
    redis.call('DEL', KEYS[3])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  redis.call('PUBLISH', ARGV[6], table.concat(notice, '\n'))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return answer
"#;

const READ: &str = r#"
-- KEYS: meta, stream. ARGV: proposed epoch, epoch keep ms, 'newest' or an offset, count.
-- Answers epoch, last offset, then offset and JSON of each event (oldest first).
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local entries
if ARGV[3] == 'newest' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[4])
else
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-0', '+', 'COUNT', ARGV[4])
end
local answer = {tonumber(epoch), tonumber(redis.call('HGET', KEYS[1], 'o'))}
local from, to, step = 1, #entries, 1
if ARGV[3] == 'newest' then from, to, step = #entries, 1, -1 end
for i = from, to, step do
  table.insert(answer, tonumber(string.match(entries[i][1], '^%d+')))
  table.insert(answer, entries[i][2][4])
end
return answer
"#;

/// Redis as the bus of many nodes. See the module's notes.
pub struct RedisBus {
    /// The server, as messages name it (without a password).
    shown: String,
    client: Client,
    commands: ConnectionManager,
    append: Script,
    read: Script,
    /// Channels this node hears the announcements of.
    listening: Mutex<HashSet<String>>,
    /// Where subscriptions are asked; `None` while the connection is down.
    sink: Mutex<Option<PubSubSink>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisBus({})", self.shown)
    }
}

/// What the bus tells the hub.
#[derive(Debug)]
pub enum Notice {
    /// A node appended to `channel`: `(offset, JSON)` of each event, in order.
    Appended {
        channel: String,
        epoch: u64,
        events: Vec<(u64, Vec<u8>)>,
    },
    /// The announcement connection was made again: what was announced meanwhile is lost,
    /// and every channel listened to must be read to catch up.
    Reconnected,
}

/// An event for `append`.
pub struct Appending {
    pub id: String,
    /// A publisher's id: known still in history, the event is acknowledged, not appended.
    pub given: bool,
    pub json: Vec<u8>,
}

/// What an append did: the channel's epoch, and per event its offset (positive) or the
/// offset of the event already kept under its id (negative).
pub struct AppendAnswer {
    pub epoch: u64,
    pub offsets: Vec<i64>,
}

/// The history limits the append script applies.
pub struct Trim {
    pub size: usize,
    pub ttl_ms: u64,
}

/// Part of a channel's history as read.
#[derive(Debug)]
pub struct Span {
    pub epoch: u64,
    /// The channel's last offset when read.
    pub head: u64,
    /// `(offset, JSON)`, oldest first.
    pub events: Vec<(u64, Vec<u8>)>,
}

/// Which part of history `read` answers.
pub enum Range {
    Newest(usize),
    After(u64, usize),
}

impl RedisBus {
    /// Connects lazily to `url`: the gateway starts while Redis is down, and is ready once
    /// it answers. Announcements reach the receiver returned.
    pub async fn connect(
        url: &str,
    ) -> Result<(std::sync::Arc<Self>, mpsc::Receiver<Notice>), String> {
        let shown = without_password(url);
        let client = Client::open(url)
            .map_err(|e| format!("[bus] redis_url {shown:?} is not usable: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(TIMEOUT))
            .set_connection_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis at {shown}: {e}"))?;
        let bus = std::sync::Arc::new(RedisBus {
            shown,
            client,
            commands,
            append: Script::new(APPEND),
            read: Script::new(READ),
            listening: Mutex::default(),
            sink: Mutex::default(),
        });
        let (tx, rx) = mpsc::channel(NOTICES);
        tokio::spawn(listen_loop(std::sync::Arc::clone(&bus), tx));
        Ok((bus, rx))
    }

    /// Appends `events` to `channel` (drawing `epoch` if it has none), trimming history to
    /// `trim`, and announces them.
    pub async fn append(
        &self,
        channel: &str,
        epoch: u64,
        events: &[Appending],
        trim: &Trim,
    ) -> Result<AppendAnswer, String> {
        let keys = Keys::of(channel);
        // Redis refuses expiry times past its range: ten years is as good as forever.
        let ttl_ms = trim.ttl_ms.clamp(1, 10 * 365 * 24 * 3600 * 1000);
        let mut call = self.append.prepare_invoke();
        call.key(&keys.meta).key(&keys.stream).key(&keys.ids);
        call.arg(epoch)
            .arg(trim.size)
            .arg(ttl_ms)
            .arg(EPOCH_KEEP_MS.max(ttl_ms))
            .arg(crate::clock::now_ms())
            .arg(&keys.notify);
        for event in events {
            call.arg(&event.id)
                .arg(if event.given { "1" } else { "0" })
                .arg(&event.json[..]);
        }
        let mut commands = self.commands.clone();
        let answer: Vec<i64> = self.timed(call.invoke_async(&mut commands)).await?;
        match answer.split_first() {
            Some((&epoch, offsets)) if epoch > 0 && offsets.len() == events.len() => {
                Ok(AppendAnswer {
                    epoch: epoch as u64,
                    offsets: offsets.to_vec(),
                })
            }
            _ => Err(format!("redis at {} answered an append oddly", self.shown)),
        }
    }

    /// Reads part of `channel`'s history (drawing `epoch` if it has none, so positions
    /// handed out before the first append stay valid after it).
    pub async fn read(&self, channel: &str, epoch: u64, range: Range) -> Result<Span, String> {
        let keys = Keys::of(channel);
        let mut call = self.read.prepare_invoke();
        call.key(&keys.meta).key(&keys.stream);
        call.arg(epoch).arg(EPOCH_KEEP_MS);
        match range {
            Range::Newest(count) => call.arg("newest").arg(count),
            Range::After(offset, count) => call.arg(offset).arg(count),
        };
        let mut commands = self.commands.clone();
        let answer: Vec<Value> = self.timed(call.invoke_async(&mut commands)).await?;
        span(answer).ok_or_else(|| format!("redis at {} answered a read oddly", self.shown))
    }

    /// Hears `channel`'s announcements from now on (once the answer is in).
    pub async fn listen(&self, channel: &str) -> Result<(), String> {
        self.listening.lock().unwrap().insert(channel.to_owned());
        let sink = self.sink.lock().unwrap().clone();
        let Some(mut sink) = sink else {
            return Err(format!("redis at {} is not reachable", self.shown));
        };
        let subscribe = sink.subscribe(Keys::of(channel).notify);
        self.timed(subscribe).await
    }

    /// Stops hearing `channel`'s announcements (in the background).
    pub fn unlisten(&self, channel: &str) {
        self.listening.lock().unwrap().remove(channel);
        if let Some(mut sink) = self.sink.lock().unwrap().clone() {
            let notify = Keys::of(channel).notify;
            tokio::spawn(async move { sink.unsubscribe(notify).await });
        }
    }

    /// Whether Redis answers, and this node hears announcements.
    pub async fn ready(&self) -> Result<(), String> {
        if self.sink.lock().unwrap().is_none() {
            return Err(format!("redis at {} is not reachable", self.shown));
        }
        let mut commands = self.commands.clone();
        let ping = redis::cmd("PING");
        self.timed(ping.query_async::<String>(&mut commands))
            .await
            .map(drop)
    }

    /// `request`'s answer, or a message for the client when Redis failed it or did not
    /// answer within `TIMEOUT` (never a hang).
    async fn timed<T>(
        &self,
        request: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(TIMEOUT, request).await {
            Ok(answer) => answer.map_err(|e| self.unreachable(e)),
            Err(_) => Err(format!("redis at {} did not answer in time", self.shown)),
        }
    }

    fn unreachable(&self, error: redis::RedisError) -> String {
        format!(
            "redis at {} did not answer ({error}); try again (a publish retried with the same \
             message ids is never doubled)",
            self.shown
        )
    }
}

/// Keeps one announcement connection up: (re)connects, subscribes to every channel listened
/// to, forwards announcements, and probes the connection.
async fn listen_loop(bus: std::sync::Arc<RedisBus>, notices: mpsc::Sender<Notice>) {
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        match connect_listener(&bus).await {
            Ok((sink, stream)) => {
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        "redis at {} is reachable again after {:.1} s",
                        bus.shown,
                        since.elapsed().as_secs_f64()
                    );
                }
                *bus.sink.lock().unwrap() = Some(sink.clone());
                if notices.send(Notice::Reconnected).await.is_err() {
                    return;
                }
                let why = forward(&bus, sink, stream, &notices).await;
                *bus.sink.lock().unwrap() = None;
                match why {
                    Some(why) => tracing::warn!("redis at {}: {why}; reconnecting", bus.shown),
                    None => return,
                }
                down_since = Some(std::time::Instant::now());
            }
            Err(e) => {
                if down_since.is_none() {
                    tracing::warn!("{e}; retrying every second");
                    down_since = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn connect_listener(
    bus: &RedisBus,
) -> Result<(PubSubSink, redis::aio::PubSubStream), String> {
    let connect = bus.client.get_async_pubsub();
    let pubsub = bus.timed(connect).await?;
    let (mut sink, stream) = pubsub.split();
    let channels: Vec<String> = bus.listening.lock().unwrap().iter().cloned().collect();
    for chunk in channels.chunks(512) {
        let notify: Vec<String> = chunk.iter().map(|c| Keys::of(c).notify).collect();
        bus.timed(sink.subscribe(notify)).await?;
    }
    Ok((sink, stream))
}

/// Forwards announcements until the connection fails a probe or ends (`Some(why)`), or the
/// hub is gone (`None`).
async fn forward(
    bus: &RedisBus,
    mut sink: PubSubSink,
    mut stream: redis::aio::PubSubStream,
    notices: &mpsc::Sender<Notice>,
) -> Option<String> {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Some("the announcement connection closed".to_owned());
                };
                let Some(notice) = notice(message.get_channel_name(), message.get_payload_bytes())
                else {
                    tracing::warn!(
                        "redis at {}: an announcement on {:?} is not readable; ignored",
                        bus.shown,
                        message.get_channel_name()
                    );
                    continue;
                };
                if notices.send(notice).await.is_err() {
                    return None;
                }
            }
            _ = probe.tick() => {
                let ping = sink.ping::<Value>();
                match tokio::time::timeout(TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Some(format!("the announcement connection failed: {e}")),
                    Err(_) => return Some("the announcement connection did not answer a probe".to_owned()),
                }
            }
        }
    }
}

/// An announcement: the epoch, then offset and JSON of each event, one per line (the JSON
/// is compact: it has no line break of its own).
fn notice(pubsub_channel: &str, payload: &[u8]) -> Option<Notice> {
    let channel = Keys::channel_of(pubsub_channel)?;
    let mut lines = payload.split(|&b| b == b'\n');
    let epoch = number(lines.next()?)?;
    let mut events = Vec::new();
    while let Some(offset) = lines.next() {
        events.push((number(offset)?, lines.next()?.to_vec()));
    }
    Some(Notice::Appended {
        channel: channel.to_owned(),
        epoch,
        events,
    })
}

fn number(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A read script's answer as a span.
fn span(answer: Vec<Value>) -> Option<Span> {
    let mut values = answer.into_iter();
    let next_number = |values: &mut std::vec::IntoIter<Value>| match values.next()? {
        Value::Int(n) if n >= 0 => Some(n as u64),
        _ => None,
    };
    let epoch = next_number(&mut values)?;
    let head = next_number(&mut values)?;
    let mut events = Vec::new();
    while let Some(offset) = next_number(&mut values) {
        let Some(Value::BulkString(json)) = values.next() else {
            return None;
        };
        events.push((offset, json));
    }
    Some(Span {
        epoch,
        head,
        events,
    })
}

/// A channel's keys.
struct Keys {
    meta: String,
    stream: String,
    ids: String,
    notify: String,
}

impl Keys {
    fn of(channel: &str) -> Keys {
        Keys {
            meta: format!("sg:{{{channel}}}:m"),
            stream: format!("sg:{{{channel}}}:s"),
            ids: format!("sg:{{{channel}}}:i"),
            notify: format!("sg:{{{channel}}}:n"),
        }
    }

    /// The channel an announcement channel is of.
    fn channel_of(notify: &str) -> Option<&str> {
        notify.strip_prefix("sg:{")?.strip_suffix("}:n")
    }
}

/// `url` without the password, for messages.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_back() {
        let Some(Notice::Appended {
            channel,
            epoch,
            events,
        }) = notice("sg:{a}b}:n", b"77\n5\n{\"x\":1}\n6\n{}")
        else {
            panic!("not read");
        };
        assert_eq!((channel.as_str(), epoch), ("a}b", 77));
        assert_eq!(
            events,
            vec![(5, b"{\"x\":1}".to_vec()), (6, b"{}".to_vec())]
        );
        assert!(notice("sg:{a}:n", b"77\n5").is_none());
        assert!(notice("other", b"77").is_none());
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("redis://:hunter2@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(without_password("redis://h:6379"), "redis://h:6379");
    }
}
