//! Presence shared by the nodes: who is on a channel, whichever node they entered through.
//!
//! - `sg:{name}:p`, a hash per channel: one field per member (its client id, a newline, its
//!   connection id or nothing), the value the node it entered through, a newline, and the
//!   presence message that entered or last updated it (JSON).
//! - `sg:nodes`, a sorted set: each node by when it was last heard (Redis's clock, ms). A
//!   node beats every third of `[bus] node_timeout_ms`.
//! - `sg:node:{id}:c`, a set per node: the channels it has members on, so that the members
//!   of a node not heard for the timeout can be found and removed, by whichever node sees it
//!   first (a removal is atomic: each member leaves once).
//! - `sg:node:{id}:r`: set after a node removed some of `id`'s members. A node that was
//!   taken for dead but lives (it beat again meanwhile) finds it and enters its members
//!   again: the mark comes after each removal, so no removal goes unnoticed.

use super::RedisBus;

/// The nodes, by when each was last heard.
const NODES: &str = "sg:nodes";

pub(super) const CHANGE: &str = r#"
-- KEYS: a channel's members. ARGV: the member, its entry ('' for none: it leaves). The
-- entry it had (false: none).
local before = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return before
"#;

pub(super) const REMOVE_NODE: &str = r#"
-- KEYS: a channel's members. ARGV: a node. Its members leave; their entries.
local gone = {}
local prefix = ARGV[1] .. '\n'
local members = redis.call('HGETALL', KEYS[1])
for i = 1, #members, 2 do
  if string.sub(members[i + 1], 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], members[i])
    table.insert(gone, members[i + 1])
  end
end
return gone
"#;

/// After `CLOCK`.
pub(super) const BEAT: &str = r#"
-- KEYS: the nodes. ARGV: this node, the timeout (ms). 1 when this node was not in the set
-- (first beat, or taken for dead meanwhile), else 0; then the nodes not heard for the
-- timeout.
local new = redis.call('ZADD', KEYS[1], now, ARGV[1])
local answer = {tostring(new)}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  table.insert(answer, node)
end
return answer
"#;

/// After `CLOCK`.
pub(super) const FORGET: &str = r#"
-- KEYS: the nodes. ARGV: a node, the timeout (ms). Forgets the node if it is still not
-- heard (it may have beaten again meanwhile): 1, else 0.
local heard = redis.call('ZSCORE', KEYS[1], ARGV[1])
if heard and tonumber(heard) <= now - tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;

/// What a beat found.
pub struct Beat {
    /// This node was not among the living (its first beat, or others took it for dead and
    /// removed its members).
    pub absent: bool,
    /// Nodes not heard for the timeout.
    pub dead: Vec<String>,
}

impl RedisBus {
    /// This node's id, as entries name it.
    pub fn node(&self) -> &str {
        &self.owner
    }

