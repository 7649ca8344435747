//! Presence: who is online in each topic, with Phoenix's wire format.
//!
//! [`Tracker`] keeps every topic's [`TopicPresence`] in sharded maps. Tracks, updates and untracks change the state
//! at once (a joiner's `presence_state` is always current) but their `presence_diff` is coalesced per topic: the
//! first change after a quiet period is broadcast immediately, later ones within the coalescing window are folded
//! into one diff. In a join storm of N clients this turns N diffs × N members into (storm length / window) diffs, while
//! the wire format stays Phoenix's, so phoenix.js clients sync exactly as with Phoenix (see the coalescing property
//! test in `protocol::presence`). The window grows with the topic's members ([`coalescing_window`]), so a busy big
//! room sends a bounded number of diff frames per second whatever its churn.
//!
//! In a cluster the tracker also holds the metas of other nodes' members ([`Tracker::apply_remote`]), so a joiner's
//! `presence_state` and every diff cover the whole room; this node's own changes go out through its [`Replica`].

mod topic;

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use futures::future::BoxFuture;
use protocol::{
    events::PRESENCE_DIFF,
    presence::{Meta, PHX_REF, PHX_REF_PREV, PresenceDiff},
    typed::to_payload,
};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::{
    metrics::Meters,
    pubsub::{Broadcast, PubSub},
    top::Top,
};
use topic::TopicPresence;

/// Number of shards of the topic map.
const SHARDS: usize = 32;
/// Presence diff frames one topic may send per second, at most (a diff goes to every member): past
/// `base window × this` members, the coalescing window grows in proportion to the members.
const DIFF_FRAMES_PER_SECOND: u64 = 10_000;
/// The longest coalescing window (reached at 10,000 members).
const MAX_WINDOW: Duration = Duration::from_secs(1);

struct TopicEntry {
    presence: TopicPresence,
    last_flush: Option<Instant>,
    flush_scheduled: bool,
}

/// The coalescing window of a topic with `members`: `base` (50 ms) for rooms up to 500, then 0.1 ms per member
/// (500 ms at 5,000), at most [`MAX_WINDOW`]. A diff costs one frame per member, so this bounds a topic's diff frames
/// at [`DIFF_FRAMES_PER_SECOND`] (BENCHMARKS.md, issue 15: the join storm's frame count).
fn coalescing_window(base: Duration, members: usize) -> Duration {
    let scaled = Duration::from_micros(members as u64 * 1_000_000 / DIFF_FRAMES_PER_SECOND);
    scaled.clamp(base, MAX_WINDOW.max(base))
}

/// A change a connection of this node made to a topic's presence, as other nodes must apply it.
#[derive(Debug, Clone)]
pub(crate) enum LocalChange {
    /// `meta` (with its `phx_ref`, and `phx_ref_prev` for an update) joined under `key`.
    Joined { key: String, meta: Meta },
    /// The meta `phx_ref` of `key` left.
    Left { key: String, phx_ref: String },
}

/// Where this node's presence changes are replicated (the cluster's registry).
pub(crate) trait Replica: Send + Sync + 'static {
    /// A change made here. Called with the topic locked: it must neither block nor call back into the tracker.
    fn changed(&self, topic: &Arc<str>, change: LocalChange);
    /// Loads what the other nodes hold in `topic` (through [`Tracker::apply_remote`]) before a join here tracks, so
    /// the joiner's `presence_state` is the whole room's. Gives up quietly when the registry cannot be reached.
    fn sync<'a>(&'a self, topic: &'a Arc<str>) -> BoxFuture<'a, ()>;
    /// What the other nodes hold in `topic` (key, meta), read once and followed no further, when this node does not
    /// follow `topic` yet; `None` when it does (the tracker's state is then the whole room's) or the registry cannot
    /// be reached.
    fn peek<'a>(&'a self, topic: &'a Arc<str>) -> BoxFuture<'a, Option<Vec<(String, Meta)>>>;
}

