//! Presence: the `presence_state` / `presence_diff` wire shapes and the phoenix.js client algorithms over them.
//!
//! Owns [`PresenceState`] (a key → [`Presence`] map that iterates in JavaScript own-property order), [`PresenceDiff`],
//! the pure algorithms [`sync_state`], [`sync_diff`] and [`list`] with the semantics of phoenix.js `presence.js`
//! (docs/protocol.md §8), the client-side instance [`ClientPresence`] that buffers diffs until the state for the
//! current join has arrived, and the few builders the server needs to emit diffs ([`PresenceState::add_meta`],
//! [`PresenceState::remove_meta_by_ref`], [`PresenceDiff::coalesce`]).
//!
//! Does not own: tracking who is present, generating `phx_ref`s, replication between nodes (the server's `presence/`
//! module), channel event names or socket plumbing.
//!
//! Why the key order matters: phoenix.js walks presence maps with `Object.getOwnPropertyNames`, so `list()` yields
//! integer-like keys in ascending numeric order first, then the other keys in insertion order. A UI that renders
//! `list()` shows people in that order; a port that used a sorted or hashed map would reorder the room. The maps in
//! phoenix.js are null-prototype objects, so `__proto__` or `constructor` are ordinary keys; in Rust they are anyway.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, btree_map};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{META_ONLINE_AT, META_TYPING};

/// Meta field holding the unique, opaque reference of one tracked entry (16 URL-safe base64 characters in Phoenix).
pub const PHX_REF: &str = "phx_ref";

/// Meta field that an update sets to the `phx_ref` of the meta it replaces.
pub const PHX_REF_PREV: &str = "phx_ref_prev";

/// The field of a presence object that holds its metas.
const METAS: &str = "metas";

/// One tracked entry under a presence key: one per connection, so two tabs of one user are two metas under one key.
///
/// A meta is a JSON object identified by its [`PHX_REF`] field. The sync algorithms match metas by that field with
/// JavaScript's `===`, as phoenix.js does (see [`same_ref`]); a meta without `phx_ref` only matches other metas
/// without one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta(Vec<(Cow<'static, str>, Value)>);

/// Field names every tracked meta of the chat carries: held as static strings rather than one allocation per meta.
const COMMON_FIELDS: [&str; 4] = [PHX_REF, PHX_REF_PREV, META_ONLINE_AT, META_TYPING];

/// A field name, borrowed when it is a common one.
fn field_name(name: String) -> Cow<'static, str> {
    COMMON_FIELDS.iter().find(|common| **common == name).map_or(Cow::Owned(name), |common| Cow::Borrowed(*common))
}

// A meta is a small object (three fields in the chat) and one exists per connection, so it is a vector sorted by
// field name rather than a `serde_json::Map` (a B-tree whose first node alone is about 600 bytes). Sorted, it
// serializes byte for byte as the map did, and equality is field-wise.
impl Meta {
    /// An empty meta, without a `phx_ref`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A meta whose only field is `phx_ref`; add the user fields with [`Meta::with`].
    pub fn with_ref(phx_ref: impl Into<String>) -> Self {
        Self::new().with(PHX_REF, phx_ref.into())
    }

    /// Builder form of [`Meta::insert`].
    #[must_use]
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(field, value);
        self
    }

    /// Sets a field, returning its previous value.
    pub fn insert(&mut self, field: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let field = field.into();
        match self.0.binary_search_by(|(name, _)| name.as_ref().cmp(field.as_str())) {
            Ok(index) => Some(std::mem::replace(&mut self.0[index].1, value.into())),
            Err(index) => {
                // Exactly as many slots as fields: one meta per connection, rarely changed after it is built.
                self.0.reserve_exact(1);
                self.0.insert(index, (field_name(field), value.into()));
                None
            }
        }
    }

    /// The `phx_ref` of this meta, if it is a string.
    pub fn phx_ref(&self) -> Option<&str> {
        self.get(PHX_REF).and_then(Value::as_str)
    }

    /// The `phx_ref_prev` of this meta (set by updates), if it is a string.
    pub fn phx_ref_prev(&self) -> Option<&str> {
        self.get(PHX_REF_PREV).and_then(Value::as_str)
    }

    /// One field of the meta.
    pub fn get(&self, field: &str) -> Option<&Value> {
        let index = self.0.binary_search_by(|(name, _)| name.as_ref().cmp(field)).ok()?;
        Some(&self.0[index].1)
    }

    /// All fields of the meta, `phx_ref` included, ordered by name.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_ref(), value))
    }

    /// Consumes the meta into its fields.
    pub fn into_fields(self) -> Map<String, Value> {
        self.0.into_iter().map(|(name, value)| (name.into_owned(), value)).collect()
    }

    /// The identity the sync algorithms compare: the raw `phx_ref` value, absent included.
    fn identity(&self) -> Option<&Value> {
        self.get(PHX_REF)
    }
}

impl From<Map<String, Value>> for Meta {
    fn from(fields: Map<String, Value>) -> Self {
        // A map iterates in key order, so the vector comes out sorted.
        Self(fields.into_iter().map(|(name, value)| (field_name(name), value)).collect())
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(Self::from)
    }
}

/// Everything known about one presence key: its metas and the fields Phoenix `fetch/2` put beside them.
///
/// Wire shape: `{"metas": [meta, ...], ...extra}`. Deserializing requires `metas` (phoenix.js would throw without it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// The tracked entries, in the order the client algorithms keep them (surviving ones first, then joined ones).
    pub metas: Vec<Meta>,
    /// Fields beside `metas` (for example a `"user"` added by `fetch/2`), kept verbatim. An entry named `"metas"`
    /// here is never serialized, so it cannot shadow the real metas.
    pub extra: Map<String, Value>,
}

impl Presence {
    /// A presence with these metas and no extra fields.
    pub fn new(metas: Vec<Meta>) -> Self {
        Self { metas, extra: Map::new() }
    }

    /// Whether one of our metas has the same `phx_ref` as `meta`. Linear: a key holds one meta per connection of one
    /// user, so a handful, and refs are not hashable JSON values.
    fn has_ref_of(&self, meta: &Meta) -> bool {
        let wanted = meta.identity();
        self.metas.iter().any(|m| same_ref(m.identity(), wanted))
    }
}

impl Serialize for Presence {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = || self.extra.iter().filter(|(field, _)| field.as_str() != METAS);
        let mut map = serializer.serialize_map(Some(1 + extra().count()))?;
        map.serialize_entry(METAS, &self.metas)?;
        for (field, value) in extra() {
            map.serialize_entry(field, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Presence {
    // Hand-written rather than `#[serde(flatten)]`: flatten buffers every field into an intermediate representation,
    // and a big room's presence_state is the largest payload a client parses.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PresenceVisitor;

        impl<'de> Visitor<'de> for PresenceVisitor {
            type Value = Presence;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a presence object with a \"metas\" array")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Presence, A::Error> {
                let mut metas = None;
                let mut extra = Map::new();
                while let Some(field) = access.next_key::<String>()? {
                    if field == METAS {
                        if metas.is_some() {
                            return Err(de::Error::duplicate_field(METAS));
                        }
                        metas = Some(access.next_value()?);
                    } else {
                        let value = access.next_value()?;
                        extra.insert(field, value);
                    }
                }
                let metas = metas.ok_or_else(|| de::Error::missing_field(METAS))?;
                Ok(Presence { metas, extra })
            }
        }

        deserializer.deserialize_map(PresenceVisitor)
    }
}

/// Whether two `phx_ref` values are the same ref for phoenix.js, which compares them with `===` (through `indexOf`)
/// after `JSON.parse`: absent equals absent, strings, booleans and `null` by value, numbers as doubles (`1` and
/// `1.0` are one number), and an object or array never equals anything, itself included, because every parse makes a
/// new one. Comparing `serde_json` values with `==` instead would let such refs match (found by fuzzing): a meta whose
/// ref is `{}` would leave the Rust client but stay forever in phoenix.js. Servers send string refs, so the difference
/// only shows with peers that do not.
fn same_ref(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::String(a)), Some(Value::String(b))) => a == b,
        (Some(Value::Number(a)), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a == b,
        (Some(Value::Null), Some(Value::Null)) => true,
        _ => false,
    }
}

