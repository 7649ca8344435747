//! The presence registry: every node's presences in Redis, node heartbeats, and this node's view of the others.
//!
//! Redis holds, per topic, a hash of every node's metas (`parley:presence:<topic>`, field `<node>|<phx_ref>`), per
//! node the set of topics it has metas in, and a sorted set of nodes scored by when their heartbeat expires. This
//! node writes its own changes there and announces them on the bus; other nodes apply the announcements to their
//! tracker. A topic's remote members are loaded from its hash before the first join of it here ([`Registry::sync`]),
//! so a joiner's `presence_state` covers every node.
//!
//! Failures heal by themselves: a node that misses its heartbeat for [`HEARTBEAT_TTL`] is reaped by whichever node runs
//! the heartbeat script next, and every node drops that node's members from its view (a node killed with `kill -9`
//! leaves everywhere within TTL + one heartbeat interval); a stopped node removes its own at once and says so on the
//! bus. After a Redis restart (an empty registry) every node writes its presences back and announces them again, and
//! a little later re-reads the topics it shows, so changes missed while Redis was away are corrected.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use futures::future::BoxFuture;
use protocol::presence::Meta;
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bus::{Envelope, Publisher};
use crate::{
    node::NodeId,
    presence::{LocalChange, Replica, Tracker},
};

/// How long a node counts as alive after its last heartbeat.
pub(crate) const HEARTBEAT_TTL: Duration = Duration::from_secs(15);
/// How often every node heartbeats (and reaps the expired).
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Longest a join waits for the registry before it goes ahead with what this node knows.
const SYNC_TIMEOUT: Duration = Duration::from_secs(1);
/// Local changes waiting to be written; beyond this the node rewrites everything at its next heartbeat.
const QUEUE: usize = 65_536;
/// Most changes written in one pipeline.
const BATCH: usize = 1024;

const NODES_KEY: &str = "parley:nodes";
const TOPIC_PREFIX: &str = "parley:presence:";
const NODE_PREFIX: &str = "parley:node:";

fn topic_key(topic: &str) -> String {
    format!("{TOPIC_PREFIX}{topic}")
}

fn topics_key(node: &str) -> String {
    format!("{NODE_PREFIX}{node}:topics")
}

fn field(node: &str, phx_ref: &str) -> String {
    format!("{node}|{phx_ref}")
}

/// Removes every meta of one node from the topics it listed, then the node itself. KEYS: nodes set. ARGV: node,
/// node key prefix, topic key prefix.
const REMOVE_NODE: &str = r"
local function remove(node)
  local topics = ARGV[2] .. node .. ':topics'
  local prefix = node .. '|'
  for _, topic in ipairs(redis.call('SMEMBERS', topics)) do
    local hash = ARGV[3] .. topic
    for _, f in ipairs(redis.call('HKEYS', hash)) do
      if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', hash, f) end
    end
  end
  redis.call('DEL', topics)
  redis.call('ZREM', KEYS[1], node)
end
";

/// Heartbeats ARGV[1] for ARGV[4] ms, reaps every expired node, returns the nodes alive.
fn heartbeat_script() -> Script {
    Script::new(&format!(
        "{REMOVE_NODE}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do remove(node) end
return redis.call('ZRANGE', KEYS[1], 0, -1)"
    ))
}

/// Removes node ARGV[1] now (a graceful stop).
fn leave_script() -> Script {
    Script::new(&format!("{REMOVE_NODE}\nremove(ARGV[1])\nreturn 1"))
}

/// Metas that left: (key, phx_ref).
type Leaves = Vec<(String, String)>;
/// Metas that joined: (key, meta with its phx_ref).
type Joins = Vec<(String, Meta)>;

/// A meta as the registry stores it.
#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    meta: Meta,
}

/// Another node's members of one topic, as this node shows them.
#[derive(Default)]
struct RemoteTopic {
    /// phx_ref → (node, key).
    members: HashMap<String, (String, String)>,
    /// The registry was read (joins announced since are applied either way).
    synced: bool,
    /// Refs that left while a read was under way: the read must not bring them back.
    left_while_syncing: HashSet<String>,
}

#[derive(Default)]
struct View {
    /// This node's own metas (topic → phx_ref → entry), to write back after Redis lost them.
    local: HashMap<Arc<str>, HashMap<String, Entry>>,
    remote: HashMap<Arc<str>, RemoteTopic>,
}

