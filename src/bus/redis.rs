//! Many nodes' bus: Redis holds each pub/sub channel's history and gives its positions.
//!
//! Per channel (the name in braces: a Redis Cluster hash tag, so a channel's keys live on one
//! shard and one script may touch them all; the gateway's own channels, and names with a
//! brace, go by a digest of the name):
//! - `sg:{name}:m`, a hash: the channel's epoch `e` and its last offset `o`;
//! - `sg:{name}:s`, a stream: the history, one entry per event, its id `{offset}-0`, fields
//!   `t` (when it was appended, ms) and `d` (the event as the hub stores it, JSON);
//! - `sg:{name}:i`, a sorted set: publisher-given message ids still in history, by offset;
//! - `sg:{name}:n`, the pub/sub channel that announces each append to the nodes listening;
//! - for a polled topic or a relay, `sg:{name}:l`, its lease (see `lease`), and for a
//!   polled topic `sg:{name}:d`, its document, and `sg:{name}:w`, the parts of it that
//!   nodes not polling it want (see `want`).
//!
//! One script appends: it draws the epoch on first use, counts offsets, answers a known
//! publisher id again instead of appending, trims by count and age, and announces what it
//! appended, so every node sees one order. Positions never come from a clock.
//!
//! Announcements go over one pub/sub connection per node, apart from the multiplexed
//! connection that runs the scripts (a subscribed connection can run nothing else); on a
//! Redis Cluster, sharded pub/sub on the cluster connection (see `link`). It is probed
//! every few seconds: a subscription that died silently (a failover, a proxy) is noticed
//! and made again, and the hub then reads what it missed (`Notice::Reconnected`); so is a
//! subscription the cluster ended because its channel's slot moved.

mod asks;
mod link;
mod presence;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{Client, Script, Value};

use crate::bus::position::{fresh_epoch, position};
use crate::bus::{
    Answered, Append, Appending, Bus, Fence, Handed, JournalWrite, Kept, KeptJournal, Loaded,
    Placing, Trim,
};
use crate::config::BusConfig;
pub use asks::Asked;
use link::{Cluster, Commands, Heard, Hearing, Listener, Sink};
pub use presence::Beat;
use tokio::sync::mpsc;

/// How long a command may take before the bus reports Redis as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the announcement connection is probed, and how long a probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// How long a channel's epoch outlives its last append at least: a subscriber that sees
/// nothing for this long and then a message is told of a gap it did not have.
const EPOCH_KEEP_MS: u64 = 7 * 24 * 3600 * 1000;
/// Announcements waiting for the hub at most; beyond, they are dropped and the hub reads
/// every channel back from Redis (`Notice::Reconnected`).
const NOTICES: usize = 4096;

/// What asking for a lease got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Another token holds it.
    Refused,
    /// The token held it and still does.
    Kept,
    /// The token holds it from now on; another may have held it since the token last did,
    /// and appended meanwhile.
    Taken,
}

/// What every script that tells time begins with: `now`, in ms, on Redis's clock.
const CLOCK: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"#;

/// What every append script begins with, after `CLOCK`. KEYS: meta, stream, ids, document, lease. ARGV:
/// proposed epoch, size, ttl ms, epoch keep ms, fencing token, announce channel, then the
/// script's own. A fencing token ('' for none) refuses the script unless it still holds
/// the channel's lease: a node that lost its lease (paused, cut off) cannot append over the
/// new holder. Time is Redis's (`now`): a node whose clock is off trims nobody's history. `trim()` applies the history limits and drops the ids and keys history no longer
/// needs.
const PRELUDE: &str = r#"
local function trim()
  redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[2])
  local oldest = now - tonumber(ARGV[3])
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
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[5] then
  return redis.error_reply('LEASE another node feeds this channel now')
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  -- A fresh epoch; offsets go on after any event still in the stream (whose hash was
  -- evicted alone), so XADD never meets an older id.
  epoch = ARGV[1]
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
  local offset = 0
  if last then offset = tonumber(string.match(last[1], '^%d+')) end
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', offset)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
"#;

const APPEND: &str = r#"
-- ARGV from 7: per event: id, given (1: a publisher's id), JSON.
local answer = {tonumber(epoch)}
local notice = {epoch}
for i = 7, #ARGV, 3 do
  local known = false
  if ARGV[i + 1] == '1' then known = redis.call('ZSCORE', KEYS[3], ARGV[i]) end
  if known then
    table.insert(answer, -tonumber(known))
  else
    local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
    redis.call('XADD', KEYS[2], offset .. '-0', 't', now, 'd', ARGV[i + 2])
    if ARGV[i + 1] == '1' then redis.call('ZADD', KEYS[3], offset, ARGV[i]) end
    table.insert(answer, offset)
    table.insert(notice, offset)
    table.insert(notice, ARGV[i + 2])
  end
end
if #notice > 1 then
  trim()
  redis.call(publish, ARGV[6], table.concat(notice, '\n'))
end
return answer
"#;

const APPEND_STATE: &str = r#"
-- ARGV 7: the event's JSON, 8: the document after it ('' when unchanged).
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], offset .. '-0', 't', now, 'd', ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[4], 'o', offset, 'd', ARGV[8])
end
redis.call('PEXPIRE', KEYS[4], ARGV[4])
trim()
redis.call(publish, ARGV[6], epoch .. '\n' .. offset .. '\n' .. ARGV[7])
return {tonumber(epoch), offset}
"#;

