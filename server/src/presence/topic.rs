//! One topic's presence: the tracked metas, the diff accumulated since the last broadcast, and the encoded state.
//!
//! Pure state, no I/O: the [`Tracker`](super::Tracker) decides when to flush. Every change bumps a version; the
//! `presence_state` payload is encoded at most once per version, however many joiners ask for it (in a join storm
//! every joiner within one coalescing window shares one encoding).

use std::sync::Arc;

use protocol::presence::{Meta, PHX_REF, PHX_REF_PREV, PresenceDiff, PresenceState};
use serde_json::Value;

/// The presence of one topic.
#[derive(Default)]
pub struct TopicPresence {
    state: PresenceState,
    pending: PresenceDiff,
    version: u64,
    encoded: Option<(u64, Arc<str>)>,
}

impl TopicPresence {
    /// Tracks a new meta under `key`. The meta must carry a unique `phx_ref`.
    pub fn track(&mut self, key: &str, meta: Meta) {
        self.pending.joins.add_meta(key, meta.clone());
        self.state.add_meta(key, meta);
        self.version += 1;
    }

    /// Replaces the meta `old_ref` of `key` with `new_meta` (which gets `phx_ref_prev = old_ref`): a leave of the old
    /// meta plus a join of the new one, as Phoenix's `update`. False if `old_ref` is not tracked.
    pub fn update(&mut self, key: &str, old_ref: &str, mut new_meta: Meta) -> bool {
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
    pub fn untrack(&mut self, key: &str, phx_ref: &str) -> bool {
        let Some(old) = self.state.remove_meta_by_ref(key, phx_ref) else {
            return false;
        };
        self.pending.leaves.add_meta(key, old);
        self.version += 1;
        true
    }

    /// The meta currently tracked as `phx_ref` under `key`.
    pub fn meta(&self, key: &str, phx_ref: &str) -> Option<&Meta> {
        self.state.get(key)?.metas.iter().find(|m| m.get(PHX_REF).and_then(Value::as_str) == Some(phx_ref))
    }

    /// Takes the diff accumulated since the last call (empty if nothing changed).
    pub fn take_pending(&mut self) -> PresenceDiff {
        std::mem::take(&mut self.pending)
    }

    /// Whether a diff is waiting to be broadcast.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether nobody is tracked and nothing is pending (the topic can be forgotten).
    pub fn is_idle(&self) -> bool {
        self.state.is_empty() && self.pending.is_empty()
    }

    /// The `presence_state` payload as JSON text, encoded once per version.
    pub fn encoded_state(&mut self) -> Arc<str> {
        if let Some((_, text)) = self.encoded.as_ref().filter(|(v, _)| *v == self.version) {
            return text.clone();
        }
        let text: Arc<str> = Arc::from(serde_json::to_string(&self.state).unwrap_or_else(|_| "{}".to_owned()));
        self.encoded = Some((self.version, text.clone()));
        text
    }

    /// Number of keys (users) present.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
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
    fn state_is_encoded_once_per_version() {
        let mut topic = TopicPresence::default();
        topic.track("bob", meta("b1"));
        let first = topic.encoded_state();
        let again = topic.encoded_state();
        assert!(Arc::ptr_eq(&first, &again), "unchanged state reuses its encoding");
        topic.track("carol", meta("c1"));
        let changed = topic.encoded_state();
        assert!(!Arc::ptr_eq(&first, &changed));
        let value: Value = serde_json::from_str(&changed).unwrap();
        assert_eq!(value["carol"]["metas"][0]["phx_ref"], json!("c1"));
    }
}
