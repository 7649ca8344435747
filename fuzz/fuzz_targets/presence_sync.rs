//! The presence algorithms (`protocol::presence`: `sync_state`, `sync_diff`, `ClientPresence`, the server's diff
//! builders and `PresenceDiff::coalesce`, plus the client's `ChannelPresence`) driven by generated steps over small
//! alphabets of keys and refs, so that collisions (same key, same ref, refs of every JSON type, JavaScript
//! array-index keys such as `"7"` next to `"01"` and `"4294967295"`) are the common case.
//!
//! Every step is checked against the phoenix.js reference model (`parley_fuzz::js_presence`: result, key order,
//! callbacks) and against invariants that hold whatever the model says:
//!
//! * `sync_state(a, b)` leaves `a` alone, keeps exactly the keys of `b` that have metas and their refs, and equals
//!   applying the diff a server would compute between `a` and `b`;
//! * `sync_diff` never invents entries: a diff without joins only removes metas; joined metas are present unless
//!   left in the same diff, left refs are gone, and the callbacks report exactly that;
//! * no key with an empty meta list survives unless one arrived that way;
//! * a state serializes and parses back equal, in the same order;
//! * `ChannelPresence` (fed JSON payloads) and `ClientPresence` agree event for event;
//! * server-side, the diffs of tracks, untracks and updates with fresh refs rebuild the server's state from empty,
//!   one by one or coalesced, and `sync_state` from empty gives the same.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parley_fuzz::channel_presence::ChannelPresence;
use parley_fuzz::js_presence::{self, JsClient, JsObject, js_strict_eq};
use protocol::events::{PRESENCE_DIFF, PRESENCE_STATE};
use protocol::frame::Payload;
use protocol::presence::{
    ClientPresence, Meta, PHX_REF, PHX_REF_PREV, Presence, PresenceDiff, PresenceEvent, PresenceState, sync_diff,
    sync_state,
};
use protocol::typed::from_json;
use serde_json::{Value, json};

const KEYS: [&str; 12] =
    ["alice", "bob", "carol", "0", "1", "7", "10", "01", "-1", "4294967294", "4294967295", "__proto__"];
const JOIN_REFS: [Option<&str>; 4] = [None, Some("1"), Some("2"), Some("")];

#[derive(Arbitrary, Debug)]
enum RefSpec {
    Text(u8),
    Absent,
    Null,
    Int(u8),
    Float(u8),
    Object,
}

#[derive(Arbitrary, Debug)]
struct MetaSpec {
    phx_ref: RefSpec,
    n: u8,
}