const READ: &str = r#"
-- ARGV 7: 'newest', 'document' (the document and what follows it) or an offset; 8: count.
-- Answers epoch, last offset, the document's offset (0: none) and text, then offset and
-- JSON of each event, oldest first.
local entries
local document = {0, ''}
if ARGV[7] == 'document' then
  local kept = redis.call('HMGET', KEYS[4], 'o', 'd')
  if kept[1] then
    document = {tonumber(kept[1]), kept[2]}
    entries = redis.call('XRANGE', KEYS[2], '(' .. kept[1] .. '-0', '+', 'COUNT', ARGV[8])
  else
    entries = {}
  end
elseif ARGV[7] == 'newest' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[8])
  local reversed = {}
  for i = #entries, 1, -1 do table.insert(reversed, entries[i]) end
  entries = reversed
else
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[7] .. '-0', '+', 'COUNT', ARGV[8])
end
local answer = {tonumber(epoch), tonumber(redis.call('HGET', KEYS[1], 'o')), document[1], document[2]}
for _, entry in ipairs(entries) do
  table.insert(answer, tonumber(string.match(entry[1], '^%d+')))
  table.insert(answer, entry[2][4])
end
return answer
"#;

const RENEW_EPOCH: &str = r#"
-- KEYS: the channel's meta. ARGV: the epoch a node saw go back, a fresh one. The fresh one
-- replaces it unless another node's already did; the epoch after.
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch == ARGV[1] then
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
  return ARGV[2]
end
return epoch
"#;

const LEASE: &str = r#"
-- KEYS: the lease. ARGV: token, ttl ms. 1 when the token still holds the lease, 2 when it
-- takes it (anew: another token may have held it meanwhile), 0 when another token does.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"#;

const WANT: &str = r#"
-- KEYS: a polled topic's wanted parts. ARGV: the node, how long the wish lasts (ms), then
-- each part's name and interval (ms). One field per node and part: each node's wish lasts
-- on its own.
for i = 3, #ARGV, 2 do
  local lasts = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1] .. ' ' .. ARGV[i], lasts .. ' ' .. ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"#;

const WANTED: &str = r#"
-- KEYS: a polled topic's wanted parts. Each part some node still wants, its name then the
-- interval (once per node wanting it); the lapsed wishes leave.
local answer = {}
local parts = redis.call('HGETALL', KEYS[1])
for i = 1, #parts, 2 do
  local lasts, interval = string.match(parts[i + 1], '^(%d+) (%d+)$')
  local part = string.match(parts[i], '^%x+ (.*)$')
  if lasts and part and tonumber(lasts) >= now then
    table.insert(answer, part)
    table.insert(answer, interval)
  else
    redis.call('HDEL', KEYS[1], parts[i])
  end
end
return answer
"#;

const KEEP_JOURNAL: &str = r#"
-- KEYS: the journal. ARGV: owner, reset (1), credential, expiry ms, base number ('' none),
-- base, last entry number ('' none), entries, then index and spec of each new stream.
-- Answers 1, writing nothing, when another node holds the connection now.
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 1 end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'credential', ARGV[3])
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[1], 'spec:' .. ARGV[i], ARGV[i + 1]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'run:' .. ARGV[7], ARGV[8]) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'base', ARGV[5] .. '\n' .. ARGV[6])
  -- Runs that end below the base leave; one that straddles it stays.
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    local last = string.match(field, '^run:(%d+)$')
    if last and tonumber(last) < tonumber(ARGV[5]) then redis.call('HDEL', KEYS[1], field) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
"#;

const LOAD_JOURNAL: &str = r#"
-- KEYS: the journal. ARGV: this node, the credential's digest. When the credential may
-- resume the connection: '1' if this node holds it (else '0'), then the journal's fields
-- and values.
if redis.call('HGET', KEYS[1], 'credential') ~= ARGV[2] then return {} end
local ours = '0'
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then ours = '1' end
local answer = redis.call('HGETALL', KEYS[1])
table.insert(answer, 1, ours)
return answer
"#;

const CLAIM_JOURNAL: &str = r#"
-- KEYS: the journal. ARGV: this node, which holds the connection from now on.
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'owner', ARGV[1]) end
return 0
"#;

const FORGET_JOURNAL: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"#;

const CHANGE_CATALOG: &str = r#"
-- KEYS: the catalog. ARGV: the version the change started from, the new text. The new
-- version, or -1 when another node changed the catalog meanwhile.
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'version', version + 1, 'text', ARGV[2])
redis.call(publish, KEYS[1], version + 1)
return version + 1
"#;

/// The admin catalog shared by the nodes (a hash: `version`, `text`), and the pub/sub
/// channel its changes are announced on.
const CATALOG: &str = "sg:catalog";

