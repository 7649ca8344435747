//! One topic's presence: the tracked metas, the diff accumulated since the last broadcast, and the encoded state.
//!
//! Pure state, no I/O: the [`Tracker`](super::Tracker) decides when to flush. Every change bumps a version and the
//! `presence_state` payload is assembled at most once per version. A join is itself a change, so in a join storm
//! every joiner needs a new `presence_state` of up to N members; to keep that cheap each member's entry is encoded
//! once, when it changes, and a state is the concatenation of those encodings, walked in order: a copy per joiner,
//! not a serialization (BENCHMARKS.md, issue 15: the join storm).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use protocol::presence::{Meta, PHX_REF_PREV, PresenceDiff, PresenceState};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, value::RawValue};

/// The presence of one topic.
#[derive(Default)]
pub(super) struct TopicPresence {
    state: PresenceState,
    /// Each key's `{"metas": […]}`, encoded when the key last changed, in the order keys arrived (a key keeps its
    /// place while it has metas). Assembling a state walks this in order: no lookup per member. Clients order an
    /// object's keys as JavaScript does (integer-like keys first, the others in text order), so this order is the one
    /// they see either way.
    members: BTreeMap<u64, (Arc<str>, Box<RawValue>)>,
    /// Where each key sits in `members`.
    slots: HashMap<Arc<str>, u64>,
    next_slot: u64,
    pending: PresenceDiff,
    version: u64,
    encoded: Option<(u64, Arc<RawValue>)>,
}

/// A `presence_state` written from the members' stored encodings.
struct Assembled<'a>(&'a BTreeMap<u64, (Arc<str>, Box<RawValue>)>);

impl Serialize for Assembled<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, member) in self.0.values() {
            map.serialize_entry(&**key, member)?;
        }
        map.end()
    }
}

impl TopicPresence {
    /// Tracks a new meta under `key`. The meta must carry a unique `phx_ref`. A meta that left within the pending
    /// diff and comes back (a remote node's meta dropped and re-read after a Redis outage) cancels its leave instead:
    /// clients apply a diff's joins before its leaves, so a leave and a join of one ref would remove it.
    pub(super) fn track(&mut self, key: &str, meta: Meta) {
        let returning =
            meta.phx_ref().is_some_and(|phx_ref| self.pending.leaves.remove_meta_by_ref(key, phx_ref).is_some());
        if !returning {
            self.pending.joins.add_meta(key, meta.clone());
        }
        self.state.add_meta(key, meta);
        self.changed(key);
    }

    /// Replaces the meta `old_ref` of `key` with `new_meta` (which gets `phx_ref_prev = old_ref`): a leave of the old
    /// meta plus a join of the new one, as Phoenix's `update`. False if `old_ref` is not tracked.
    pub(super) fn update(&mut self, key: &str, old_ref: &str, mut new_meta: Meta) -> bool {
        let Some(old) = self.state.remove_meta_by_ref(key, old_ref) else {
            return false;
        };
        new_meta.insert(PHX_REF_PREV, Value::String(old_ref.to_owned()));
        self.pending.leaves.add_meta(key, old);
        self.pending.joins.add_meta(key, new_meta.clone());
        self.state.add_meta(key, new_meta);
        self.changed(key);
        true
    }

    /// Removes the meta `phx_ref` of `key`. False if it was not tracked.
    pub(super) fn untrack(&mut self, key: &str, phx_ref: &str) -> bool {
        let Some(old) = self.state.remove_meta_by_ref(key, phx_ref) else {
            return false;
        };
        self.pending.leaves.add_meta(key, old);
        self.changed(key);
        true
    }

    /// Re-encodes the entry of `key` (or forgets it when the key left) and bumps the version.
    fn changed(&mut self, key: &str) {
        self.version += 1;
        let Some(presence) = self.state.get(key) else {
            if let Some(slot) = self.slots.remove(key) {
                self.members.remove(&slot);
            }
            return;
        };
        let encoded = match serde_json::value::to_raw_value(presence) {
            Ok(encoded) => encoded,
            Err(error) => return tracing::error!(%error, key, "presence entry not encodable"),
        };
        if let Some((_, member)) = self.slots.get(key).and_then(|slot| self.members.get_mut(slot)) {
            *member = encoded;
            return;
        }
        let (key, slot) = (Arc::<str>::from(key), self.next_slot);
        self.next_slot += 1;
        self.slots.insert(key.clone(), slot);
        self.members.insert(slot, (key, encoded));
    }

    /// Members (keys) tracked.
    pub(super) fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether `key` has a meta with this `phx_ref`.
    pub(super) fn contains(&self, key: &str, phx_ref: &str) -> bool {
        self.state.get(key).is_some_and(|presence| presence.metas.iter().any(|m| m.phx_ref() == Some(phx_ref)))
    }