/// Tracks presences of every topic on this node and broadcasts their diffs.
pub(crate) struct Tracker {
    shards: Vec<Mutex<HashMap<Arc<str>, TopicEntry>>>,
    hasher: RandomState,
    pubsub: Arc<dyn PubSub>,
    window: Duration,
    next_ref: AtomicU64,
    /// Salt of every `phx_ref` made here, so refs of different nodes never collide.
    ref_salt: u16,
    replica: OnceLock<Arc<dyn Replica>>,
    /// Where tracked members and sent diffs are counted (set once, before serving).
    meters: OnceLock<Arc<Meters>>,
    me: Weak<Tracker>,
}

impl Tracker {
    /// A tracker broadcasting through `pubsub`, coalescing diffs over `window`.
    pub(crate) fn new(pubsub: Arc<dyn PubSub>, window: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            pubsub,
            window,
            next_ref: AtomicU64::new(0),
            ref_salt: rand::random(),
            replica: OnceLock::new(),
            meters: OnceLock::new(),
            me: me.clone(),
        })
    }

    /// Replicates this node's changes through `replica` from now on (set once, before serving).
    pub(crate) fn replicate_through(&self, replica: Arc<dyn Replica>) {
        if self.replica.set(replica).is_err() {
            tracing::warn!("presence replica already set");
        }
    }

    /// Counts this node's members and the diffs it sends in `meters` from now on (set once, before serving).
    pub(crate) fn count_in(&self, meters: Arc<Meters>) {
        if self.meters.set(meters).is_err() {
            tracing::warn!("presence meters already set");
        }
    }

    /// Makes the topic's state whole before a join tracks in it: in a cluster, loads the other nodes' members.
    pub(crate) async fn prepare(&self, topic: &Arc<str>) {
        if let Some(replica) = self.replica.get() {
            replica.sync(topic).await;
        }
    }

    /// Applies changes another node made: `leaves` (key, phx_ref) first, then `joins` (key, meta with its phx_ref),
    /// as one change, so an update (a leave and a join) reaches members as one diff. Metas already known are skipped,
    /// which makes replays harmless.
    pub(crate) fn apply_remote(&self, topic: &Arc<str>, joins: Vec<(String, Meta)>, leaves: Vec<(String, String)>) {
        self.change(topic, |presence| {
            let mut changed = false;
            for (key, phx_ref) in &leaves {
                changed |= presence.untrack(key, phx_ref);
            }
            for (key, meta) in joins {
                if meta.phx_ref().is_some_and(|phx_ref| !presence.contains(&key, phx_ref)) {
                    presence.track(&key, meta);
                    changed = true;
                }
            }
            changed
        });
    }

    fn replicate(&self, topic: &Arc<str>, change: LocalChange) {
        if let Some(replica) = self.replica.get() {
            replica.changed(topic, change);
        }
    }

    fn shard(&self, topic: &str) -> MutexGuard<'_, HashMap<Arc<str>, TopicEntry>> {
        let index = (self.hasher.hash_one(topic) as usize) % SHARDS;
        // Each operation leaves the map consistent before it can panic, so a poisoned shard is still usable.
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A unique, opaque `phx_ref`: 16 URL-safe characters from the wall clock, a counter and this node's salt (like
    /// Phoenix's refs, unique across the nodes of a cluster).
    fn make_ref(&self) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let counter = self.next_ref.fetch_add(1, Ordering::Relaxed) as u16;
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..10].copy_from_slice(&counter.to_be_bytes());
        bytes[10..].copy_from_slice(&self.ref_salt.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Tracks `meta` (which gets a fresh `phx_ref`) under `key` in `topic`; returns the ref and the encoded state
    /// including this meta, for the joiner's `presence_state`.
    pub(crate) fn track(&self, topic: &Arc<str>, key: &str, meta: Meta) -> (String, Option<Arc<RawValue>>) {
        let phx_ref = self.make_ref();
        let meta = meta.with(PHX_REF, phx_ref.clone());
        let mut state = None;
        self.change(topic, |presence| {
            // Only a cluster needs its own copy of the meta; a single node moves it straight into the state.
            if let Some(replica) = self.replica.get() {
                replica.changed(topic, LocalChange::Joined { key: key.to_owned(), meta: meta.clone() });
            }
            presence.track(key, meta);
            state = presence.encoded_state();
            true
        });
        if let Some(meters) = self.meters.get() {
            meters.presence_changed(1);
        }
        (phx_ref, state)
    }

    /// Replaces the meta `old_ref` of `key` with `meta` (which gets a fresh `phx_ref`, and `phx_ref_prev = old_ref`);
    /// returns the new ref, or `None` if `old_ref` is not tracked.
    pub(crate) fn update(&self, topic: &Arc<str>, key: &str, old_ref: &str, meta: Meta) -> Option<String> {
        let new_ref = self.make_ref();
        let meta = meta.with(PHX_REF, new_ref.clone());
        let mut updated = false;
        self.change(topic, |presence| {
            let replicated = self.replica.get().map(|replica| (replica, meta.clone()));
            updated = presence.update(key, old_ref, meta);
            if updated && let Some((replica, meta)) = replicated {
                let key = key.to_owned();
                replica.changed(topic, LocalChange::Left { key: key.clone(), phx_ref: old_ref.to_owned() });
                replica.changed(topic, LocalChange::Joined { key, meta: meta.with(PHX_REF_PREV, old_ref.to_owned()) });
            }
            updated
        });
        updated.then_some(new_ref)
    }

    /// Removes the meta `phx_ref` of `key`.
    pub(crate) fn untrack(&self, topic: &Arc<str>, key: &str, phx_ref: &str) {
        let mut untracked = false;
        self.change(topic, |presence| {
            untracked = presence.untrack(key, phx_ref);
            if untracked {
                self.replicate(topic, LocalChange::Left { key: key.to_owned(), phx_ref: phx_ref.to_owned() });
            }
            untracked
        });
        if let Some(meters) = self.meters.get().filter(|_| untracked) {
            meters.presence_changed(-1);
        }
    }

    /// The `limit` topics starting with `prefix` that have the most members (keys, every node's in a cluster), most
    /// first, ties by name. For the operators' dashboard once a second: one short lock per shard, no topic state
    /// copied and only the winners' names cloned (a bounded [`Top`]), so its cost is a walk over the tracked topics.
    pub(crate) fn busiest(&self, prefix: &str, limit: usize) -> Vec<(Arc<str>, usize)> {
        let mut top = Top::new(limit);
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (topic, entry) in shard.iter().filter(|(topic, _)| topic.starts_with(prefix)) {
                let members = entry.presence.len();
                if members > 0 {
                    top.offer(&**topic, members, || topic.clone());
                }
            }
        }
        top.into_vec()
    }

    /// The topic's current `presence_state` payload, `None` when nobody is in it: for readers that are not members
    /// (the HTTP API). Call [`Tracker::prepare`] first, so that in a cluster it holds the other nodes' members too.
    pub(crate) fn state(&self, topic: &str) -> Option<Arc<RawValue>> {
        let mut shard = self.shard(topic);
        shard.get_mut(topic).and_then(|entry| entry.presence.encoded_state())
    }

    /// The whole room's `presence_state` payload for a reader that does not join (the HTTP API), `None` when nobody
    /// is in it. In a cluster, a topic this node does not follow is read from the registry once and assembled apart,
    /// so a read never makes the node follow the room (its members, resyncs, the dashboard's ranking).
    pub(crate) async fn peek_state(&self, topic: &Arc<str>) -> Option<Arc<RawValue>> {
        if let Some(replica) = self.replica.get()
            && let Some(entries) = replica.peek(topic).await
        {
            let mut presence = TopicPresence::default();
            for (key, meta) in entries {
                presence.track(&key, meta);
            }
            return presence.encoded_state();
        }
        self.state(topic)
    }

    /// Applies `change` to the topic; when it changed something, broadcasts now or schedules a coalesced flush.
    fn change(&self, topic: &Arc<str>, change: impl FnOnce(&mut TopicPresence) -> bool) {
        let mut shard = self.shard(topic);
        let entry = shard.entry(topic.clone()).or_insert_with(|| TopicEntry {
            presence: TopicPresence::default(),
            last_flush: None,
            flush_scheduled: false,
        });
        let changed = change(&mut entry.presence);
        if !changed || entry.flush_scheduled {
            return;
        }
        let now = Instant::now();
        let window = coalescing_window(self.window, entry.presence.len());
        match entry.last_flush {
            Some(last) if now < last + window => {
                entry.flush_scheduled = true;
                self.schedule_flush(topic.clone(), last + window);
            }
            _ => {
                // Broadcast while holding the shard lock: two diffs of one topic must reach the pubsub in order.
                let diff = entry.presence.take_pending();
                entry.last_flush = Some(now);
                if entry.presence.is_idle() {
                    shard.remove(topic);
                }
                self.broadcast(topic, diff);
            }
        }
    }

    fn schedule_flush(&self, topic: Arc<str>, at: Instant) {
        let Some(tracker) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            tracker.flush(&topic);
        });
    }

    /// Broadcasts the pending diff of `topic`, if any.
    fn flush(&self, topic: &Arc<str>) {
        let mut shard = self.shard(topic);
        let Some(entry) = shard.get_mut(topic) else {
            return;
        };
        entry.flush_scheduled = false;
        entry.last_flush = Some(Instant::now());
        let diff = entry.presence.take_pending();
        if entry.presence.is_idle() {
            shard.remove(topic);
        }
        self.broadcast(topic, diff);
    }

    fn broadcast(&self, topic: &Arc<str>, diff: PresenceDiff) {
        if diff.is_empty() {
            return;
        }
        match to_payload(&diff) {
            Ok(payload) => {
                if let Some(meters) = self.meters.get() {
                    meters.presence_diff_sent();
                }
                self.pubsub.broadcast(Arc::new(Broadcast::new(topic.clone(), PRESENCE_DIFF, payload)));
            }
            Err(error) => tracing::error!(%error, %topic, "presence diff not encodable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busiest_lists_the_prefixed_topics_with_the_most_members() {
        let tracker = Tracker::new(Arc::new(crate::pubsub::LocalPubSub::new()), Duration::from_millis(50));
        let topic = |name: &str| Arc::<str>::from(name);
        for (name, members) in [("room:a", 1), ("room:b", 3), ("room:c", 2), ("bench:x", 9)] {
            for member in 0..members {
                tracker.track(&topic(name), &format!("user{member}"), Meta::default());
            }
        }
        // Two metas of one key are one member.
        tracker.track(&topic("room:a"), "user0", Meta::default());
        let busiest = tracker.busiest("room:", 2);
        assert_eq!(busiest, vec![(topic("room:b"), 3), (topic("room:c"), 2)]);
        assert_eq!(tracker.busiest("room:", 10).len(), 3, "other prefixes are left out");
    }

    #[test]
    fn the_window_grows_with_the_members_between_its_bounds() {
        let base = Duration::from_millis(50);
        assert_eq!(coalescing_window(base, 1), base);
        assert_eq!(coalescing_window(base, 500), base);
        assert_eq!(coalescing_window(base, 2_000), Duration::from_millis(200));
        assert_eq!(coalescing_window(base, 5_000), Duration::from_millis(500));
        assert_eq!(coalescing_window(base, 1_000_000), MAX_WINDOW);
        assert_eq!(coalescing_window(Duration::from_secs(3), 10), Duration::from_secs(3), "a longer base wins");
    }
}