#[derive(Arbitrary, Debug)]
struct PresenceSpec {
    key: u8,
    metas: Vec<MetaSpec>,
    extra: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct DiffSpec {
    joins: Vec<PresenceSpec>,
    leaves: Vec<PresenceSpec>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    SyncState(Vec<PresenceSpec>),
    SyncDiff(DiffSpec),
    ChannelState { join_ref: u8, state: Vec<PresenceSpec> },
    ChannelDiff { join_ref: u8, diff: DiffSpec },
    Track { key: u8, n: u8 },
    Untrack { pick: u8 },
    Update { pick: u8, n: u8 },
}

fn meta(spec: &MetaSpec) -> Meta {
    let meta = Meta::new().with("n", spec.n);
    let phx_ref = match spec.phx_ref {
        RefSpec::Text(n) => json!(format!("r{}", n % 6)),
        RefSpec::Absent => return meta,
        RefSpec::Null => Value::Null,
        RefSpec::Int(n) => json!(n % 4),
        RefSpec::Float(n) => json!(f64::from(n % 4)),
        RefSpec::Object => json!({}),
    };
    meta.with(PHX_REF, phx_ref)
}

fn state(specs: &[PresenceSpec]) -> PresenceState {
    let mut state = PresenceState::new();
    for spec in specs {
        let mut presence = Presence::new(spec.metas.iter().map(meta).collect());
        if let Some(extra) = spec.extra {
            presence.extra.insert("user".into(), json!(extra));
        }
        state.insert(KEYS[usize::from(spec.key) % KEYS.len()], presence);
    }
    state
}

fn diff(spec: &DiffSpec) -> PresenceDiff {
    PresenceDiff { joins: state(&spec.joins), leaves: state(&spec.leaves) }
}

fn matches(a: &Meta, b: &Meta) -> bool {
    js_strict_eq(a.get(PHX_REF), b.get(PHX_REF))
}

fn has_object_ref(state: &PresenceState) -> bool {
    state.iter().any(|(_, p)| p.metas.iter().any(|m| matches!(m.get(PHX_REF), Some(Value::Object(_)))))
}

fn has_empty(state: &PresenceState) -> bool {
    state.iter().any(|(_, presence)| presence.metas.is_empty())
}

/// Parses back equal and in the same key order.
fn check_serde(state: &PresenceState) {
    let text = serde_json::to_string(state).expect("a state serializes");
    let again: PresenceState = serde_json::from_str(&text).expect("a serialized state parses");
    assert_eq!(&again, state);
    assert!(again.keys().eq(state.keys()), "key order survives JSON");
}

/// The diff a server would send to go from `from` to `to`, built with the server's builders.
fn server_diff(from: &PresenceState, to: &PresenceState) -> PresenceDiff {
    let mut diff = PresenceDiff::new();
    for (key, presence) in to {
        let old = from.get(key).map_or(&[][..], |p| &p.metas[..]);
        for m in presence.metas.iter().filter(|m| !old.iter().any(|o| matches(m, o))) {
            diff.joins.add_meta(key, m.clone());
        }
    }
    for (key, presence) in from {
        let new = to.get(key).map_or(&[][..], |p| &p.metas[..]);
        for m in presence.metas.iter().filter(|m| !new.iter().any(|o| matches(m, o))) {
            diff.leaves.add_meta(key, m.clone());
        }
    }
    diff
}

/// Metas per key, extra fields left out (the server's builders carry none).
fn without_extras(state: &PresenceState) -> PresenceState {
    state.iter().map(|(key, presence)| (key, Presence::new(presence.metas.clone()))).collect()
}

fn split(events: Vec<PresenceEvent>) -> (Vec<PresenceEvent>, Vec<PresenceEvent>) {
    events.into_iter().partition(|event| matches!(event, PresenceEvent::Join { .. }))
}

fn check_sync_state(current: &PresenceState, new_state: &PresenceState) -> PresenceState {
    let before = current.clone();
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    let result = sync_state(
        current,
        new_state.clone(),
        |key, current, joined| {
            joins.push(PresenceEvent::Join { key: key.into(), current: current.cloned(), joined: joined.clone() })
        },
        |key, current, left| {
            leaves.push(PresenceEvent::Leave { key: key.into(), current: current.clone(), left: left.clone() })
        },
    );
    assert_eq!(current, &before, "sync_state changed its input");

    let mut model_events = Vec::new();
    let model =
        js_presence::sync_state(&JsObject::from_state(current), &JsObject::from_state(new_state), &mut model_events);
    js_presence::assert_same(&result, &model, "sync_state");
    assert_eq!((joins.clone(), leaves.clone()), split(model_events), "sync_state callbacks");

    // An object ref never equals anything in JavaScript, so such metas never leave: the invariants below are for
    // the refs servers send (the model above covers the rest).
    if has_object_ref(current) || has_object_ref(new_state) {
        check_serde(&result);
        return result;
    }
    for (key, presence) in &result {
        let wanted = new_state.get(key).expect("sync_state kept a key the new state lacks");
        assert!(presence.metas.iter().all(|m| wanted.metas.iter().any(|w| matches(m, w))), "a meta of no new ref");
    }
    for (key, wanted) in new_state {
        if !wanted.metas.is_empty() {
            let got = result.get(key).expect("sync_state dropped a key of the new state");
            assert!(wanted.metas.iter().all(|w| got.metas.iter().any(|m| matches(m, w))), "a new ref is missing");
        }
    }
    for event in &joins {
        let PresenceEvent::Join { current, joined, .. } = event else { unreachable!() };
        let old = current.as_ref().map_or(&[][..], |p| &p.metas[..]);
        assert!(joined.metas.iter().all(|m| !old.iter().any(|o| matches(m, o))), "joined a meta that was there");
    }
    for event in &leaves {
        let PresenceEvent::Leave { key, current: after, left } = event else { unreachable!() };
        assert!(current.contains_key(key), "left a key that was not there");
        assert!(!after.metas.iter().any(|m| left.metas.iter().any(|l| matches(m, l))), "a left ref stayed");
    }
    if !has_empty(new_state) {
        assert!(!has_empty(&result), "a key with no metas survived");
    }
    // A server never sends a key without metas, and a diff cannot express one.
    if !has_empty(current) && !has_empty(new_state) {
        let replayed = sync_diff(current.clone(), server_diff(current, new_state), |_, _, _| {}, |_, _, _| {});
        assert_eq!(without_extras(&replayed), without_extras(&result), "the diff between states reproduces sync_state");
    }
    check_serde(&result);
    result
}

fn check_sync_diff(state: &PresenceState, diff: &PresenceDiff) -> PresenceState {
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    let result = sync_diff(
        state.clone(),
        diff.clone(),
        |key, current, joined| {
            joins.push(PresenceEvent::Join { key: key.into(), current: current.cloned(), joined: joined.clone() })
        },
        |key, current, left| {
            leaves.push(PresenceEvent::Leave { key: key.into(), current: current.clone(), left: left.clone() })
        },
    );
    let mut model_events = Vec::new();
    let model = js_presence::sync_diff(
        &JsObject::from_state(state),
        &JsObject::from_state(&diff.joins),
        &JsObject::from_state(&diff.leaves),
        &mut model_events,
    );
    js_presence::assert_same(&result, &model, "sync_diff");
    assert_eq!((joins.clone(), leaves.clone()), split(model_events), "sync_diff callbacks");
    assert_eq!(joins.len(), diff.joins.len(), "one join callback per joined key");

    if diff.joins.is_empty() {
        for (key, presence) in &result {
            let old = state.get(key).expect("a diff without joins added a key");
            let mut rest = old.metas.iter();
            assert!(presence.metas.iter().all(|m| rest.any(|o| o == m)), "a diff without joins added a meta");
        }
        assert!(leaves.len() <= diff.leaves.len());
    }
    for (key, joined) in &diff.joins {
        let left = diff.leaves.get(key).map_or(&[][..], |p| &p.metas[..]);
        for m in joined.metas.iter().filter(|m| !left.iter().any(|l| matches(m, l))) {
            let got = result.get(key).expect("a joined key vanished without a leave");
            assert!(got.metas.contains(m), "a joined meta is missing");
        }
    }
    for (key, left) in &diff.leaves {
        if let Some(presence) = result.get(key) {
            assert!(!presence.metas.iter().any(|m| left.metas.iter().any(|l| matches(m, l))), "a left ref stayed");
        }
    }
    if !has_empty(state) && !has_empty(&diff.joins) {
        assert!(!has_empty(&result), "a key with no metas survived");
    }
    check_serde(&result);
    result
}

/// The payload as `ChannelPresence` reads it. A `serde_json::Value` object sorts its keys (the product does not
/// enable serde_json's `preserve_order`), so named keys reach the Rust client in sorted order rather than in the
/// order of the JSON text as in phoenix.js; the others are fed what it reads so that all three are compared on the
/// same input.
fn as_channel_sees<T: serde::de::DeserializeOwned>(payload: &Payload) -> T {
    from_json(payload.as_json().expect("a JSON payload")).expect("our own payload parses")
}

/// The three client implementations fed the same channel messages.
#[derive(Default)]
struct Clients {
    channel: ChannelPresence,
    client: ClientPresence,
    model: JsClient,
}

impl Clients {
    fn compare(
        &self,
        channel_events: Vec<PresenceEvent>,
        client_events: Vec<PresenceEvent>,
        model_events: Vec<PresenceEvent>,
    ) {
        assert_eq!(channel_events, client_events, "ChannelPresence and ClientPresence disagree");
        assert_eq!(client_events, model_events, "ClientPresence callbacks differ from phoenix.js");
        assert_eq!(self.channel.state(), self.client.state());
        js_presence::assert_same(self.client.state(), &self.model.state, "ClientPresence");
    }