    /// Takes the diff accumulated since the last call (empty if nothing changed).
    pub(super) fn take_pending(&mut self) -> PresenceDiff {
        std::mem::take(&mut self.pending)
    }

    /// Whether nobody is tracked and nothing is pending (the topic can be forgotten).
    pub(super) fn is_idle(&self) -> bool {
        self.state.is_empty() && self.pending.is_empty()
    }

    /// The `presence_state` payload, encoded once per version. `None` only if encoding failed, which string keys and
    /// JSON metas cannot make happen.
    pub(super) fn encoded_state(&mut self) -> Option<Arc<RawValue>> {
        if let Some((_, json)) = self.encoded.as_ref().filter(|(v, _)| *v == self.version) {
            return Some(json.clone());
        }
        let json: Arc<RawValue> = serde_json::value::to_raw_value(&Assembled(&self.members))
            .inspect_err(|error| tracing::error!(%error, "presence state not encodable"))
            .ok()?
            .into();
        self.encoded = Some((self.version, json.clone()));
        Some(json)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta(phx_ref: &str) -> Meta {
        Meta::with_ref(phx_ref).with("online_at", 1).with("typing", false)
    }

    #[test]
    fn track_update_untrack_build_phoenix_diffs() {
        let mut topic = TopicPresence::default();
        topic.track("alice", meta("a1"));
        topic.track("alice", meta("a2"));
        let diff = topic.take_pending();
        assert_eq!(serde_json::to_value(&diff.joins).unwrap()["alice"]["metas"].as_array().unwrap().len(), 2);
        assert!(diff.leaves.is_empty());

        assert!(topic.update("alice", "a1", meta("a3").with("typing", true)));
        let diff = serde_json::to_value(topic.take_pending()).unwrap();
        assert_eq!(diff["leaves"]["alice"]["metas"][0]["phx_ref"], json!("a1"));
        assert_eq!(diff["joins"]["alice"]["metas"][0]["phx_ref"], json!("a3"));
        assert_eq!(diff["joins"]["alice"]["metas"][0]["phx_ref_prev"], json!("a1"));
        assert_eq!(diff["joins"]["alice"]["metas"][0]["typing"], json!(true));

        assert!(topic.untrack("alice", "a2"));
        assert!(topic.untrack("alice", "a3"));
        assert!(!topic.untrack("alice", "a3"), "untracking twice is a no-op");
        let diff = serde_json::to_value(topic.take_pending()).unwrap();
        assert_eq!(diff["leaves"]["alice"]["metas"].as_array().unwrap().len(), 2);
        assert!(topic.is_idle());
    }

    #[test]
    fn a_meta_that_leaves_and_returns_within_one_diff_is_no_change() {
        let mut topic = TopicPresence::default();
        topic.track("dora", meta("d1"));
        topic.take_pending();
        assert!(topic.untrack("dora", "d1"));
        topic.track("dora", meta("d1"));
        let diff = topic.take_pending();
        assert!(diff.is_empty(), "a client applying joins then leaves would have lost dora: {diff:?}");
        assert!(topic.contains("dora", "d1"));
    }

    #[test]
    fn state_is_encoded_once_per_version() {
        let mut topic = TopicPresence::default();
        topic.track("bob", meta("b1"));
        let first = topic.encoded_state().unwrap();
        let again = topic.encoded_state().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "unchanged state reuses its encoding");
        topic.track("carol", meta("c1"));
        let changed = topic.encoded_state().unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        let value: Value = serde_json::from_str(changed.get()).unwrap();
        assert_eq!(value["carol"]["metas"][0]["phx_ref"], json!("c1"));
    }

    #[test]
    fn the_assembled_state_is_the_state_encoded_directly() {
        let mut topic = TopicPresence::default();
        for (key, phx_ref) in [("bob", "b1"), ("7", "s1"), ("ann \"quoted\"", "q1"), ("bob", "b2"), ("2", "s2")] {
            topic.track(key, meta(phx_ref));
        }
        assert!(topic.update("bob", "b1", meta("b3").with("typing", true)));
        assert!(topic.untrack("7", "s1"));
        assert!(!topic.untrack("ghost", "g1"));
        topic.track("zoe", meta("z1"));
        assert!(topic.untrack("bob", "b2"));
        let assembled = topic.encoded_state().unwrap();
        let parsed: PresenceState = serde_json::from_str(assembled.get()).unwrap();
        assert_eq!(parsed, topic.state, "the same members and metas");
        let named: Vec<&str> = parsed.keys().filter(|key| key.parse::<u32>().is_err()).collect();
        assert_eq!(named, ["bob", "ann \"quoted\"", "zoe"], "named keys in the order they arrived, as in JavaScript");
        assert_eq!(topic.len(), 4);
    }
}