/// How long a journal outlives its last write in Redis: the node that holds its connection
/// forgets it sooner (the history TTL after it closed), unless it died.
const JOURNAL_KEEP: Duration = Duration::from_secs(24 * 3600);

/// Redis as the bus of many nodes. See the module's notes.
pub struct RedisBus {
    /// The server, as messages name it (without a password).
    shown: String,
    commands: Commands,
    /// The command that announces: `SPUBLISH` on a cluster (see `link`).
    publish: &'static str,
    append: Script,
    append_state: Script,
    read: Script,
    renew_epoch: Script,
    lease: Script,
    release: Script,
    want: Script,
    wanted: Script,
    keep_journal: Script,
    load_journal: Script,
    claim_journal: Script,
    forget_journal: Script,
    presence_change: Script,
    remove_node: Script,
    beat: Script,
    forget_node: Script,
    change_catalog: Script,
    /// Bumped when another node changed the admin catalog, or the announcement connection
    /// was made again (a change may have been missed).
    catalog_changes: tokio::sync::watch::Sender<u64>,
    /// This node, as the owner of the journals it keeps.
    owner: String,
    /// The questions this node asked other nodes (see `asks`).
    waiting: asks::Waiting,
    /// Where other nodes' questions go.
    questions: mpsc::Sender<Asked>,
    /// Journal writes under way.
    journal_writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The cluster's secret (see `secret`).
    secret: tokio::sync::OnceCell<Vec<u8>>,
    /// The channels this node hears the announcements of, by announcement channel.
    listening: Mutex<HashMap<String, String>>,
    /// Where subscriptions are asked; `None` while the connection is down.
    sink: Mutex<Option<Sink>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisBus({})", self.shown)
    }
}

/// A connected bus, with what it will tell the hub and the catalog.
pub type Connected = (
    std::sync::Arc<RedisBus>,
    mpsc::Receiver<Notice>,
    tokio::sync::watch::Receiver<u64>,
    mpsc::Receiver<Asked>,
);

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

/// What an append did: the channel's epoch, and per event its offset (positive) or the
/// offset of the event already kept under its id (negative).
struct AppendAnswer {
    epoch: u64,
    offsets: Vec<i64>,
}

/// Part of a channel's history as read.
#[derive(Debug, Default)]
pub struct Span {
    pub epoch: u64,
    /// The channel's last offset when read.
    pub head: u64,
    /// A state channel's document and the offset it is at (`Range::Document`).
    pub document: Option<(u64, Vec<u8>)>,
    /// `(offset, JSON)`, oldest first.
    pub events: Vec<(u64, Vec<u8>)>,
}

/// Which part of history `read` answers.
pub enum Range {
    Newest(usize),
    After(u64, usize),
    /// A state channel's document, and up to this many events after it.
    Document(usize),
}

