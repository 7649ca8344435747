//! Presence: who is online in each topic, with Phoenix's wire format.
//!
//! [`Tracker`] keeps every topic's [`TopicPresence`] in sharded maps. Tracks, updates and untracks change the state
//! at once (a joiner's `presence_state` is always current) but their `presence_diff` is coalesced per topic: the
//! first change after a quiet period is broadcast immediately, later ones within the coalescing window are folded
//! into one diff. In a join storm of N clients this turns N diffs × N members into (storm length / window) diffs, while
//! the wire format stays Phoenix's, so phoenix.js clients sync exactly as with Phoenix (see the coalescing property
//! test in `protocol::presence`).

mod topic;

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use protocol::{
    events::PRESENCE_DIFF,
    presence::{Meta, PHX_REF, PresenceDiff},
    typed::to_payload,
};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::pubsub::{Broadcast, PubSub};
use topic::TopicPresence;

/// Number of shards of the topic map.
const SHARDS: usize = 32;

struct TopicEntry {
    presence: TopicPresence,
    last_flush: Option<Instant>,
    flush_scheduled: bool,
}

/// Tracks presences of every topic on this node and broadcasts their diffs.
pub(crate) struct Tracker {
    shards: Vec<Mutex<HashMap<Arc<str>, TopicEntry>>>,
    hasher: RandomState,
    pubsub: Arc<dyn PubSub>,
    window: Duration,
    next_ref: AtomicU64,
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
            me: me.clone(),
        })
    }

    fn shard(&self, topic: &str) -> MutexGuard<'_, HashMap<Arc<str>, TopicEntry>> {
        let index = (self.hasher.hash_one(topic) as usize) % SHARDS;
        // Each operation leaves the map consistent before it can panic, so a poisoned shard is still usable.
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A unique, opaque `phx_ref`: 16 URL-safe characters from the wall clock and a counter, like Phoenix's.
    fn make_ref(&self) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let counter = self.next_ref.fetch_add(1, Ordering::Relaxed) as u32;
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&counter.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Tracks `meta` (which gets a fresh `phx_ref`) under `key` in `topic`; returns the ref and the encoded state
    /// including this meta, for the joiner's `presence_state`.
    pub(crate) fn track(&self, topic: &Arc<str>, key: &str, meta: Meta) -> (String, Option<Arc<RawValue>>) {
        let phx_ref = self.make_ref();
        let meta = meta.with(PHX_REF, phx_ref.clone());
        let mut state = None;
        self.change(topic, |presence| {
            presence.track(key, meta);
            state = presence.encoded_state();
            true
        });
        (phx_ref, state)
    }

    /// Replaces the meta `old_ref` of `key` with `meta` (which gets a fresh `phx_ref`, and `phx_ref_prev = old_ref`);
    /// returns the new ref, or `None` if `old_ref` is not tracked.
    pub(crate) fn update(&self, topic: &Arc<str>, key: &str, old_ref: &str, meta: Meta) -> Option<String> {
        let new_ref = self.make_ref();
        let meta = meta.with(PHX_REF, new_ref.clone());
        let mut updated = false;
        self.change(topic, |presence| {
            updated = presence.update(key, old_ref, meta);
            updated
        });
        updated.then_some(new_ref)
    }

    /// Removes the meta `phx_ref` of `key`.
    pub(crate) fn untrack(&self, topic: &Arc<str>, key: &str, phx_ref: &str) {
        self.change(topic, |presence| presence.untrack(key, phx_ref));
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
        match entry.last_flush {
            Some(last) if now < last + self.window => {
                entry.flush_scheduled = true;
                self.schedule_flush(topic.clone(), last + self.window);
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
            Ok(payload) => self.pubsub.broadcast(Arc::new(Broadcast::new(topic.clone(), PRESENCE_DIFF, payload))),
            Err(error) => tracing::error!(%error, %topic, "presence diff not encodable"),
        }
    }
}