/// Where a key sits in JavaScript own-property order. The derived `Ord` puts every array index before every named
/// key, array indices by value, named keys by insertion sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Index(u32),
    Named(u64),
}

/// The array index a key denotes in JavaScript, if any: a canonical decimal (`"0"`, or no leading zero) up to
/// 2³² − 2. `"01"`, `"-1"`, `"1.0"` and `"4294967295"` are ordinary string keys.
fn array_index(key: &str) -> Option<u32> {
    match key.as_bytes() {
        [b'0'] => Some(0),
        [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {
            key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
        }
        _ => None,
    }
}

/// Presences by key (`presence_state` payload, and each half of a diff), iterating in JavaScript own-property order:
/// integer-like keys ascending, then the other keys in insertion order.
///
/// Replacing the value of an existing key keeps its position; removing a string key and adding it again moves it to
/// the end, as in JavaScript. Equality ignores order, like JSON object equality. Serializes as a JSON object in
/// iteration order; deserializing a duplicate key keeps the last value at the first position (as `JSON.parse`).
#[derive(Clone, Default)]
pub struct PresenceState {
    // Ordered entries plus a key index. Rejected: a Vec (O(n) removal in big rooms) and an insertion-ordered map alone
    // (integer-like keys would need re-sorting on every insert). The key is stored twice; keys are short names.
    entries: BTreeMap<Slot, (String, Presence)>,
    slots: HashMap<String, Slot>,
    // Insertion sequence for named keys; u64 cannot wrap in practice (one per insert).
    next_named: u64,
}

impl PresenceState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.slots.contains_key(key)
    }

    /// The presence under `key`.
    pub fn get(&self, key: &str) -> Option<&Presence> {
        let slot = self.slots.get(key)?;
        self.entries.get(slot).map(|(_, presence)| presence)
    }

    /// The presence under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Presence> {
        let slot = self.slots.get(key)?;
        self.entries.get_mut(slot).map(|(_, presence)| presence)
    }

    /// Sets the presence of `key` (JavaScript `state[key] = presence`): an existing key keeps its position and its
    /// previous presence is returned; a new key goes to its place in JavaScript order.
    pub fn insert(&mut self, key: impl Into<String>, presence: Presence) -> Option<Presence> {
        let key = key.into();
        if let Some(existing) = self.get_mut(&key) {
            return Some(std::mem::replace(existing, presence));
        }
        let slot = match array_index(&key) {
            Some(index) => Slot::Index(index),
            None => {
                self.next_named += 1;
                Slot::Named(self.next_named)
            }
        };
        self.slots.insert(key.clone(), slot);
        self.entries.insert(slot, (key, presence));
        None
    }

    /// Removes `key` (JavaScript `delete state[key]`), returning its presence.
    pub fn remove(&mut self, key: &str) -> Option<Presence> {
        let slot = self.slots.remove(key)?;
        self.entries.remove(&slot).map(|(_, presence)| presence)
    }

    /// Keys and presences in JavaScript order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { inner: self.entries.values() }
    }

    /// Keys in JavaScript order (what `Object.getOwnPropertyNames` returns in phoenix.js).
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.iter().map(|(key, _)| key)
    }

    /// Appends `meta` to the metas of `key`, creating the key if needed. The server builds diffs with it
    /// (`diff.joins.add_meta(key, meta)`) and can keep its own state with it.
    pub fn add_meta(&mut self, key: impl Into<String>, meta: Meta) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(presence) => presence.metas.push(meta),
            None => {
                self.insert(key, Presence::new(vec![meta]));
            }
        }
    }

    /// Removes the meta with this `phx_ref` from `key` and returns it; the key goes away with its last meta, as on
    /// the client.
    pub fn remove_meta_by_ref(&mut self, key: &str, phx_ref: &str) -> Option<Meta> {
        let presence = self.get_mut(key)?;
        let position = presence.metas.iter().position(|m| m.phx_ref() == Some(phx_ref))?;
        let meta = presence.metas.remove(position);
        if presence.metas.is_empty() {
            self.remove(key);
        }
        Some(meta)
    }
}

impl PartialEq for PresenceState {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(key, presence)| other.get(key) == Some(presence))
    }
}

impl Eq for PresenceState {}

impl fmt::Debug for PresenceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>> FromIterator<(K, Presence)> for PresenceState {
    fn from_iter<I: IntoIterator<Item = (K, Presence)>>(iter: I) -> Self {
        let mut state = Self::new();
        state.extend(iter);
        state
    }
}

impl<K: Into<String>> Extend<(K, Presence)> for PresenceState {
    fn extend<I: IntoIterator<Item = (K, Presence)>>(&mut self, iter: I) {
        for (key, presence) in iter {
            self.insert(key, presence);
        }
    }
}

/// Borrowing iterator over a [`PresenceState`] in JavaScript order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: btree_map::Values<'a, Slot, (String, Presence)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Presence);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(key, presence)| (key.as_str(), presence))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(key, presence)| (key.as_str(), presence))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a PresenceState {
    type Item = (&'a str, &'a Presence);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Owning iterator over a [`PresenceState`] in JavaScript order.
#[derive(Debug)]
pub struct IntoIter {
    inner: btree_map::IntoValues<Slot, (String, Presence)>,
}

impl Iterator for IntoIter {
    type Item = (String, Presence);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for PresenceState {
    type Item = (String, Presence);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { inner: self.entries.into_values() }
    }
}

impl Serialize for PresenceState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, presence) in self {
            map.serialize_entry(key, presence)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PresenceState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StateVisitor;

        impl<'de> Visitor<'de> for StateVisitor {
            type Value = PresenceState;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of presences by key")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<PresenceState, A::Error> {
                let mut state = PresenceState::new();
                while let Some((key, presence)) = access.next_entry::<String, Presence>()? {
                    state.insert(key, presence);
                }
                Ok(state)
            }
        }

        deserializer.deserialize_map(StateVisitor)
    }
}

/// The `presence_diff` payload: `{"joins": {key: presence}, "leaves": {key: presence}}`. Clients apply joins before
/// leaves, so an update (leave old ref + join new ref) ends with only the new meta.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceDiff {
    /// Presences that joined or gained metas (only the new metas).
    #[serde(default)]
    pub joins: PresenceState,
    /// Metas that left, by key.
    #[serde(default)]
    pub leaves: PresenceState,
}

impl PresenceDiff {
    /// An empty diff; fill it with `diff.joins.add_meta(..)` and `diff.leaves.add_meta(..)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the diff has neither joins nor leaves (the server skips broadcasting it).
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// Folds a later diff of the same topic into this one, so the server can broadcast one diff per window instead of
    /// one per track/untrack: per key, metas are concatenated and the later presence's extra fields win.
    ///
    /// Given unique refs, applying the coalesced diff gives the same metas as applying both in turn (tested below),
    /// because joins-before-leaves only reorders events that touch distinct refs. A join cancelled by a later leave is
    /// deliberately kept on both sides rather than dropped: a client whose `presence_state` snapshot already holds
    /// that ref needs the leave to remove it.
    pub fn coalesce(&mut self, later: PresenceDiff) {
        merge_presences(&mut self.joins, later.joins);
        merge_presences(&mut self.leaves, later.leaves);
    }
}