impl RedisBus {
    /// Connects lazily to the Redis of `config` (one server, or a Redis Cluster): the
    /// gateway starts while Redis is down, and is ready once it answers. Announcements
    /// reach the receiver returned, and changes of the admin catalog made on other nodes
    /// (see `catalog`) the watch.
    pub async fn connect(config: &BusConfig) -> Result<Connected, String> {
        let urls: Vec<&str> = config.redis_urls().collect();
        let shown: Vec<String> = urls.iter().map(|url| without_password(url)).collect();
        let shown = shown.join(",");
        let certificates = || -> Result<Option<redis::TlsCertificates>, String> {
            let Some(path) = &config.redis_ca_file else {
                return Ok(None);
            };
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "[bus] redis_ca_file {}: cannot read it: {e}",
                    path.display()
                )
            })?;
            Ok(Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            }))
        };
        let unusable =
            |e: redis::RedisError| format!("[bus] redis_url {shown:?} is not usable: {e}");
        let (commands, listener) = match config.redis_cluster {
            true => {
                let (pushes, heard) = mpsc::unbounded_channel();
                let mut builder = ClusterClientBuilder::new(urls)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes)
                    .connection_timeout(TIMEOUT)
                    // Shorter than the bus's own patience: a connection that stopped
                    // answering fails its command itself, and is given up (see `link`).
                    .response_timeout(TIMEOUT * 3 / 4)
                    .retries(1);
                if let Some(certificates) = certificates()? {
                    builder = builder.certs(certificates);
                }
                let cluster = Cluster::new(builder.build().map_err(unusable)?);
                let listener = Listener::Cluster(cluster.clone(), heard);
                (Commands::Cluster(cluster), listener)
            }
            false => {
                let url = urls.first().copied().unwrap_or_default();
                let client = match certificates()? {
                    Some(certificates) => Client::build_with_tls(url, certificates),
                    None => Client::open(url),
                };
                let client = client.map_err(unusable)?;
                let manager = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(TIMEOUT))
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1);
                let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager)
                    .map_err(|e| format!("redis at {shown}: {e}"))?;
                (
                    Commands::Single(commands),
                    Listener::Single(Box::new(client)),
                )
            }
        };
        let (questions, asked) = mpsc::channel(asks::QUESTIONS);
        let owner = format!("{:016x}", rand::random::<u64>());
        let publish = Sink::publish_command(config.redis_cluster);
        let publishing = format!("local publish = '{publish}'\n");
        let script = |body: &str| Script::new(&format!("{publishing}{CLOCK}{PRELUDE}{body}"));
        let clocked = |body: &str| Script::new(&format!("{CLOCK}{body}"));
        let bus = std::sync::Arc::new(RedisBus {
            shown,
            commands,
            publish,
            append: script(APPEND),
            append_state: script(APPEND_STATE),
            read: script(READ),
            renew_epoch: Script::new(RENEW_EPOCH),
            lease: Script::new(LEASE),
            release: Script::new(RELEASE),
            want: clocked(WANT),
            wanted: clocked(WANTED),
            keep_journal: Script::new(KEEP_JOURNAL),
            load_journal: Script::new(LOAD_JOURNAL),
            claim_journal: Script::new(CLAIM_JOURNAL),
            forget_journal: Script::new(FORGET_JOURNAL),
            presence_change: Script::new(presence::CHANGE),
            remove_node: Script::new(presence::REMOVE_NODE),
            beat: clocked(presence::BEAT),
            forget_node: clocked(presence::FORGET),
            change_catalog: Script::new(&format!("{publishing}{CHANGE_CATALOG}")),
            catalog_changes: tokio::sync::watch::Sender::new(0),
            waiting: asks::Waiting::of(&owner),
            owner,
            questions,
            journal_writes: std::sync::Arc::default(),
            secret: tokio::sync::OnceCell::new(),
            listening: Mutex::default(),
            sink: Mutex::default(),
        });
        let (tx, rx) = mpsc::channel(NOTICES);
        // Watched from before the announcement connection is first made: its making is a
        // change too, which covers a change announced before this node listened.
        let catalog_changes = bus.catalog_changes.subscribe();
        tokio::spawn(listen_loop(std::sync::Arc::clone(&bus), listener, tx));
        Ok((bus, rx, catalog_changes, asked))
    }

    /// Appends `events` to `channel` (drawing `epoch` if it has none), trimming history to
    /// `trim`, and announces them; for the holder of the lease `fence` only, when given.
    async fn append_log(
        &self,
        channel: &str,
        epoch: u64,
        events: &[Appending],
        trim: &Trim,
        fence: Option<&str>,
    ) -> Result<AppendAnswer, String> {
        let keys = self.keys(channel).await?;
        let mut call = self.append.prepare_invoke();
        keys.prelude(&mut call, epoch, trim, fence);
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

    /// Appends a state channel's event (and the document after it, when it changed it) for
    /// the holder of the lease named `lease` with `token`; `(epoch, offset)` of the event. Refused when the
    /// lease is no longer the token's (a fencing token: a node that lost its lease, paused
    /// or cut off, cannot append over the new holder).
    async fn append_state(
        &self,
        channel: &str,
        epoch: u64,
        fence: Option<&Fence>,
        event: &[u8],
        document: Option<&[u8]>,
        trim: &Trim,
    ) -> Result<(u64, u64), String> {
        let mut keys = self.keys(channel).await?;
        // The lease is the source's (a poll's topic), which may feed several channels.
        if let Some(fence) = fence {
            keys.lease = self.keys(&fence.lease).await?.lease;
        }
        let mut call = self.append_state.prepare_invoke();
        keys.prelude(&mut call, epoch, trim, fence.map(|f| f.token.as_str()));
        call.arg(event).arg(document.unwrap_or_default());
        let mut commands = self.commands.clone();
        match self
            .timed(call.invoke_async::<Vec<i64>>(&mut commands))
            .await?[..]
        {
            [epoch, offset] if epoch > 0 && offset > 0 => Ok((epoch as u64, offset as u64)),
            _ => Err(format!("redis at {} answered an append oddly", self.shown)),
        }
    }

    /// Reads part of `channel`'s history (drawing `epoch` if it has none, so positions
    /// handed out before the first append stay valid after it).
    pub async fn read(
        &self,
        channel: &str,
        epoch: u64,
        range: Range,
        trim: &Trim,
    ) -> Result<Span, String> {
        let keys = self.keys(channel).await?;
        let mut call = self.read.prepare_invoke();
        keys.prelude(&mut call, epoch, trim, None);
        match range {
            Range::Newest(count) => call.arg("newest").arg(count),
            Range::After(offset, count) => call.arg(offset).arg(count),
            Range::Document(count) => call.arg("document").arg(count),
        };
        let mut commands = self.commands.clone();
        let answer: Vec<Value> = self.timed(call.invoke_async(&mut commands)).await?;
        span(answer).ok_or_else(|| format!("redis at {} answered a read oddly", self.shown))
    }

    /// Where Redis is, as logs and errors show it (without a password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Gives `channel` the epoch `fresh` in place of `seen`, unless another node did first:
    /// its history went back (a replica that lagged was promoted, or Redis restarted from
    /// an older snapshot), and the offsets after its head, which name events clients saw,
    /// would be given to other events.
    pub async fn renew_epoch(&self, channel: &str, seen: u64, fresh: u64) -> Result<(), String> {
        let keys = self.keys(channel).await?;
        let mut call = self.renew_epoch.prepare_invoke();
        call.key(&keys.meta).arg(seen).arg(fresh);
        let mut commands = self.commands.clone();
        self.timed(call.invoke_async::<Option<String>>(&mut commands))
            .await?;
        Ok(())
    }

    /// Takes, or keeps, the lease named `key` for `token` for `ttl`. Nodes with the same
    /// source contend for its lease; one feeds the channel.
    pub async fn lease(&self, key: &str, token: &str, ttl: Duration) -> Result<Claim, String> {
        let keys = self.keys(key).await?;
        let mut call = self.lease.prepare_invoke();
        call.key(&keys.lease).arg(token).arg(ttl.as_millis() as u64);
        let mut commands = self.commands.clone();
        Ok(
            match self.timed(call.invoke_async::<i64>(&mut commands)).await? {
                1 => Claim::Kept,
                2 => Claim::Taken,
                _ => Claim::Refused,
            },
        )
    }

    /// Tells the holder of the lease `key` (a polled topic's) that this node's clients want
    /// `parts` (pointer, '' for the whole document; interval ms) for `ttl` from now.
    pub async fn want(
        &self,
        key: &str,
        parts: &[(String, u64)],
        ttl: Duration,
    ) -> Result<(), String> {
        let keys = self.keys(key).await?;
        let mut call = self.want.prepare_invoke();
        call.key(&keys.wanted)
            .arg(&self.owner)
            .arg(ttl.as_millis() as u64);
        for (pointer, interval) in parts {
            call.arg(pointer).arg(interval);
        }
        let mut commands = self.commands.clone();
        self.timed(call.invoke_async::<i64>(&mut commands)).await?;
        Ok(())
    }

    /// The parts of the polled topic whose lease is `key` that some node's clients want
    /// now: pointer ('' for the whole document) and interval (ms), once per node wanting
    /// it.
    pub async fn wanted(&self, key: &str) -> Result<Vec<(String, u64)>, String> {
        let keys = self.keys(key).await?;
        let mut call = self.wanted.prepare_invoke();
        call.key(&keys.wanted);
        let mut commands = self.commands.clone();
        let answer: Vec<String> = self.timed(call.invoke_async(&mut commands)).await?;
        Ok(answer
            .chunks_exact(2)
            .filter_map(|pair| Some((pair[0].clone(), pair[1].parse().ok()?)))
            .collect())
    }

    /// Gives the lease `key` back, if `token` still holds it (in the background).
    pub fn release(self: &std::sync::Arc<Self>, key: &str, token: &str) {
        let (bus, key, token) = (
            std::sync::Arc::clone(self),
            key.to_owned(),
            token.to_owned(),
        );
        tokio::spawn(async move {
            let keys = bus.keys(&key).await?;
            let mut call = bus.release.prepare_invoke();
            call.key(&keys.lease).arg(&token);
            let mut commands = bus.commands.clone();
            bus.timed(call.invoke_async::<i64>(&mut commands)).await
        });
    }

    /// Hears `channel`'s announcements from now on (once the answer is in).
    pub async fn listen(&self, channel: &str) -> Result<(), String> {
        let notify = self.keys(channel).await?.notify;
        let sink = self.sink.lock().unwrap().clone();
        self.listening
            .lock()
            .unwrap()
            .insert(notify.clone(), channel.to_owned());
        let subscribed = match sink {
            Some(mut sink) => self.timed(sink.subscribe(&notify)).await,
            None => Err(format!("redis at {} is not reachable", self.shown)),
        };
        if subscribed.is_err() {
            self.listening.lock().unwrap().remove(&notify);
        }
        subscribed
    }

    /// Whether this node hears the announcement channel `name`.
    fn hears(&self, name: &str) -> bool {
        name == CATALOG || name == self.inbox() || self.listening.lock().unwrap().contains_key(name)
    }

    /// Stops hearing `channel`'s announcements (in the background).
    pub fn unlisten(self: &std::sync::Arc<Self>, channel: &str) {
        let mut listening = self.listening.lock().unwrap();
        let Some(notify) = listening
            .iter()
            .find_map(|(notify, name)| (name == channel).then(|| notify.clone()))
        else {
            return;
        };
        listening.remove(&notify);
        drop(listening);
        let Some(mut sink) = self.sink.lock().unwrap().clone() else {
            return;
        };
        let bus = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let _ = sink.unsubscribe(&notify).await;
            // Listened to again meanwhile: Redis does not count subscriptions, so the
            // late unsubscribe undid the new one.
            if bus.listening.lock().unwrap().contains_key(&notify) {
                let _ = sink.subscribe(&notify).await;
            }
        });
    }

    /// The cluster's secret, made by the first node that asks: it keys the digests that
    /// name the channels of polls here, and the hub's (`Hub::secret`), which must name the
    /// same channel on every node.
    pub async fn secret(&self) -> Result<&[u8], String> {
        let secret = self
            .secret
            .get_or_try_init(|| async {
                let mut commands = self.commands.clone();
                let fresh = hex(&crate::bus::new_secret());
                let mut set = redis::cmd("SET");
                set.arg("sg:secret").arg(&fresh).arg("NX").arg("GET");
                let kept: Option<String> = self.timed(set.query_async(&mut commands)).await?;
                Ok::<_, String>(kept.unwrap_or(fresh).into_bytes())
            })
            .await?;
        Ok(secret)
    }

    /// The keys of `channel`: named by the channel itself, or, for the gateway's own
    /// channels (`[`...: polls and relays, whose names hold forwarded headers), by a digest
    /// keyed with the cluster's secret.
    async fn keys(&self, channel: &str) -> Result<Keys, String> {
        // A name with a brace would cut the hash tag short, and spread the channel's keys
        // over a cluster's slots: such a name goes by its digest, as the gateway's own do.
        if !channel.starts_with('[') && !channel.contains(['{', '}']) {
            return Ok(Keys::of(channel, None));
        }
        let secret = self.secret().await?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let digest = |text: &str| {
            let tag = aws_lc_rs::hmac::sign(&key, text.as_bytes());
            format!("#{}", hex(tag.as_ref()))
        };
        // A polled topic's selected part lives in its topic's slot, with the lease its
        // append script checks (a script's keys must share one slot on a cluster).
        match channel.split_once(PART) {
            Some((topic, _)) => Ok(Keys::of(&digest(topic), Some(&digest(channel)))),
            None => Ok(Keys::of(&digest(channel), None)),
        }
    }

    /// The admin catalog as the nodes share it: its version and text (`None`: no node has
    /// changed it yet).
    pub async fn catalog(&self) -> Result<Option<(u64, String)>, String> {
        let mut commands = self.commands.clone();
        let mut get = redis::cmd("HMGET");
        get.arg(CATALOG).arg("version").arg("text");
        let (version, text): (Option<u64>, Option<String>) =
            self.timed(get.query_async(&mut commands)).await?;
        Ok(version.zip(text))
    }

    /// Replaces the catalog with `text` if it is still at `version`: the new version, or
    /// `None` when another node changed it first. The other nodes are told.
    pub async fn change_catalog(&self, version: u64, text: &str) -> Result<Option<u64>, String> {
        let mut call = self.change_catalog.prepare_invoke();
        call.key(CATALOG).arg(version).arg(text);
        let mut commands = self.commands.clone();
        let answer: i64 = self.timed(call.invoke_async(&mut commands)).await?;
        Ok(u64::try_from(answer).ok())
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

impl Bus for std::sync::Arc<RedisBus> {
    /// Redis gives the positions; answered once it holds the events, which it announces
    /// to every node listening.
    fn append(&self, append: Append) -> Placing<'_> {
        Box::pin(async move {
            let (channel, trim) = (append.channel.as_str(), &append.limits);
            let fence = append.fence.as_ref();
            if append.state {
                let [event] = &append.events[..] else {
                    return Err("a state channel takes one event at a time".to_owned());
                };
                let document = append.document.as_deref();
                let (epoch, offset) = self
                    .append_state(channel, fresh_epoch(), fence, &event.json, document, trim)
                    .await?;
                return Ok(vec![Some(position(epoch, offset))]);
            }
            let token = fence.map(|f| f.token.as_str());
            let answer = self
                .append_log(channel, fresh_epoch(), &append.events, trim, token)
                .await?;
            let placed = answer
                .offsets
                .iter()
                .map(|&offset| (offset > 0).then(|| position(answer.epoch, offset.unsigned_abs())));
            Ok(placed.collect())
        })
    }

    /// The script trims as it appends.
    fn trim(&self, _channel: &str, _through: u64) {}

    /// History stays for the other nodes; this one no longer hears of it.
    fn drop_channel(&self, channel: &str) {
        self.unlisten(channel);
    }

    fn keeps(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("redis at {}", self.shown)
    }
}