    fn state(&mut self, join_ref: Option<&str>, state: PresenceState) {
        let payload = Payload::Json(serde_json::to_value(&state).expect("a state serializes"));
        let state = as_channel_sees(&payload);
        let channel_events = self.channel.handle(PRESENCE_STATE, &payload, join_ref);
        let mut model_events = Vec::new();
        self.model.on_state(join_ref, &JsObject::from_state(&state), &mut model_events);
        let mut client_events = Vec::new();
        self.client.on_state(join_ref, state, &mut client_events);
        self.compare(channel_events, client_events, model_events);
    }

    fn diff(&mut self, join_ref: Option<&str>, diff: PresenceDiff) {
        let payload = Payload::Json(serde_json::to_value(&diff).expect("a diff serializes"));
        let diff = as_channel_sees(&payload);
        let channel_events = self.channel.handle(PRESENCE_DIFF, &payload, join_ref);
        let mut model_events = Vec::new();
        self.model.on_diff(join_ref, &diff, &mut model_events);
        let mut client_events = Vec::new();
        self.client.on_diff(join_ref, diff, &mut client_events);
        self.compare(channel_events, client_events, model_events);
    }
}

/// A server tracking metas with fresh refs and recording the diff of every change.
#[derive(Default)]
struct Server {
    state: PresenceState,
    diffs: Vec<PresenceDiff>,
    next_ref: u32,
}

impl Server {
    fn fresh_ref(&mut self) -> String {
        self.next_ref += 1;
        format!("s{}", self.next_ref)
    }