fn merge_presences(into: &mut PresenceState, from: PresenceState) {
    for (key, presence) in from {
        match into.get_mut(&key) {
            Some(existing) => {
                existing.metas.extend(presence.metas);
                existing.extra = presence.extra;
            }
            None => {
                into.insert(key, presence);
            }
        }
    }
}

/// Receives the callbacks of the sync algorithms and of [`ClientPresence`]; every method defaults to doing nothing.
///
/// Implemented by `()` (ignore everything) and by `Vec<PresenceEvent>` (record owned copies, handy for tests and for
/// a UI that updates its signals after the call).
pub trait PresenceObserver {
    /// phoenix.js `onJoin(key, current, newPres)`: `current` is the presence before the join (`None` for a new key),
    /// `joined` the presence as it arrived (from [`sync_state`], only the metas that are new).
    fn join(&mut self, _key: &str, _current: Option<&Presence>, _joined: &Presence) {}

    /// phoenix.js `onLeave(key, current, leftPres)`: `current` is the presence after removing the left metas (empty
    /// metas when the key is about to disappear), `left` the presence as it arrived.
    fn leave(&mut self, _key: &str, _current: &Presence, _left: &Presence) {}

    /// phoenix.js `onSync()`: [`ClientPresence`] finished applying a state or a diff.
    fn sync(&mut self) {}
}

impl PresenceObserver for () {}

/// One callback of a [`PresenceObserver`], as owned data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceEvent {
    /// See [`PresenceObserver::join`].
    Join {
        /// The presence key.
        key: String,
        /// The presence before the join, `None` for a new key.
        current: Option<Presence>,
        /// The presence as it arrived.
        joined: Presence,
    },
    /// See [`PresenceObserver::leave`].
    Leave {
        /// The presence key.
        key: String,
        /// The presence after removing the left metas.
        current: Presence,
        /// The presence as it arrived.
        left: Presence,
    },
    /// See [`PresenceObserver::sync`].
    Sync,
}

impl PresenceObserver for Vec<PresenceEvent> {
    fn join(&mut self, key: &str, current: Option<&Presence>, joined: &Presence) {
        self.push(PresenceEvent::Join { key: key.to_owned(), current: current.cloned(), joined: joined.clone() });
    }

    fn leave(&mut self, key: &str, current: &Presence, left: &Presence) {
        self.push(PresenceEvent::Leave { key: key.to_owned(), current: current.clone(), left: left.clone() });
    }

    fn sync(&mut self) {
        self.push(PresenceEvent::Sync);
    }
}

/// Adapts the two closures of [`sync_state`] / [`sync_diff`] to the observer the algorithms run on. The algorithms
/// take one observer rather than two closures because [`ClientPresence`] routes both callbacks to one `&mut`
/// observer, which two closures could not both borrow.
struct Callbacks<J, L> {
    on_join: J,
    on_leave: L,
}

impl<J, L> PresenceObserver for Callbacks<J, L>
where
    J: FnMut(&str, Option<&Presence>, &Presence),
    L: FnMut(&str, &Presence, &Presence),
{
    fn join(&mut self, key: &str, current: Option<&Presence>, joined: &Presence) {
        (self.on_join)(key, current, joined);
    }

    fn leave(&mut self, key: &str, current: &Presence, left: &Presence) {
        (self.on_leave)(key, current, left);
    }
}

/// phoenix.js `Presence.syncState`: reconciles `current` with a full `new_state` and returns the result; `current`
/// is not modified.
///
/// The states are turned into a diff (new keys and new metas join, missing keys and missing metas leave) which goes
/// through [`sync_diff`], so callbacks and meta order are those of a diff. A key whose refs did not change is left
/// untouched, even if its extra fields differ.
pub fn sync_state(
    current: &PresenceState,
    new_state: PresenceState,
    on_join: impl FnMut(&str, Option<&Presence>, &Presence),
    on_leave: impl FnMut(&str, &Presence, &Presence),
) -> PresenceState {
    let mut state = current.clone();
    apply_state(&mut state, new_state, &mut Callbacks { on_join, on_leave });
    state
}

/// phoenix.js `Presence.syncDiff`: applies `diff` to `state` and returns the result.
///
/// Joins first: a new key takes the joined presence; an existing key takes the joined presence (its extra fields
/// included) with its own metas whose refs are not being joined kept in front; `on_join(key, before, joined)`.
/// Then leaves: unknown keys are ignored without a callback; otherwise the metas with the left refs are removed,
/// `on_leave(key, after_removal, left)`, and the key is deleted once its metas are empty.
pub fn sync_diff(
    state: PresenceState,
    diff: PresenceDiff,
    on_join: impl FnMut(&str, Option<&Presence>, &Presence),
    on_leave: impl FnMut(&str, &Presence, &Presence),
) -> PresenceState {
    let mut state = state;
    apply_diff(&mut state, diff, &mut Callbacks { on_join, on_leave });
    state
}

/// phoenix.js `Presence.list`: `chooser(key, presence)` for every key, in JavaScript key order. Pass
/// `|_, p| p.clone()` for the default chooser, or pick the first meta (`p.metas.first()`) for one entry per user.
pub fn list<T>(state: &PresenceState, mut chooser: impl FnMut(&str, &Presence) -> T) -> Vec<T> {
    state.iter().map(|(key, presence)| chooser(key, presence)).collect()
}

fn apply_state<O: PresenceObserver + ?Sized>(state: &mut PresenceState, new_state: PresenceState, observer: &mut O) {
    let diff = diff_states(state, new_state);
    apply_diff(state, diff, observer);
}

/// The diff phoenix.js `syncState` builds: leaves of vanished keys (in current order), then per key of the new state
/// (in its order) the joined and the left metas.
fn diff_states(current: &PresenceState, new_state: PresenceState) -> PresenceDiff {
    let mut diff = PresenceDiff::new();
    for (key, presence) in current {
        if !new_state.contains_key(key) {
            diff.leaves.insert(key, presence.clone());
        }
    }
    for (key, mut joined) in new_state {
        let Some(existing) = current.get(&key) else {
            diff.joins.insert(key, joined);
            continue;
        };
        // Left metas are computed against every new ref, before `joined` is narrowed to the new metas.
        let left: Vec<Meta> = existing.metas.iter().filter(|m| !joined.has_ref_of(m)).cloned().collect();
        joined.metas.retain(|m| !existing.has_ref_of(m));
        if !joined.metas.is_empty() {
            diff.joins.insert(key.clone(), joined);
        }
        if !left.is_empty() {
            diff.leaves.insert(key, Presence { metas: left, extra: existing.extra.clone() });
        }
    }
    diff
}

fn apply_diff<O: PresenceObserver + ?Sized>(state: &mut PresenceState, diff: PresenceDiff, observer: &mut O) {
    for (key, joined) in diff.joins {
        // The callback sees the presence before the join; observers cannot see `state`, so calling it first is
        // indistinguishable from phoenix.js and lets the joined presence move into the state without a clone.
        observer.join(&key, state.get(&key), &joined);
        match state.get_mut(&key) {
            Some(existing) => {
                let mut metas = std::mem::take(&mut existing.metas);
                metas.retain(|m| !joined.has_ref_of(m));
                metas.extend(joined.metas);
                *existing = Presence { metas, extra: joined.extra };
            }
            None => {
                state.insert(key, joined);
            }
        }
    }
    for (key, left) in diff.leaves {
        let Some(existing) = state.get_mut(&key) else {
            continue;
        };
        existing.metas.retain(|m| !left.has_ref_of(m));
        observer.leave(&key, existing, &left);
        if existing.metas.is_empty() {
            state.remove(&key);
        }
    }
}