impl crate::bus::Journals for std::sync::Arc<RedisBus> {
    fn keep_journal(&self, write: JournalWrite) {
        let bus = std::sync::Arc::clone(self);
        let pending = Pending::start(&bus.journal_writes);
        tokio::spawn(async move {
            let _pending = pending;
            let mut call = bus.keep_journal.prepare_invoke();
            call.key(journal_key(&write.connection))
                .arg(&bus.owner)
                .arg(if write.reset { "1" } else { "0" })
                .arg(&write.credential[..])
                .arg(JOURNAL_KEEP.as_millis() as u64);
            match &write.base {
                Some((number, state)) => call.arg(number).arg(&state[..]),
                None => call.arg("").arg(""),
            };
            match &write.entries {
                Some((last, packed)) => call.arg(last).arg(&packed[..]),
                None => call.arg("").arg(""),
            };
            for (index, spec) in &write.specs {
                call.arg(index).arg(&spec[..]);
            }
            let mut commands = bus.commands.clone();
            match bus.timed(call.invoke_async::<i64>(&mut commands)).await {
                Ok(1) => write.writing.moved(),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("a journal was not kept: {e}");
                    // The journal's next write is whole (see `Keeping`).
                    write.writing.lost();
                }
            }
        });
    }

    fn forget_journal(&self, connection: &str) {
        let bus = std::sync::Arc::clone(self);
        let key = journal_key(connection);
        tokio::spawn(async move {
            let mut call = bus.forget_journal.prepare_invoke();
            call.key(key).arg(&bus.owner);
            let mut commands = bus.commands.clone();
            bus.timed(call.invoke_async::<i64>(&mut commands)).await
        });
    }

    /// Waits for the journal writes under way, at most `TIMEOUT`.
    fn flush(&self) -> Kept<'_> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            while self
                .journal_writes
                .load(std::sync::atomic::Ordering::Acquire)
                > 0
            {
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("redis at {} did not answer in time", self.shown));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        })
    }

    fn claim_journal(&self, connection: &str) -> Kept<'_> {
        let mut call = self.claim_journal.prepare_invoke();
        call.key(journal_key(connection)).arg(&self.owner);
        Box::pin(async move {
            let mut commands = self.commands.clone();
            self.timed(call.invoke_async::<i64>(&mut commands)).await?;
            Ok(())
        })
    }

    fn ask_holder(&self, connection: &str, credential: &[u8], change: Vec<u8>) -> Answered<'_> {
        let (connection, credential) = (connection.to_owned(), credential.to_owned());
        Box::pin(async move { self.ask(&connection, &credential, &change).await })
    }

    fn load_journal(&self, connection: &str, credential: &[u8]) -> Loaded<'_> {
        let mut call = self.load_journal.prepare_invoke();
        call.key(journal_key(connection))
            .arg(&self.owner)
            .arg(credential);
        let connection = connection.to_owned();
        Box::pin(async move {
            let mut commands = self.commands.clone();
            let answer: Vec<Vec<u8>> = self.timed(call.invoke_async(&mut commands)).await?;
            let mut answer = answer.into_iter();
            let Some(ours) = answer.next() else {
                return Ok(None);
            };
            let mut fields = Vec::new();
            while let (Some(field), Some(value)) = (answer.next(), answer.next()) {
                fields.push((field, value));
            }
            Ok(kept_journal(connection, fields).map(|journal| Handed {
                journal,
                ours: ours == b"1",
            }))
        })
    }
}