    fn pick(&self, pick: u8) -> Option<(String, String)> {
        let all: Vec<(String, String)> = self
            .state
            .iter()
            .flat_map(|(key, p)| p.metas.iter().filter_map(move |m| Some((key.to_owned(), m.phx_ref()?.to_owned()))))
            .collect();
        (!all.is_empty()).then(|| all[usize::from(pick) % all.len()].clone())
    }

    fn track(&mut self, key: u8, n: u8) {
        let key = KEYS[usize::from(key) % KEYS.len()];
        let meta = Meta::with_ref(self.fresh_ref()).with("n", n);
        self.state.add_meta(key, meta.clone());
        let mut diff = PresenceDiff::new();
        diff.joins.add_meta(key, meta);
        self.diffs.push(diff);
    }

    fn untrack(&mut self, pick: u8) {
        let Some((key, phx_ref)) = self.pick(pick) else { return };
        let meta = self.state.remove_meta_by_ref(&key, &phx_ref).expect("a picked meta is there");
        let mut diff = PresenceDiff::new();
        diff.leaves.add_meta(key, meta);
        self.diffs.push(diff);
    }

    fn update(&mut self, pick: u8, n: u8) {
        let Some((key, phx_ref)) = self.pick(pick) else { return };
        // Joins before leaves, as clients apply them: the key keeps its place even if this was its only meta.
        let new = Meta::with_ref(self.fresh_ref()).with("n", n).with(PHX_REF_PREV, phx_ref.clone());
        self.state.add_meta(key.clone(), new.clone());
        let old = self.state.remove_meta_by_ref(&key, &phx_ref).expect("a picked meta is there");
        let mut diff = PresenceDiff::new();
        diff.joins.add_meta(key.clone(), new);
        diff.leaves.add_meta(key, old);
        self.diffs.push(diff);
    }

    /// The recorded diffs rebuild the state from empty, one by one and coalesced; so does `sync_state`.
    fn check_rebuild(&self) {
        let mut one_by_one = PresenceState::new();
        let mut coalesced = PresenceDiff::new();
        for diff in &self.diffs {
            one_by_one = check_sync_diff(&one_by_one, diff);
            coalesced.coalesce(diff.clone());
        }
        assert_eq!(one_by_one, self.state, "diffs one by one");
        assert!(one_by_one.keys().eq(self.state.keys()), "diffs one by one keep the server's key order");
        assert_eq!(check_sync_diff(&PresenceState::new(), &coalesced), self.state, "coalesced diffs");
        assert_eq!(check_sync_state(&PresenceState::new(), &self.state), self.state, "sync_state from empty");
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut synced = PresenceState::new();
    let mut clients = Clients::default();
    let mut server = Server::default();
    for step in steps.iter().take(48) {
        match step {
            Step::SyncState(spec) => synced = check_sync_state(&synced, &state(spec)),
            Step::SyncDiff(spec) => synced = check_sync_diff(&synced, &diff(spec)),
            Step::ChannelState { join_ref, state: spec } => {
                clients.state(JOIN_REFS[usize::from(*join_ref) % JOIN_REFS.len()], state(spec))
            }
            Step::ChannelDiff { join_ref, diff: spec } => {
                clients.diff(JOIN_REFS[usize::from(*join_ref) % JOIN_REFS.len()], diff(spec))
            }
            Step::Track { key, n } => server.track(*key, *n),
            Step::Untrack { pick } => server.untrack(*pick),
            Step::Update { pick, n } => server.update(*pick, *n),
        }
    }
    server.check_rebuild();
});