/// The phoenix.js `Presence` instance bound to one channel: holds the state, the diffs received before the state of
/// the current join, and the join_ref that state belongs to.
///
/// Feed it the channel's `presence_state` and `presence_diff` payloads (whatever the event names) together with the
/// channel's current join_ref; callbacks go to the [`PresenceObserver`] passed to each call. Diffs are buffered while
/// no state has arrived for the channel's current join (none yet, or the channel rejoined since) and applied right
/// after the next state, even if they predate it: replaying joins and leaves of unique refs over a newer snapshot
/// converges to the same metas. Like phoenix.js, the buffer is unbounded; the server sends the state right after the
/// join reply.
#[derive(Clone, Debug, Default)]
pub struct ClientPresence {
    state: PresenceState,
    pending_diffs: Vec<PresenceDiff>,
    join_ref: Option<String>,
}

impl ClientPresence {
    /// An empty presence with no state received.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn state(&self) -> &PresenceState {
        &self.state
    }

    /// The join_ref of the channel when the last state arrived.
    pub fn join_ref(&self) -> Option<&str> {
        self.join_ref.as_deref()
    }

    /// Diffs waiting for the next state.
    pub fn pending_diffs(&self) -> &[PresenceDiff] {
        &self.pending_diffs
    }

    /// phoenix.js `inPendingSyncState()`: no state yet, or the channel's join_ref changed since the last state.
    pub fn in_pending_sync_state(&self, channel_join_ref: Option<&str>) -> bool {
        // `!this.joinRef` in phoenix.js: an empty string counts as no join_ref too.
        match self.join_ref.as_deref() {
            Some(ours) if !ours.is_empty() => channel_join_ref != Some(ours),
            _ => true,
        }
    }

    /// Handles a `presence_state` payload: records the channel's join_ref, syncs the state, applies and clears the
    /// pending diffs, then calls `observer.sync()`.
    pub fn on_state<O: PresenceObserver + ?Sized>(
        &mut self,
        channel_join_ref: Option<&str>,
        new_state: PresenceState,
        observer: &mut O,
    ) {
        self.join_ref = channel_join_ref.map(str::to_owned);
        // Syncs in place: `sync_state` would clone the whole state first, which only matters to callers keeping the
        // old state around, and this one does not.
        apply_state(&mut self.state, new_state, observer);
        for diff in std::mem::take(&mut self.pending_diffs) {
            apply_diff(&mut self.state, diff, observer);
        }
        observer.sync();
    }

    /// Handles a `presence_diff` payload: buffers it while [`in_pending_sync_state`](Self::in_pending_sync_state)
    /// (no callback), else applies it and calls `observer.sync()`.
    pub fn on_diff<O: PresenceObserver + ?Sized>(
        &mut self,
        channel_join_ref: Option<&str>,
        diff: PresenceDiff,
        observer: &mut O,
    ) {
        if self.in_pending_sync_state(channel_join_ref) {
            self.pending_diffs.push(diff);
        } else {
            apply_diff(&mut self.state, diff, observer);
            observer.sync();
        }
    }

    /// phoenix.js `presence.list(by)`: see [`list`].
    pub fn list<T>(&self, chooser: impl FnMut(&str, &Presence) -> T) -> Vec<T> {
        list(&self.state, chooser)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(value: Value) -> PresenceState {
        serde_json::from_value(value).unwrap()
    }

    fn diff(value: Value) -> PresenceDiff {
        serde_json::from_value(value).unwrap()
    }

    fn to_json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    fn fixture_state() -> PresenceState {
        state(json!({
            "u1": {"metas": [{"id": 1, "phx_ref": "1"}]},
            "u2": {"metas": [{"id": 2, "phx_ref": "2"}]},
            "u3": {"metas": [{"id": 3, "phx_ref": "3"}]},
        }))
    }

    fn fixture_joins() -> PresenceState {
        state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1.2"}]}}))
    }

    fn fixture_leaves() -> PresenceState {
        state(json!({"u2": {"metas": [{"id": 2, "phx_ref": "2"}]}}))
    }

    fn user(n: u64) -> Value {
        json!({"metas": [{"id": n, "phx_ref": n.to_string()}]})
    }

    fn list_by_first(state: &PresenceState) -> Value {
        to_json(&list(state, |_, p| p.metas.first().cloned()))
    }

    /// Records callbacks as JSON in the shape the phoenix.js tests compare.
    #[derive(Default)]
    struct Recorder {
        joins: Vec<Value>,
        leaves: Vec<Value>,
        syncs: usize,
    }

    impl PresenceObserver for Recorder {
        fn join(&mut self, key: &str, current: Option<&Presence>, joined: &Presence) {
            self.joins.push(json!({"id": key, "current": current, "newPres": joined}));
        }

        fn leave(&mut self, key: &str, current: &Presence, left: &Presence) {
            self.leaves.push(json!({"id": key, "current": current, "leftPres": left}));
        }

        fn sync(&mut self) {
            self.syncs += 1;
        }
    }

    fn recorded_sync_state(current: &PresenceState, new_state: PresenceState, rec: &mut Recorder) -> PresenceState {
        let (joins, leaves) = (&mut rec.joins, &mut rec.leaves);
        sync_state(
            current,
            new_state,
            |k, c, n| joins.push(json!({"id": k, "current": c, "newPres": n})),
            |k, c, l| leaves.push(json!({"id": k, "current": c, "leftPres": l})),
        )
    }

    // 1. syncState / "syncs empty state"
    #[test]
    fn sync_state_syncs_empty_state() {
        let empty = PresenceState::new();
        let new_state = state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1"}]}}));
        let synced = sync_state(&empty, new_state.clone(), |_, _, _| {}, |_, _, _| {});
        assert_eq!(synced, new_state);
        assert!(empty.is_empty());
    }

    // 2. syncState / "onJoins new presences and onLeave's left presences"
    #[test]
    fn sync_state_reports_joins_and_leaves() {
        let current = state(json!({"u4": {"metas": [{"id": 4, "phx_ref": "4"}]}}));
        let mut rec = Recorder::default();
        let synced = recorded_sync_state(&current, fixture_state(), &mut rec);
        assert_eq!(synced, fixture_state());
        assert_eq!(
            rec.joins,
            vec![
                json!({"id": "u1", "current": null, "newPres": user(1)}),
                json!({"id": "u2", "current": null, "newPres": user(2)}),
                json!({"id": "u3", "current": null, "newPres": user(3)}),
            ]
        );
        assert_eq!(
            rec.leaves,
            vec![json!({"id": "u4", "current": {"metas": []}, "leftPres": {"metas": [{"id": 4, "phx_ref": "4"}]}})]
        );
        assert_eq!(current.keys().collect::<Vec<_>>(), ["u4"], "current is not mutated");
    }

    // 3. syncState / "onJoins only newly added metas"
    #[test]
    fn a_meta_encodes_like_a_json_object_with_sorted_fields() {
        let mut meta =
            Meta::with_ref("r1").with("typing", false).with("online_at", 5).with("zebra", 1).with("app", "x");
        assert_eq!(meta.insert("typing", true), Some(Value::Bool(false)));
        let text = serde_json::to_string(&meta).unwrap();
        assert_eq!(text, r#"{"app":"x","online_at":5,"phx_ref":"r1","typing":true,"zebra":1}"#);
        let back: Meta =
            serde_json::from_str(r#"{"zebra":1,"typing":true,"phx_ref":"r1","online_at":5,"app":"x"}"#).unwrap();
        assert_eq!(back, meta, "field order on the wire does not matter");
        assert_eq!(back.get("online_at"), Some(&Value::from(5)));
        assert_eq!(back.get("missing"), None);
        assert_eq!(
            back.fields().map(|(name, _)| name).collect::<Vec<_>>(),
            ["app", "online_at", "phx_ref", "typing", "zebra"]
        );
        assert!(matches!(back.0[1].0, Cow::Borrowed(_)), "common field names are not allocated per meta");
        assert_eq!(Meta::from(back.clone().into_fields()), back);
    }

    #[test]
    fn sync_state_joins_only_new_metas() {
        let current = state(json!({"u3": {"metas": [{"id": 3, "phx_ref": "3"}]}}));
        let new_state = state(json!({"u3": {"metas": [{"id": 3, "phx_ref": "3"}, {"id": 3, "phx_ref": "3.new"}]}}));
        let mut rec = Recorder::default();
        let synced = recorded_sync_state(&current, new_state.clone(), &mut rec);
        assert_eq!(synced, new_state);
        assert_eq!(
            rec.joins,
            vec![json!({
                "id": "u3",
                "current": {"metas": [{"id": 3, "phx_ref": "3"}]},
                "newPres": {"metas": [{"id": 3, "phx_ref": "3.new"}]},
            })]
        );
        assert!(rec.leaves.is_empty());
    }

    // 4. syncDiff / "syncs empty state"
    #[test]
    fn sync_diff_syncs_empty_state() {
        let joins = state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1"}]}}));
        let diff = PresenceDiff { joins: joins.clone(), leaves: PresenceState::new() };
        let synced = sync_diff(PresenceState::new(), diff, |_, _, _| {}, |_, _, _| {});
        assert_eq!(synced, joins);
    }

    // 5. syncDiff / "removes presence when meta is empty and adds additional meta"
    #[test]
    fn sync_diff_removes_empty_presence_and_adds_meta() {
        let diff = PresenceDiff { joins: fixture_joins(), leaves: fixture_leaves() };
        let synced = sync_diff(fixture_state(), diff, |_, _, _| {}, |_, _, _| {});
        assert_eq!(
            synced,
            state(json!({
                "u1": {"metas": [{"id": 1, "phx_ref": "1"}, {"id": 1, "phx_ref": "1.2"}]},
                "u3": {"metas": [{"id": 3, "phx_ref": "3"}]},
            }))
        );
        assert_eq!(
            to_json(&synced.get("u1").unwrap().metas),
            json!([{"id": 1, "phx_ref": "1"}, {"id": 1, "phx_ref": "1.2"}])
        );
    }

    // 6. syncDiff / "removes meta while leaving key if other metas exist"
    #[test]
    fn sync_diff_removes_meta_but_keeps_key() {
        let current = state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1"}, {"id": 1, "phx_ref": "1.2"}]}}));
        let d = diff(json!({"joins": {}, "leaves": {"u1": {"metas": [{"id": 1, "phx_ref": "1"}]}}}));
        let synced = sync_diff(current, d, |_, _, _| {}, |_, _, _| {});
        assert_eq!(synced, state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1.2"}]}})));
    }

    // 7. prototype keys / syncState
    #[test]
    fn prototype_keys_are_ordinary_keys_in_sync_state() {
        let new_state: PresenceState = serde_json::from_str(
            r#"{"__proto__":{"metas":[{"id":1,"phx_ref":"1"}]},
                "constructor":{"metas":[{"id":2,"phx_ref":"2"}]},
                "hasOwnProperty":{"metas":[{"id":3,"phx_ref":"3"}]}}"#,
        )
        .unwrap();
        let mut joined = Vec::new();
        let synced = sync_state(&PresenceState::new(), new_state, |k, _, _| joined.push(k.to_owned()), |_, _, _| {});
        assert_eq!(joined, ["__proto__", "constructor", "hasOwnProperty"]);
        assert_eq!(
            list(&synced, |_, p| p.metas[0].get("id").cloned()),
            [Some(json!(1)), Some(json!(2)), Some(json!(3))]
        );
        assert!(synced.get("metas").is_none() && synced.get("toString").is_none());

        let mut left = Vec::new();
        let emptied = sync_state(&synced, PresenceState::new(), |_, _, _| {}, |k, _, _| left.push(k.to_owned()));
        assert_eq!(left, ["__proto__", "constructor", "hasOwnProperty"]);
        assert!(list(&emptied, |k, _| k.to_owned()).is_empty());
    }

    // 8. prototype keys / syncDiff
    #[test]
    fn prototype_keys_are_ordinary_keys_in_sync_diff() {
        let joined = diff(json!({"joins": {"__proto__": {"metas": [{"id": 1, "phx_ref": "1"}]}}, "leaves": {}}));
        let synced = sync_diff(PresenceState::new(), joined, |_, _, _| {}, |_, _, _| {});
        let pairs = |s: &PresenceState| list(s, |k, p| json!([k, p.metas[0].get("id")]));
        assert_eq!(pairs(&synced), [json!(["__proto__", 1])]);

        let left = diff(json!({"joins": {}, "leaves": {"__proto__": {"metas": [{"id": 1, "phx_ref": "1"}]}}}));
        let emptied = sync_diff(synced, left, |_, _, _| {}, |_, _, _| {});
        assert!(pairs(&emptied).is_empty());
    }

    // Companion of 7/8: JavaScript own-property order through parse, sync and list.
    #[test]
    fn integer_like_keys_list_first_in_numeric_order() {
        let parsed: PresenceState = serde_json::from_str(
            r#"{"10":{"metas":[{"phx_ref":"a"}]},"2":{"metas":[{"phx_ref":"b"}]},
                "b":{"metas":[{"phx_ref":"c"}]},"a":{"metas":[{"phx_ref":"d"}]}}"#,
        )
        .unwrap();
        let synced = sync_state(&PresenceState::new(), parsed, |_, _, _| {}, |_, _, _| {});
        assert_eq!(list(&synced, |k, _| k.to_owned()), ["2", "10", "b", "a"]);
        assert_eq!(
            serde_json::to_string(&synced).unwrap(),
            r#"{"2":{"metas":[{"phx_ref":"b"}]},"10":{"metas":[{"phx_ref":"a"}]},"b":{"metas":[{"phx_ref":"c"}]},"a":{"metas":[{"phx_ref":"d"}]}}"#
        );
    }

    // 9. list / "lists full presence by default"
    #[test]
    fn list_full_presences() {
        assert_eq!(to_json(&list(&fixture_state(), |_, p| p.clone())), json!([user(1), user(2), user(3)]));
    }

    // 10. list / "lists with custom function"
    #[test]
    fn list_with_custom_chooser() {
        let s = state(json!({"u1": {"metas": [{"id": 1, "phx_ref": "1.first"}, {"id": 1, "phx_ref": "1.second"}]}}));
        assert_eq!(list_by_first(&s), json!([{"id": 1, "phx_ref": "1.first"}]));
    }

    // 11. instance / "syncs state and diffs"
    #[test]
    fn instance_syncs_state_and_diffs() {
        let mut presence = ClientPresence::new();
        let mut rec = Recorder::default();
        presence.on_state(Some("1"), state(json!({"u1": user(1), "u2": user(2)})), &mut rec);
        assert_eq!(list_by_first(presence.state()), json!([{"id": 1, "phx_ref": "1"}, {"id": 2, "phx_ref": "2"}]));
        presence.on_diff(Some("1"), diff(json!({"joins": {}, "leaves": {"u1": user(1)}})), &mut rec);
        assert_eq!(to_json(&presence.list(|_, p| p.metas.first().cloned())), json!([{"id": 2, "phx_ref": "2"}]));
        assert_eq!(rec.syncs, 2);
    }

    // 12. instance / "applies pending diff if state is not yet synced"
    #[test]
    fn instance_applies_pending_diffs_after_state() {
        let mut presence = ClientPresence::new();
        let mut rec = Recorder::default();
        let mut channel_join_ref = String::from("1");

        let leave_u2 = diff(json!({"joins": {}, "leaves": {"u2": user(2)}}));
        presence.on_diff(Some(&channel_join_ref), leave_u2.clone(), &mut rec);
        assert_eq!(list_by_first(presence.state()), json!([]));
        assert_eq!(presence.pending_diffs(), [leave_u2]);
        assert_eq!(rec.syncs, 0);

        presence.on_state(Some(&channel_join_ref), state(json!({"u1": user(1), "u2": user(2)})), &mut rec);
        assert_eq!(
            rec.leaves,
            vec![json!({"id": "u2", "current": {"metas": []}, "leftPres": {"metas": [{"id": 2, "phx_ref": "2"}]}})]
        );
        assert_eq!(list_by_first(presence.state()), json!([{"id": 1, "phx_ref": "1"}]));
        assert!(presence.pending_diffs().is_empty());
        assert_eq!(
            rec.joins,
            vec![
                json!({"id": "u1", "current": null, "newPres": user(1)}),
                json!({"id": "u2", "current": null, "newPres": user(2)}),
            ]
        );

        // simulateDisconnectAndReconnect: the channel rejoins with a new join_ref.
        channel_join_ref = String::from("2");
        assert!(presence.in_pending_sync_state(Some(&channel_join_ref)));
        presence.on_diff(Some(&channel_join_ref), diff(json!({"joins": {}, "leaves": {"u1": user(1)}})), &mut rec);
        assert_eq!(list_by_first(presence.state()), json!([{"id": 1, "phx_ref": "1"}]));

        presence.on_state(Some(&channel_join_ref), state(json!({"u1": user(1), "u3": user(3)})), &mut rec);
        assert_eq!(list_by_first(presence.state()), json!([{"id": 3, "phx_ref": "3"}]));
        assert_eq!(presence.join_ref(), Some("2"));
    }

    // 13. instance / "allows custom channel events": the instance takes payloads, not event names, so the channel
    // binding decides which events feed it.
    #[test]
    fn instance_is_fed_by_any_channel_events() {
        fn deliver(presence: &mut ClientPresence, event: &str, payload: Value) {
            match event {
                "the_state" => presence.on_state(Some("1"), state(payload), &mut ()),
                "the_diff" => presence.on_diff(Some("1"), diff(payload), &mut ()),
                _ => {}
            }
        }
        let mut presence = ClientPresence::new();
        deliver(&mut presence, "the_state", json!({"user1": user(1)}));
        assert_eq!(list_by_first(presence.state()), json!([{"id": 1, "phx_ref": "1"}]));
        deliver(&mut presence, "presence_diff", json!({"joins": {}, "leaves": {"user1": user(1)}}));
        assert_eq!(list_by_first(presence.state()), json!([{"id": 1, "phx_ref": "1"}]));
        deliver(&mut presence, "the_diff", json!({"joins": {}, "leaves": {"user1": user(1)}}));
        assert_eq!(list_by_first(presence.state()), json!([]));
    }

    // 14. instance / "updates existing meta for a presence update (leave + join)"
    #[test]
    fn instance_applies_update_as_leave_plus_join() {
        let mut presence = ClientPresence::new();
        let mut events = Vec::new();
        let u2 = json!({"metas": [{"id": 2, "name": "chris", "phx_ref": "2"}]});
        let u2_updated = json!({"metas": [{"id": 2, "name": "chris.2", "phx_ref": "2.2", "phx_ref_prev": "2"}]});
        presence.on_state(Some("1"), state(json!({"u1": user(1), "u2": u2})), &mut ());
        presence.on_diff(Some("1"), diff(json!({"joins": {"u2": u2_updated}, "leaves": {"u2": u2}})), &mut events);
        assert_eq!(
            to_json(&presence.list(|_, p| p.metas.clone())),
            json!([[{"id": 1, "phx_ref": "1"}], [{"id": 2, "name": "chris.2", "phx_ref": "2.2", "phx_ref_prev": "2"}]])
        );
        assert_eq!(
            events,
            vec![
                PresenceEvent::Join {
                    key: "u2".into(),
                    current: Some(serde_json::from_value(u2.clone()).unwrap()),
                    joined: serde_json::from_value(u2_updated).unwrap(),
                },
                PresenceEvent::Leave {
                    key: "u2".into(),
                    current: presence.state().get("u2").cloned().unwrap(),
                    left: serde_json::from_value(u2).unwrap(),
                },
                PresenceEvent::Sync,
            ]
        );
        assert_eq!(presence.state().get("u2").unwrap().metas[0].phx_ref_prev(), Some("2"));
    }

    #[test]
    fn array_indices_follow_javascript() {
        for key in ["0", "7", "10", "4294967294"] {
            assert!(array_index(key).is_some(), "{key}");
        }
        for key in ["", "01", "00", "-1", "+1", "1.0", " 1", "4294967295", "99999999999", "1a", "é"] {
            assert_eq!(array_index(key), None, "{key}");
        }
        let s: PresenceState = ["b", "4294967295", "4294967294", "01", "1", "a", "0"]
            .into_iter()
            .map(|k| (k, Presence::default()))
            .collect();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["0", "1", "4294967294", "b", "4294967295", "01", "a"]);
    }

    #[test]
    fn replacing_keeps_position_and_readding_moves_to_end() {
        let mut s: PresenceState = ["a", "b", "c", "5"].into_iter().map(|k| (k, Presence::default())).collect();
        assert!(s.insert("a", Presence::new(vec![Meta::with_ref("x")])).is_some());
        assert_eq!(s.keys().collect::<Vec<_>>(), ["5", "a", "b", "c"]);
        s.remove("a");
        s.remove("5");
        s.insert("a", Presence::default());
        s.insert("5", Presence::default());
        assert_eq!(s.keys().collect::<Vec<_>>(), ["5", "b", "c", "a"]);
        assert_eq!(s.keys().rev().collect::<Vec<_>>(), ["a", "c", "b", "5"]);
    }

    #[test]
    fn sync_diff_rejoin_moves_key_to_end_like_javascript() {
        let s = state(json!({"a": user(1), "b": user(2)}));
        let s = sync_diff(s, diff(json!({"leaves": {"a": user(1)}})), |_, _, _| {}, |_, _, _| {});
        let s = sync_diff(s, diff(json!({"joins": {"a": user(3)}})), |_, _, _| {}, |_, _, _| {});
        assert_eq!(s.keys().collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn duplicate_json_keys_keep_first_position_and_last_value() {
        let s: PresenceState =
            serde_json::from_str(r#"{"a":{"metas":[]},"b":{"metas":[]},"a":{"metas":[{"phx_ref":"2"}]}}"#).unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(s.get("a").unwrap().metas[0].phx_ref(), Some("2"));
    }

    #[test]
    fn presence_extra_fields_round_trip_and_come_from_the_join() {
        let raw = json!({"u1": {"metas": [{"phx_ref": "1"}], "user": {"name": "alice"}}});
        let s = state(raw.clone());
        assert_eq!(s.get("u1").unwrap().extra.get("user"), Some(&json!({"name": "alice"})));
        assert_eq!(to_json(&s), raw);

        let joined = diff(json!({"joins": {"u1": {"metas": [{"phx_ref": "2"}], "user": {"name": "alice2"}}}}));
        let s = sync_diff(s, joined, |_, _, _| {}, |_, _, _| {});
        assert_eq!(
            to_json(&s),
            json!({"u1": {"metas": [{"phx_ref": "1"}, {"phx_ref": "2"}], "user": {"name": "alice2"}}})
        );
    }

    #[test]
    fn sync_state_leaves_unchanged_refs_untouched_even_if_extras_differ() {
        let current = state(json!({"u1": {"metas": [{"phx_ref": "1"}], "user": "old"}}));
        let new_state = state(json!({"u1": {"metas": [{"phx_ref": "1"}], "user": "new"}}));
        let mut calls = 0;
        let synced = sync_state(&current, new_state, |_, _, _| calls += 1, |_, _, _| {});
        assert_eq!(synced, current);
        assert_eq!(calls, 0);
    }

    // Found by the presence_sync fuzz target: `==` on JSON values let object refs match, and told `1` from `1.0`.
    #[test]
    fn metas_with_large_floats_survive_a_json_round_trip() {
        // Found by the presence_wire fuzz target: without serde_json's exactly rounded float parsing, an integer too
        // large for 64 bits was read one ulp off, so serializing and parsing it again gave another number
        // (JavaScript's JSON.parse rounds exactly).
        let text = r#"{"u2":{"metas":[{"id":25555555555755555555555555555555555555555,"phx_ref":"2"}]}}"#;
        let state: PresenceState = serde_json::from_str(text).unwrap();
        let again: PresenceState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(again, state);
    }

    #[test]
    fn refs_compare_like_javascript_strict_equality() {
        let current = state(json!({
            "a": {"metas": [{"phx_ref": {}, "n": 1}, {"phx_ref": [1], "n": 2}, {"phx_ref": 1, "n": 3}]},
        }));
        let leave = diff(json!({"leaves": {"a": {"metas": [{"phx_ref": {}}, {"phx_ref": [1]}, {"phx_ref": 1.0}]}}}));
        let after = sync_diff(current.clone(), leave, |_, _, _| {}, |_, _, _| {});
        // phoenix.js: `{} === {}` is false, so object and array refs never leave; `1 === 1.0` is true.
        assert_eq!(to_json(&after), json!({"a": {"metas": [{"phx_ref": {}, "n": 1}, {"phx_ref": [1], "n": 2}]}}));

        // syncState sees the same refs: the object ref counts as left and the new one as joined, so both stay.
        let same = state(json!({"a": {"metas": [{"phx_ref": {}, "n": 1}]}}));
        let synced = sync_state(&same, same.clone(), |_, _, _| {}, |_, _, _| {});
        assert_eq!(to_json(&synced), json!({"a": {"metas": [{"phx_ref": {}, "n": 1}, {"phx_ref": {}, "n": 1}]}}));
        let number = state(json!({"a": {"metas": [{"phx_ref": 2, "n": 1}]}}));
        let float = state(json!({"a": {"metas": [{"phx_ref": 2.0, "n": 9}]}}));
        let synced = sync_state(&number, float, |_, _, _| panic!("no join"), |_, _, _| panic!("no leave"));
        assert_eq!(synced, number, "2 and 2.0 are the same ref, so nothing changed");
        // Absent refs still match each other, and null only null.
        assert!(same_ref(None, None) && same_ref(Some(&Value::Null), Some(&Value::Null)));
        assert!(!same_ref(None, Some(&Value::Null)) && !same_ref(Some(&json!("1")), Some(&json!(1))));
    }

    #[test]
    fn leaves_of_unknown_keys_are_ignored() {
        let mut left = 0;
        let s =
            sync_diff(fixture_state(), diff(json!({"leaves": {"nobody": user(9)}})), |_, _, _| {}, |_, _, _| left += 1);
        assert_eq!(s, fixture_state());
        assert_eq!(left, 0);
    }

    #[test]
    fn malformed_presences_are_errors_not_panics() {
        assert!(serde_json::from_str::<PresenceState>(r#"{"u1":{"user":"x"}}"#).is_err());
        assert!(serde_json::from_str::<PresenceState>(r#"{"u1":{"metas":[1]}}"#).is_err());
        assert!(serde_json::from_str::<PresenceState>(r#"{"u1":{"metas":[],"metas":[]}}"#).is_err());
        assert!(serde_json::from_str::<PresenceState>("[]").is_err());
        assert!(serde_json::from_str::<PresenceDiff>(r#"{"joins":{}}"#).unwrap().is_empty());
    }

    #[test]
    fn extra_named_metas_is_not_serialized() {
        let mut p = Presence::new(vec![Meta::with_ref("1")]);
        p.extra.insert("metas".into(), json!("shadow"));
        p.extra.insert("user".into(), json!("u"));
        assert_eq!(to_json(&p), json!({"metas": [{"phx_ref": "1"}], "user": "u"}));
    }

    #[test]
    fn server_builders_make_wire_diffs() {
        let mut server = PresenceState::new();
        let meta = Meta::with_ref("r1").with("online_at", 1_763_780_000_000_u64).with("typing", false);
        server.add_meta("alice", meta.clone());
        let mut d = PresenceDiff::new();
        assert!(d.is_empty());
        d.joins.add_meta("alice", meta.clone());
        assert!(!d.is_empty());
        assert_eq!(
            to_json(&d),
            json!({"joins": {"alice": {"metas": [{"phx_ref": "r1", "online_at": 1_763_780_000_000_u64, "typing": false}]}}, "leaves": {}})
        );
        assert_eq!(server.remove_meta_by_ref("alice", "nope"), None);
        assert_eq!(server.remove_meta_by_ref("bob", "r1"), None);
        assert_eq!(server.remove_meta_by_ref("alice", "r1"), Some(meta));
        assert!(server.is_empty());
    }

    #[test]
    fn coalesce_concatenates_per_key_and_later_extras_win() {
        let mut d = diff(json!({"joins": {"a": {"metas": [{"phx_ref": "1"}], "v": 1}}, "leaves": {}}));
        d.coalesce(diff(json!({
            "joins": {"a": {"metas": [{"phx_ref": "2"}], "v": 2}, "b": {"metas": [{"phx_ref": "3"}]}},
            "leaves": {"a": {"metas": [{"phx_ref": "1"}]}},
        })));
        assert_eq!(
            d,
            diff(json!({
                "joins": {"a": {"metas": [{"phx_ref": "1"}, {"phx_ref": "2"}], "v": 2}, "b": {"metas": [{"phx_ref": "3"}]}},
                "leaves": {"a": {"metas": [{"phx_ref": "1"}]}},
            }))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::Index;

        /// Keys that stress JavaScript ordering: array indices, near-misses, and former prototype collisions.
        const KEYS: &[&str] = &["alice", "bob", "10", "2", "0", "01", "__proto__", "4294967295", "constructor"];

        #[derive(Clone, Debug)]
        enum Op {
            Join(usize),
            Leave(Index),
            Update(Index),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0..KEYS.len()).prop_map(Op::Join),
                2 => any::<Index>().prop_map(Op::Leave),
                2 => any::<Index>().prop_map(Op::Update),
            ]
        }

        /// A server that tracks presences with unique refs and emits one diff per operation, like Phoenix.Tracker.
        #[derive(Default)]
        struct Server {
            state: PresenceState,
            next_ref: u64,
        }

        impl Server {
            fn fresh_ref(&mut self) -> String {
                self.next_ref += 1;
                format!("ref{}", self.next_ref)
            }

            fn pick(&self, index: &Index) -> Option<(String, String)> {
                let live: Vec<(String, String)> = self
                    .state
                    .iter()
                    .flat_map(|(k, p)| p.metas.iter().map(move |m| (k.to_owned(), m.phx_ref().unwrap().to_owned())))
                    .collect();
                (!live.is_empty()).then(|| live[index.index(live.len())].clone())
            }

            fn apply(&mut self, op: &Op) -> PresenceDiff {
                let mut diff = PresenceDiff::new();
                match op {
                    Op::Join(k) => {
                        let meta = Meta::with_ref(self.fresh_ref()).with("typing", false);
                        self.state.add_meta(KEYS[*k], meta.clone());
                        diff.joins.add_meta(KEYS[*k], meta);
                    }
                    Op::Leave(index) => {
                        if let Some((key, r)) = self.pick(index) {
                            let meta = self.state.remove_meta_by_ref(&key, &r).unwrap();
                            diff.leaves.add_meta(key, meta);
                        }
                    }
                    Op::Update(index) => {
                        if let Some((key, r)) = self.pick(index) {
                            let old = self.state.remove_meta_by_ref(&key, &r).unwrap();
                            let typing = old.get("typing").and_then(Value::as_bool).unwrap_or(false);
                            let new = old
                                .clone()
                                .with(PHX_REF, self.fresh_ref())
                                .with(PHX_REF_PREV, r)
                                .with("typing", !typing);
                            self.state.add_meta(key.clone(), new.clone());
                            diff.joins.add_meta(key.clone(), new);
                            diff.leaves.add_meta(key, old);
                        }
                    }
                }
                diff
            }
        }

        /// Runs the ops; returns the diffs and the snapshots (snapshot `i` = server state after `i` diffs).
        fn run(ops: &[Op]) -> (Vec<PresenceDiff>, Vec<PresenceState>) {
            let mut server = Server::default();
            let mut snapshots = vec![server.state.clone()];
            let mut diffs = Vec::new();
            for op in ops {
                diffs.push(server.apply(op));
                snapshots.push(server.state.clone());
            }
            (diffs, snapshots)
        }

        type Shape = BTreeMap<String, BTreeMap<String, Meta>>;

        /// Key → (ref → meta): what must agree whatever the order of keys and metas.
        fn shape(state: &PresenceState) -> Shape {
            state
                .iter()
                .map(|(key, p)| {
                    let metas: BTreeMap<String, Meta> =
                        p.metas.iter().map(|m| (m.phx_ref().unwrap().to_owned(), m.clone())).collect();
                    assert_eq!(metas.len(), p.metas.len(), "duplicate ref under {key}");
                    assert!(!metas.is_empty(), "empty presence left under {key}");
                    (key.to_owned(), metas)
                })
                .collect()
        }

        fn apply_all(start: PresenceState, diffs: &[PresenceDiff]) -> PresenceState {
            diffs.iter().cloned().fold(start, |s, d| sync_diff(s, d, |_, _, _| {}, |_, _, _| {}))
        }

        fn coalesced(diffs: &[PresenceDiff]) -> PresenceDiff {
            diffs.iter().cloned().fold(PresenceDiff::new(), |mut acc, d| {
                acc.coalesce(d);
                acc
            })
        }

        proptest! {
            #[test]
            fn diffs_one_by_one_equal_sync_state_from_empty(ops in prop::collection::vec(op(), 0..60)) {
                let (diffs, snapshots) = run(&ops);
                let server_final = snapshots.last().unwrap();
                let by_diffs = apply_all(PresenceState::new(), &diffs);
                let by_state = sync_state(&PresenceState::new(), server_final.clone(), |_, _, _| {}, |_, _, _| {});
                prop_assert_eq!(shape(&by_diffs), shape(&by_state));
                prop_assert_eq!(shape(&by_diffs), shape(server_final));
                prop_assert_eq!(by_state.keys().collect::<Vec<_>>(), server_final.keys().collect::<Vec<_>>());
            }

            #[test]
            fn coalesced_diffs_equal_one_by_one_from_any_snapshot(
                ops in prop::collection::vec(op(), 1..50),
                start in any::<Index>(),
                bounds in (any::<Index>(), any::<Index>()),
            ) {
                let (diffs, snapshots) = run(&ops);
                let start = start.index(snapshots.len());
                let (x, y) = (bounds.0.index(diffs.len() + 1), bounds.1.index(diffs.len() + 1));
                let (from, to) = (x.min(y), x.max(y));
                let window = &diffs[from..to];

                let one_by_one = apply_all(snapshots[start].clone(), window);
                let merged = sync_diff(snapshots[start].clone(), coalesced(window), |_, _, _| {}, |_, _, _| {});
                prop_assert_eq!(shape(&one_by_one), shape(&merged));
                // A snapshot inside the window (the state overtook some diffs) still converges to the server state.
                if (from..=to).contains(&start) {
                    prop_assert_eq!(shape(&merged), shape(&snapshots[to]));
                }
            }

            #[test]
            fn client_presence_converges_whatever_the_state_overtook(
                ops in prop::collection::vec(op(), 0..50),
                first_seen in any::<Index>(),
                state_at in any::<Index>(),
            ) {
                let (diffs, snapshots) = run(&ops);
                // The client subscribes before diff `first_seen` and gets the snapshot taken at `state_at` >= it.
                let first_seen = first_seen.index(diffs.len() + 1);
                let state_at = first_seen + state_at.index(diffs.len() + 1 - first_seen);
                let mut client = ClientPresence::new();
                let mut events = Vec::new();
                for d in &diffs[first_seen..state_at] {
                    client.on_diff(Some("1"), d.clone(), &mut events);
                }
                prop_assert_eq!(client.pending_diffs().len(), state_at - first_seen);
                prop_assert!(events.is_empty());
                client.on_state(Some("1"), snapshots[state_at].clone(), &mut events);
                for d in &diffs[state_at..] {
                    client.on_diff(Some("1"), d.clone(), &mut events);
                }
                prop_assert_eq!(shape(client.state()), shape(snapshots.last().unwrap()));
                let syncs = events.iter().filter(|e| **e == PresenceEvent::Sync).count();
                prop_assert_eq!(syncs, 1 + diffs.len() - state_at);
            }

            #[test]
            fn key_order_matches_a_javascript_model(
                ops in prop::collection::vec((any::<bool>(), prop_oneof![
                    prop::sample::select(KEYS).prop_map(str::to_owned),
                    "[0-9]{1,11}",
                    "[a-c_]{1,2}",
                ]), 0..80),
            ) {
                let mut state = PresenceState::new();
                let mut insertion_order: Vec<String> = Vec::new();
                for (insert, key) in ops {
                    if insert {
                        state.insert(key.clone(), Presence::new(vec![Meta::with_ref(key.clone())]));
                        if !insertion_order.contains(&key) {
                            insertion_order.push(key);
                        }
                    } else {
                        state.remove(&key);
                        insertion_order.retain(|k| *k != key);
                    }
                }
                let index_of = |k: &str| k.parse::<u64>().ok().filter(|n| n.to_string() == k && *n < 4_294_967_295);
                let mut expected: Vec<&String> = insertion_order.iter().filter(|k| index_of(k).is_some()).collect();
                expected.sort_by_key(|k| index_of(k));
                expected.extend(insertion_order.iter().filter(|k| index_of(k).is_none()));
                prop_assert_eq!(state.keys().collect::<Vec<_>>(), expected);

                let reparsed: PresenceState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
                prop_assert_eq!(reparsed.keys().collect::<Vec<_>>(), state.keys().collect::<Vec<_>>());
                prop_assert_eq!(reparsed, state);
            }
        }
    }
}
