//! A reference model of phoenix.js `Presence` (assets/js/phoenix/presence.js), written for obviousness rather than
//! speed, to check `protocol::presence` against: plain vectors, JavaScript property order recomputed on every read,
//! and `phx_ref` compared with JavaScript's `===` as `indexOf` does.

use protocol::presence::{Meta, PHX_REF, Presence, PresenceDiff, PresenceEvent, PresenceState};
use serde_json::Value;

/// JavaScript `===` between two `phx_ref` values as `JSON.parse` produced them: `undefined` (absent) equals
/// `undefined`, numbers compare as doubles (`1` and `1.0` are one number), and objects or arrays are never equal
/// because every parse makes new ones.
pub fn js_strict_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Null), Some(Value::Null)) => true,
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::String(x)), Some(Value::String(y))) => x == y,
        _ => false,
    }
}

/// `refs.indexOf(meta.phx_ref) >= 0`.
pub fn ref_in(meta: &Meta, metas: &[Meta]) -> bool {
    metas.iter().any(|other| js_strict_eq(meta.get(PHX_REF), other.get(PHX_REF)))
}

/// Whether `key` is an array index for JavaScript: the canonical decimal form of an integer below 2³² − 1.
fn array_index(key: &str) -> Option<u64> {
    let n: u64 = key.parse().ok()?;
    (n.to_string() == key && n < u64::from(u32::MAX)).then_some(n)
}

/// A null-prototype JavaScript object of presences: properties in creation order, read back in
/// `Object.getOwnPropertyNames` order (array indices ascending, then the rest in creation order).
#[derive(Clone, Debug, Default)]
pub struct JsObject {
    properties: Vec<(String, Presence)>,
}

impl JsObject {
    /// The same properties as `state`, created in its iteration order.
    pub fn from_state(state: &PresenceState) -> Self {
        Self { properties: state.iter().map(|(key, presence)| (key.to_owned(), presence.clone())).collect() }
    }

    /// Properties in `Object.getOwnPropertyNames` order.
    pub fn entries(&self) -> Vec<(String, Presence)> {
        let mut indices: Vec<_> = self.properties.iter().filter(|(key, _)| array_index(key).is_some()).collect();
        indices.sort_by_key(|(key, _)| array_index(key));
        let names = self.properties.iter().filter(|(key, _)| array_index(key).is_none());
        indices.into_iter().chain(names).cloned().collect()
    }

    /// `obj[key]`.
    pub fn get(&self, key: &str) -> Option<&Presence> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, presence)| presence)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Presence> {
        self.properties.iter_mut().find(|(k, _)| k == key).map(|(_, presence)| presence)
    }

    /// `obj[key] = presence`: an existing property keeps its place.
    pub fn set(&mut self, key: &str, presence: Presence) {
        match self.get_mut(key) {
            Some(slot) => *slot = presence,
            None => self.properties.push((key.to_owned(), presence)),
        }
    }

    /// `delete obj[key]`.
    pub fn delete(&mut self, key: &str) {
        self.properties.retain(|(k, _)| k != key);
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.properties.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }
}

/// `Presence.syncDiff(state, {joins, leaves}, onJoin, onLeave)`, callbacks recorded in order.
pub fn sync_diff(state: &JsObject, joins: &JsObject, leaves: &JsObject, events: &mut Vec<PresenceEvent>) -> JsObject {
    let mut state = state.clone();
    for (key, new_presence) in joins.entries() {
        let current = state.get(&key).cloned();
        let mut presence = new_presence.clone();
        if let Some(current) = &current {
            let kept: Vec<Meta> = current.metas.iter().filter(|m| !ref_in(m, &presence.metas)).cloned().collect();
            presence.metas.splice(0..0, kept);
        }
        state.set(&key, presence);
        events.push(PresenceEvent::Join { key, current, joined: new_presence });
    }
    for (key, left) in leaves.entries() {
        let Some(current) = state.get_mut(&key) else { continue };
        current.metas.retain(|m| !ref_in(m, &left.metas));
        let current = current.clone();
        let empty = current.metas.is_empty();
        events.push(PresenceEvent::Leave { key: key.clone(), current, left });
        if empty {
            state.delete(&key);
        }
    }
    state
}

/// `Presence.syncState(current, newState, onJoin, onLeave)`, callbacks recorded in order.
pub fn sync_state(current: &JsObject, new_state: &JsObject, events: &mut Vec<PresenceEvent>) -> JsObject {
    let mut joins = JsObject::default();
    let mut leaves = JsObject::default();
    for (key, presence) in current.entries() {
        if new_state.get(&key).is_none() {
            leaves.set(&key, presence);
        }
    }
    for (key, new_presence) in new_state.entries() {
        let Some(existing) = current.get(&key) else {
            joins.set(&key, new_presence);
            continue;
        };
        let joined: Vec<Meta> = new_presence.metas.iter().filter(|m| !ref_in(m, &existing.metas)).cloned().collect();
        let left: Vec<Meta> = existing.metas.iter().filter(|m| !ref_in(m, &new_presence.metas)).cloned().collect();
        if !joined.is_empty() {
            joins.set(&key, Presence { metas: joined, extra: new_presence.extra.clone() });
        }
        if !left.is_empty() {
            leaves.set(&key, Presence { metas: left, extra: existing.extra.clone() });
        }
    }
    sync_diff(current, &joins, &leaves, events)
}

/// The phoenix.js `Presence` instance: state, pending diffs and the join_ref of the last state.
#[derive(Clone, Debug, Default)]
pub struct JsClient {
    /// `this.state`.
    pub state: JsObject,
    pending_diffs: Vec<(JsObject, JsObject)>,
    join_ref: Option<String>,
}

impl JsClient {
    /// `inPendingSyncState()`: `!this.joinRef || this.joinRef !== channel.joinRef()`.
    fn in_pending_sync_state(&self, channel_join_ref: Option<&str>) -> bool {
        match self.join_ref.as_deref() {
            None | Some("") => true,
            Some(ours) => channel_join_ref != Some(ours),
        }
    }

    /// The `presence_state` handler.
    pub fn on_state(&mut self, channel_join_ref: Option<&str>, new_state: &JsObject, events: &mut Vec<PresenceEvent>) {
        self.join_ref = channel_join_ref.map(str::to_owned);
        self.state = sync_state(&self.state, new_state, events);
        for (joins, leaves) in std::mem::take(&mut self.pending_diffs) {
            self.state = sync_diff(&self.state, &joins, &leaves, events);
        }
        events.push(PresenceEvent::Sync);
    }

    /// The `presence_diff` handler.
    pub fn on_diff(&mut self, channel_join_ref: Option<&str>, diff: &PresenceDiff, events: &mut Vec<PresenceEvent>) {
        let (joins, leaves) = (JsObject::from_state(&diff.joins), JsObject::from_state(&diff.leaves));
        if self.in_pending_sync_state(channel_join_ref) {
            self.pending_diffs.push((joins, leaves));
        } else {
            self.state = sync_diff(&self.state, &joins, &leaves, events);
            events.push(PresenceEvent::Sync);
        }
    }
}

/// Panics unless `state` holds exactly the model's keys, in the model's order, with equal presences.
pub fn assert_same(state: &PresenceState, model: &JsObject, context: &str) {
    let ours: Vec<(&str, &Presence)> = state.iter().collect();
    let expected = model.entries();
    let expected: Vec<(&str, &Presence)> = expected.iter().map(|(key, presence)| (key.as_str(), presence)).collect();
    assert_eq!(ours, expected, "{context}: state differs from phoenix.js");
}