/// This node's side of the registry; the tracker's [`Replica`].
pub(crate) struct Registry {
    node: NodeId,
    redis: ConnectionManager,
    bus: Publisher,
    queue: mpsc::Sender<(Arc<str>, LocalChange)>,
    view: Mutex<View>,
    tracker: OnceLock<Arc<Tracker>>,
    /// A write failed or the queue overflowed: write everything back at the next heartbeat.
    dirty: std::sync::atomic::AtomicBool,
    heartbeat: Script,
    leave: Script,
}

impl Registry {
    /// A registry for `node`; [`Registry::attach`] connects it to the tracker and starts its writer.
    pub(crate) fn new(node: NodeId, redis: ConnectionManager, bus: Publisher) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let registry = Arc::new(Self {
            node,
            redis,
            bus,
            queue,
            view: Mutex::new(View::default()),
            tracker: OnceLock::new(),
            dirty: false.into(),
            heartbeat: heartbeat_script(),
            leave: leave_script(),
        });
        tokio::spawn(write_changes(registry.clone(), receiver));
        registry
    }

    /// Replicates `tracker`'s changes and applies other nodes' to it.
    pub(crate) fn attach(self: &Arc<Self>, tracker: Arc<Tracker>) {
        let _ = self.tracker.set(tracker.clone());
        tracker.replicate_through(self.clone());
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply(&self, topic: &Arc<str>, joins: Vec<(String, Meta)>, leaves: Vec<(String, String)>) {
        if joins.is_empty() && leaves.is_empty() {
            return;
        }
        if let Some(tracker) = self.tracker.get() {
            tracker.apply_remote(topic, joins, leaves);
        }
    }

    /// Changes another node announced.
    pub(crate) fn remote_change(
        &self,
        node: &str,
        topic: &str,
        joins: Vec<(String, Meta)>,
        leaves: Vec<(String, String)>,
    ) {
        let (topic, joins, leaves) = {
            let mut view = self.view();
            let Some(topic) = view.remote.get_key_value(topic).map(|(topic, _)| topic.clone()) else {
                return;
            };
            let Some(remote) = view.remote.get_mut(&topic) else {
                return;
            };
            let mut gone = Vec::new();
            for (key, phx_ref) in leaves {
                if !remote.synced {
                    remote.left_while_syncing.insert(phx_ref.clone());
                }
                if remote.members.remove(&phx_ref).is_some() {
                    gone.push((key, phx_ref));
                }
            }
            let mut came = Vec::new();
            for (key, meta) in joins {
                let Some(phx_ref) = meta.phx_ref().map(str::to_owned) else { continue };
                if remote.members.insert(phx_ref, (node.to_owned(), key.clone())).is_none() {
                    came.push((key, meta));
                }
            }
            (topic, came, gone)
        };
        self.apply(&topic, joins, leaves);
    }

    /// Forgets every member of `dead` (it stopped, or its heartbeat expired).
    pub(crate) fn node_down(&self, dead: &str) {
        self.drop_members(|node| node == dead);
    }

    /// Drops the members of every node `gone` says is gone.
    fn drop_members(&self, gone: impl Fn(&str) -> bool) {
        let leaves: Vec<(Arc<str>, Leaves)> = {
            let mut view = self.view();
            view.remote
                .iter_mut()
                .filter_map(|(topic, remote)| {
                    let refs: Vec<String> = remote
                        .members
                        .iter()
                        .filter(|(_, (node, _))| gone(node))
                        .map(|(phx_ref, _)| phx_ref.clone())
                        .collect();
                    let leaves: Vec<(String, String)> = refs
                        .into_iter()
                        .filter_map(|phx_ref| remote.members.remove(&phx_ref).map(|(_, key)| (key, phx_ref)))
                        .collect();
                    (!leaves.is_empty()).then(|| (topic.clone(), leaves))
                })
                .collect()
        };
        for (topic, leaves) in leaves {
            tracing::debug!(%topic, count = leaves.len(), "members of a departed node leave");
            self.apply(&topic, Vec::new(), leaves);
        }
    }

    /// Reads the registry's entries of `topic` from other nodes: (node, key, meta).
    async fn read_topic(&self, topic: &str) -> Option<Vec<(String, String, Meta)>> {
        let mut redis = self.redis.clone();
        let read = redis.hgetall::<_, HashMap<String, Vec<u8>>>(topic_key(topic));
        let entries = match tokio::time::timeout(SYNC_TIMEOUT, read).await {
            Ok(Ok(entries)) => entries,
            Ok(Err(error)) => {
                tracing::debug!(%error, topic, "presence registry not readable");
                return None;
            }
            Err(_) => return None,
        };
        Some(
            entries
                .into_iter()
                .filter_map(|(field, value)| {
                    let (node, _) = field.split_once('|')?;
                    if node == self.node.as_str() {
                        return None;
                    }
                    let entry: Entry = serde_json::from_slice(&value).ok()?;
                    Some((node.to_owned(), entry.key, entry.meta))
                })
                .collect(),
        )
    }

    /// Loads `topic` from the registry (once), adding members this node does not show yet; with `prune`, also
    /// removes members of live nodes that the registry no longer lists (a leave missed while Redis was away).
    async fn load(&self, topic: &Arc<str>, prune: bool) {
        {
            let mut view = self.view();
            let remote = view.remote.entry(topic.clone()).or_default();
            if remote.synced && !prune {
                return;
            }
        }
        let Some(entries) = self.read_topic(topic).await else {
            return;
        };
        let (joins, leaves) = {
            let mut view = self.view();
            let remote = view.remote.entry(topic.clone()).or_default();
            let tombstones = std::mem::take(&mut remote.left_while_syncing);
            let listed: HashSet<&str> = entries.iter().filter_map(|(_, _, meta)| meta.phx_ref()).collect();
            let mut leaves = Vec::new();
            if prune {
                let missing: Vec<String> =
                    remote.members.keys().filter(|r| !listed.contains(r.as_str())).cloned().collect();
                for phx_ref in missing {
                    if let Some((_, key)) = remote.members.remove(&phx_ref) {
                        leaves.push((key, phx_ref));
                    }
                }
            }
            let mut joins = Vec::new();
            for (node, key, meta) in entries {
                let Some(phx_ref) = meta.phx_ref().map(str::to_owned) else { continue };
                if tombstones.contains(&phx_ref) || remote.members.contains_key(&phx_ref) {
                    continue;
                }
                remote.members.insert(phx_ref, (node, key.clone()));
                joins.push((key, meta));
            }
            remote.synced = true;
            (joins, leaves)
        };
        self.apply(topic, joins, leaves);
    }

    /// Heartbeats, reaps expired nodes and drops the members of every node not alive. `trust_absence` is false
    /// shortly after a Redis restart, when live nodes may not have heartbeated again yet.
    pub(crate) async fn heartbeat(&self, trust_absence: bool) -> bool {
        let mut redis = self.redis.clone();
        let alive: Vec<String> = match self
            .heartbeat
            .key(NODES_KEY)
            .arg(self.node.as_str())
            .arg(NODE_PREFIX)
            .arg(TOPIC_PREFIX)
            .arg(HEARTBEAT_TTL.as_millis() as u64)
            .invoke_async(&mut redis)
            .await
        {
            Ok(alive) => alive,
            Err(error) => {
                tracing::debug!(%error, "heartbeat failed");
                return false;
            }
        };
        if trust_absence {
            let alive: HashSet<&str> = alive.iter().map(String::as_str).collect();
            self.drop_members(|node| !alive.contains(node));
        }
        true
    }

    /// Whether a write failed since the last call (so everything must be written back).
    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes every meta of this node back to the registry and announces them again (after Redis lost them).
    pub(crate) async fn write_back(&self) {
        let topics: Vec<(Arc<str>, Joins)> = self
            .view()
            .local
            .iter()
            .map(|(topic, entries)| {
                (topic.clone(), entries.values().map(|entry| (entry.key.clone(), entry.meta.clone())).collect())
            })
            .collect();
        if topics.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (topic, joins) in &topics {
            for (key, meta) in joins {
                let Some(phx_ref) = meta.phx_ref() else { continue };
                let Ok(value) = serde_json::to_vec(&Entry { key: key.clone(), meta: meta.clone() }) else { continue };
                pipe.hset(topic_key(topic), field(self.node.as_str(), phx_ref), value).ignore();
            }
            pipe.sadd(topics_key(self.node.as_str()), topic.as_ref()).ignore();
        }
        let mut redis = self.redis.clone();
        if let Err(error) = pipe.exec_async(&mut redis).await {
            tracing::debug!(%error, "presence write-back failed");
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        for (topic, joins) in topics {
            self.bus.send(&Envelope::Presence {
                node: self.node.to_string(),
                topic: topic.to_string(),
                leaves: Vec::new(),
                joins,
            });
        }
        tracing::info!("presences written back to the registry");
    }

    /// Re-reads every topic shown here from the registry and adds what is missing; with `prune`, also removes what
    /// the registry no longer lists. Pruning is only right once every live node has written its metas back after a
    /// Redis restart, so it runs [`super::RESYNC_AFTER`] after a reconnect, never at once.
    pub(crate) async fn resync(&self, prune: bool) {
        let topics: Vec<Arc<str>> = self.view().remote.keys().cloned().collect();
        for topic in topics {
            self.load(&topic, prune).await;
        }
    }

    /// Removes this node from the registry and tells the others (a graceful stop).
    pub(crate) async fn leave(&self) {
        let mut redis = self.redis.clone();
        let mut invocation = self.leave.key(NODES_KEY);
        invocation.arg(self.node.as_str()).arg(NODE_PREFIX).arg(TOPIC_PREFIX);
        let removed = invocation.invoke_async::<i64>(&mut redis);
        if let Err(error) = tokio::time::timeout(SYNC_TIMEOUT, removed).await.unwrap_or_else(|_| Ok(0)) {
            tracing::warn!(%error, "could not remove this node's presences");
        }
        let down = serde_json::to_vec(&Envelope::Down { node: self.node.to_string() }).unwrap_or_default();
        let published = redis.publish::<_, _, i64>(super::bus::CHANNEL, down);
        let _ = tokio::time::timeout(SYNC_TIMEOUT, published).await;
    }
}

impl Replica for Registry {
    fn changed(&self, topic: &Arc<str>, change: LocalChange) {
        if self.queue.try_send((topic.clone(), change)).is_err() {
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn sync<'a>(&'a self, topic: &'a Arc<str>) -> BoxFuture<'a, ()> {
        Box::pin(self.load(topic, false))
    }

    fn peek<'a>(&'a self, topic: &'a Arc<str>) -> BoxFuture<'a, Option<Vec<(String, Meta)>>> {
        Box::pin(async move {
            if self.view().remote.contains_key(topic) {
                return None;
            }
            let entries = self.read_topic(topic).await?;
            Some(entries.into_iter().map(|(_, key, meta)| (key, meta)).collect())
        })
    }
}

/// Writes this node's changes to the registry in order and announces them, one pipeline per batch.
async fn write_changes(registry: Arc<Registry>, mut queue: mpsc::Receiver<(Arc<str>, LocalChange)>) {
    let node = registry.node.to_string();
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        // Per topic, in order: what to announce.
        let mut announce: Vec<(Arc<str>, Leaves, Joins)> = Vec::new();
        {
            let mut view = registry.view();
            for (topic, change) in batch.drain(..) {
                let position = match announce.iter().position(|(t, _, _)| *t == topic) {
                    Some(position) => position,
                    None => {
                        announce.push((topic.clone(), Vec::new(), Vec::new()));
                        announce.len() - 1
                    }
                };
                match change {
                    LocalChange::Joined { key, meta } => {
                        let Some(phx_ref) = meta.phx_ref().map(str::to_owned) else { continue };
                        let entry = Entry { key: key.clone(), meta: meta.clone() };
                        if let Ok(value) = serde_json::to_vec(&entry) {
                            pipe.hset(topic_key(&topic), field(&node, &phx_ref), value).ignore();
                            pipe.sadd(topics_key(&node), topic.as_ref()).ignore();
                        }
                        view.local.entry(topic.clone()).or_default().insert(phx_ref, entry);
                        announce[position].2.push((key, meta));
                    }
                    LocalChange::Left { key, phx_ref } => {
                        pipe.hdel(topic_key(&topic), field(&node, &phx_ref)).ignore();
                        if let Some(entries) = view.local.get_mut(&topic) {
                            entries.remove(&phx_ref);
                            if entries.is_empty() {
                                view.local.remove(&topic);
                                pipe.srem(topics_key(&node), topic.as_ref()).ignore();
                            }
                        }
                        // A join and its leave in the same batch cancel out for the others.
                        let joins = &mut announce[position].2;
                        if let Some(index) = joins.iter().position(|(_, m)| m.phx_ref() == Some(phx_ref.as_str())) {
                            joins.remove(index);
                        } else {
                            announce[position].1.push((key, phx_ref));
                        }
                    }
                }
            }
        }
        let mut redis = registry.redis.clone();
        if let Err(error) = pipe.exec_async(&mut redis).await {
            tracing::debug!(%error, "presence write failed; writing back at the next heartbeat");
            registry.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        for (topic, leaves, joins) in announce {
            if leaves.is_empty() && joins.is_empty() {
                continue;
            }
            registry.bus.send(&Envelope::Presence { node: node.clone(), topic: topic.to_string(), leaves, joins });
        }
    }
}