/// A journal write under way, counted until it ends (see `flush`).
struct Pending(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Pending {
    fn start(count: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Pending {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Pending(std::sync::Arc::clone(count))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `bytes` in lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A connection's journal's key (its id in braces: one shard).
fn journal_key(connection: &str) -> String {
    format!("sg:c:{{{connection}}}")
}

/// A journal read back from its hash; `None` when there is none (or it has no credential).
fn kept_journal(connection: String, fields: Vec<(Vec<u8>, Vec<u8>)>) -> Option<KeptJournal> {
    let mut kept = KeptJournal {
        connection,
        ..KeptJournal::default()
    };
    let mut credential = None;
    for (field, value) in fields {
        let number = |prefix: &[u8]| {
            let digits = field.strip_prefix(prefix)?;
            std::str::from_utf8(digits).ok()?.parse::<u64>().ok()
        };
        if field == b"credential" {
            credential = Some(value);
        } else if field == b"base" {
            let split = value.iter().position(|&b| b == b'\n')?;
            let first = std::str::from_utf8(&value[..split]).ok()?.parse().ok()?;
            kept.base = Some((first, value[split + 1..].to_vec()));
        } else if let Some(index) = number(b"spec:") {
            kept.specs.push((u32::try_from(index).ok()?, value));
        } else if let Some(last) = number(b"run:") {
            kept.entries.push((last, value));
        }
    }
    kept.credential = credential?;
    kept.specs.sort_by_key(|(index, _)| *index);
    kept.entries.sort_by_key(|(last, _)| *last);
    Some(kept)
}

/// Keeps one announcement connection up: (re)connects, subscribes to every channel listened
/// to, forwards announcements, and probes the connection.
async fn listen_loop(
    bus: std::sync::Arc<RedisBus>,
    mut listener: Listener,
    notices: mpsc::Sender<Notice>,
) {
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        match connect_listener(&bus, &mut listener).await {
            Ok((sink, hearing)) => {
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        "redis at {} is reachable again after {:.1} s",
                        bus.shown,
                        since.elapsed().as_secs_f64()
                    );
                }
                *bus.sink.lock().unwrap() = Some(sink.clone());
                // A change of the catalog may have been missed while disconnected.
                bus.catalog_changes.send_modify(|n| *n += 1);
                if notices.send(Notice::Reconnected).await.is_err() {
                    return;
                }
                let why = forward(&bus, sink, hearing, &notices).await;
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

async fn connect_listener<'a>(
    bus: &RedisBus,
    listener: &'a mut Listener,
) -> Result<(Sink, Hearing<'a>), String> {
    let (mut sink, hearing) = bus.timed(listener.connect()).await?;
    bus.timed(sink.subscribe(CATALOG)).await?;
    bus.timed(sink.subscribe(bus.inbox())).await?;
    let notify: Vec<String> = bus.listening.lock().unwrap().keys().cloned().collect();
    // Each command in its own time: thousands of channels take a while on a cluster.
    for batch in notify.chunks(sink.batch()) {
        bus.timed(sink.subscribe_batch(batch)).await?;
    }
    Ok((sink, hearing))
}

/// Forwards announcements until the connection fails a probe or ends (`Some(why)`), or the
/// hub is gone (`None`).
async fn forward(
    bus: &RedisBus,
    mut sink: Sink,
    mut hearing: Hearing<'_>,
    notices: &mpsc::Sender<Notice>,
) -> Option<String> {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    loop {
        tokio::select! {
            heard = hearing.next() => {
                let (name, payload) = match heard {
                    None => return Some("the announcement connection closed".to_owned()),
                    Some(Heard::Lost) => {
                        return Some("a connection to a cluster node was lost".to_owned());
                    }
                    // Not one this node let go of (`unlisten`): subscribed again on the
                    // shard that holds it now, and what it missed read back.
                    Some(Heard::Ended(name)) if bus.hears(&name) => {
                        return Some(format!("the cluster moved {name:?} to another shard"));
                    }
                    Some(Heard::Ended(_)) => continue,
                    Some(Heard::Message(name, payload)) => (name, payload),
                };
                if name == CATALOG {
                    bus.catalog_changes.send_modify(|n| *n += 1);
                    continue;
                }
                if name == bus.inbox() {
                    bus.heard(&payload, &bus.questions);
                    continue;
                }
                // A channel no longer listened to (an announcement on its way meanwhile).
                let heard = bus.listening.lock().unwrap().get(&name).cloned();
                let Some(channel) = heard else {
                    continue;
                };
                let Some(notice) = notice(channel, &payload) else {
                    tracing::warn!(
                        "redis at {}: an announcement on {name:?} is not readable; ignored",
                        bus.shown,
                    );
                    continue;
                };
                match notices.try_send(notice) {
                    Ok(()) => {}
                    // The hub is behind: what is dropped here it reads back from Redis.
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if notices.send(Notice::Reconnected).await.is_err() {
                            return None;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return None,
                }
            }
            _ = probe.tick() => {
                match tokio::time::timeout(TIMEOUT, sink.probe()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Some(format!("the announcement connection failed: {e}")),
                    Err(_) => return Some("the announcement connection did not answer a probe".to_owned()),
                }
            }
        }
    }
}

/// An announcement: the epoch, then offset and JSON of each event, one per line (the JSON
/// is compact: it has no line break of its own).
fn notice(channel: String, payload: &[u8]) -> Option<Notice> {
    let mut lines = payload.split(|&b| b == b'\n');
    let epoch = number(lines.next()?)?;
    let mut events = Vec::new();
    while let Some(offset) = lines.next() {
        events.push((number(offset)?, lines.next()?.to_vec()));
    }
    Some(Notice::Appended {
        channel,
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
    let document = match (next_number(&mut values)?, values.next()?) {
        (0, _) => None,
        (offset, Value::BulkString(text)) => Some((offset, text)),
        _ => return None,
    };
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
        document,
        events,
    })
}

/// A channel's keys.
struct Keys {
    meta: String,
    stream: String,
    ids: String,
    document: String,
    lease: String,
    /// A polled topic's parts wanted by the nodes that do not poll it (see `want`).
    wanted: String,
    notify: String,
    /// The channel's members (see `presence`).
    members: String,
}

/// What separates a polled topic's key from its selected part in a channel's name (see
/// `sources::topic`).
const PART: &str = "\nselect ";

impl Keys {
    /// The keys of the channel named `tag`, or of `part` of it (a polled topic's selected
    /// part: the tag is the topic's, so the keys share its slot).
    fn of(tag: &str, part: Option<&str>) -> Keys {
        let key = |kind: &str| match part {
            Some(part) => format!("sg:{{{tag}}}{part}:{kind}"),
            None => format!("sg:{{{tag}}}:{kind}"),
        };
        Keys {
            meta: key("m"),
            stream: key("s"),
            ids: key("i"),
            document: key("d"),
            lease: key("l"),
            wanted: key("w"),
            notify: key("n"),
            members: key("p"),
        }
    }

    /// The keys and arguments every append script begins with (see `PRELUDE`).
    fn prelude(
        &self,
        call: &mut redis::ScriptInvocation<'_>,
        epoch: u64,
        trim: &Trim,
        fence: Option<&str>,
    ) {
        // Redis refuses expiry times past its range: ten years is as good as forever.
        let ttl_ms = trim.ttl_ms.clamp(1, 10 * 365 * 24 * 3600 * 1000);
        call.key(&self.meta)
            .key(&self.stream)
            .key(&self.ids)
            .key(&self.document)
            .key(&self.lease);
        call.arg(epoch)
            .arg(trim.size)
            .arg(ttl_ms)
            .arg(EPOCH_KEEP_MS.max(ttl_ms))
            .arg(fence.unwrap_or_default())
            .arg(&self.notify);
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
        }) = notice("a}b".into(), b"77\n5\n{\"x\":1}\n6\n{}")
        else {
            panic!("not read");
        };
        assert_eq!((channel.as_str(), epoch), ("a}b", 77));
        assert_eq!(
            events,
            vec![(5, b"{\"x\":1}".to_vec()), (6, b"{}".to_vec())]
        );
        assert!(notice("a".into(), b"77\n5").is_none());
        assert!(notice("a".into(), b"x").is_none());
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
