//! One topic's presence: the tracked metas, the diff accumulated since the last broadcast, and the encoded state.
//!
//! Pure state, no I/O: the [`Tracker`](super::Tracker) decides when to flush. Every change bumps a version and the
//! `presence_state` payload is encoded at most once per version. A join is itself a change, so today each joiner
//! gets its own encoding (O(members) per join); sharing one encoding across a join storm is issue 15's work.

use std::sync::Arc;

use protocol::presence::{Meta, PHX_REF_PREV, PresenceDiff, PresenceState};
use serde_json::{Value, value::RawValue};

/// The presence of one topic.
#[derive(Default)]
pub(super) struct TopicPresence {
    state: PresenceState,
    pending: PresenceDiff,
    version: u64,
    encoded: Option<(u64, Arc<RawValue>)>,
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
        self.version += 1;
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
        self.version += 1;
        true
    }

    /// Removes the meta `phx_ref` of `key`. False if it was not tracked.
    pub(super) fn untrack(&mut self, key: &str, phx_ref: &str) -> bool {
        let Some(old) = self.state.remove_meta_by_ref(key, phx_ref) else {
            return false;
        };
        self.pending.leaves.add_meta(key, old);
        self.version += 1;
        true
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
        let json: Arc<RawValue> = serde_json::value::to_raw_value(&self.state)
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
}