    /// Sets `member`'s entry on `channel` (`None`: it leaves); the entry it had.
    pub async fn presence_change(
        &self,
        channel: &str,
        member: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, String> {
        let keys = self.keys(channel).await?;
        let mut call = self.presence_change.prepare_invoke();
        call.key(&keys.members)
            .arg(member)
            .arg(entry.unwrap_or_default());
        let mut commands = self.commands.clone();
        self.timed(call.invoke_async(&mut commands)).await
    }

    /// Every member's entry on `channel`.
    pub async fn presence_members(&self, channel: &str) -> Result<Vec<String>, String> {
        let keys = self.keys(channel).await?;
        let mut commands = self.commands.clone();
        let mut call = redis::cmd("HVALS");
        call.arg(&keys.members);
        self.timed(call.query_async(&mut commands)).await
    }

    /// Records (or forgets) that this node has members on `channel`.
    pub async fn presence_here(&self, channel: &str, here: bool) -> Result<(), String> {
        let index = index_of(&self.owner);
        let mut call = redis::cmd(if here { "SADD" } else { "SREM" });
        call.arg(&index).arg(channel);
        let mut commands = self.commands.clone();
        self.timed(call.query_async::<i64>(&mut commands)).await?;
        Ok(())
    }

    /// Says this node lives; who else does not (not heard for `timeout_ms`).
    pub async fn beat(&self, timeout_ms: u64) -> Result<Beat, String> {
        let mut call = self.beat.prepare_invoke();
        call.key(NODES).arg(&self.owner).arg(timeout_ms);
        let mut commands = self.commands.clone();
        let answer: Vec<String> = self.timed(call.invoke_async(&mut commands)).await?;
        let mut answer = answer.into_iter();
        Ok(Beat {
            absent: answer.next().as_deref() == Some("1"),
            dead: answer.collect(),
        })
    }

    /// The channels the living nodes have members on.
    pub async fn present_channels(&self) -> Result<Vec<String>, String> {
        let mut commands = self.commands.clone();
        let mut nodes = redis::cmd("ZRANGE");
        nodes.arg(NODES).arg(0).arg(-1);
        let nodes: Vec<String> = self.timed(nodes.query_async(&mut commands)).await?;
        let mut channels = Vec::new();
        for node in nodes {
            channels.extend(self.channels_of(&node).await?);
        }
        Ok(channels)
    }

    /// The channels dead `node` had members on.
    pub async fn channels_of(&self, node: &str) -> Result<Vec<String>, String> {
        let mut call = redis::cmd("SMEMBERS");
        call.arg(index_of(node));
        let mut commands = self.commands.clone();
        self.timed(call.query_async(&mut commands)).await
    }

    /// Removes dead `node`'s members of `channel`; their entries (each is removed once,
    /// whoever else removes them too).
    pub async fn remove_members_of(
        &self,
        node: &str,
        channel: &str,
    ) -> Result<Vec<String>, String> {
        let keys = self.keys(channel).await?;
        let mut call = self.remove_node.prepare_invoke();
        call.key(&keys.members).arg(node);
        let mut commands = self.commands.clone();
        self.timed(call.invoke_async(&mut commands)).await
    }

    /// Tells `node` that some of its members were removed (it was taken for dead): it
    /// enters them again if it lives.
    pub async fn mark_removed(&self, node: &str) -> Result<(), String> {
        let mut mark = redis::cmd("SET");
        mark.arg(removed_of(node))
            .arg(1)
            .arg("PX")
            .arg(24 * 3600 * 1000);
        let mut commands = self.commands.clone();
        self.timed(mark.query_async::<()>(&mut commands)).await
    }

    /// Whether another node removed some of this node's members since it last asked.
    pub async fn take_removed(&self) -> Result<bool, String> {
        let mut take = redis::cmd("GETDEL");
        take.arg(removed_of(&self.owner));
        let mut commands = self.commands.clone();
        let mark: Option<String> = self.timed(take.query_async(&mut commands)).await?;
        Ok(mark.is_some())
    }

    /// Forgets dead `node` once its members are removed, unless it was heard again
    /// meanwhile (not heard for `timeout_ms`); whether it was.
    pub async fn forget_node(&self, node: &str, timeout_ms: u64) -> Result<bool, String> {
        let mut commands = self.commands.clone();
        let mut forget = self.forget_node.prepare_invoke();
        forget.key(NODES).arg(node).arg(timeout_ms);
        let forgotten: i64 = self.timed(forget.invoke_async(&mut commands)).await?;
        if forgotten == 1 {
            let mut index = redis::cmd("DEL");
            index.arg(index_of(node));
            self.timed(index.query_async::<i64>(&mut commands)).await?;
        }
        Ok(forgotten == 1)
    }
}

/// The mark that another node removed some of `node`'s members.
fn removed_of(node: &str) -> String {
    format!("sg:node:{{{node}}}:r")
}

/// The set of the channels `node` has members on.
fn index_of(node: &str) -> String {
    format!("sg:node:{{{node}}}:c")
}
