//! One storm client's view of who is online, and the cheap reading of presence payloads that feeds it.
//!
//! A payload is read straight into `(member index, ref hashes)` pairs ([`Members`]), borrowing keys and refs from the
//! frame text: no map of strings is built per frame. The rules are phoenix.js's: a state replaces the view, a diff's
//! joins are applied before its leaves, and a leave removes a member only if it names the meta the view holds.

use std::{borrow::Cow, fmt};

use protocol::events::{PRESENCE_DIFF, PRESENCE_STATE};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};

/// A presence push, read from its frame text.
pub(super) enum PresenceEvent {
    State(Members),
    Diff(PresenceChanges),
}

/// How far into a frame its event name is looked for: past `[join_ref,null,"room:<slug>",`.
const HEAD_BYTES: usize = 200;

/// Reads a `presence_state` or `presence_diff` frame in one pass over its text (`None` for any other event). The
/// event is told from the frame's head, so the payload is parsed once, straight into [`Members`].
pub(super) fn read_presence(text: &str) -> Option<Result<PresenceEvent, serde_json::Error>> {
    let head = &text.as_bytes()[..text.len().min(HEAD_BYTES)];
    let names = |event: &str| format!(",\"{event}\",");
    let has = |needle: &str| head.windows(needle.len()).any(|window| window == needle.as_bytes());
    type Frame<T> = (IgnoredAny, IgnoredAny, IgnoredAny, IgnoredAny, T);
    if has(&names(PRESENCE_STATE)) {
        Some(serde_json::from_str::<Frame<Members>>(text).map(|frame| PresenceEvent::State(frame.4)))
    } else if has(&names(PRESENCE_DIFF)) {
        Some(serde_json::from_str::<Frame<PresenceChanges>>(text).map(|frame| PresenceEvent::Diff(frame.4)))
    } else {
        None
    }
}

/// The hash a view keeps for a meta's `phx_ref` (never 0, which marks an absent member): FNV-1a, cheap for 16-byte
/// refs (the generator hashes every ref of every frame).
pub(super) fn ref_hash(phx_ref: &str) -> u64 {
    let hash = phx_ref
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    hash | 1
}

/// The metas of a `presence_state`, or of one half of a diff: storm member index and the hash of the meta's ref, one
/// pair per meta in order. Keys that are not storm members (`s<index>`) are skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Members(pub(super) Vec<(usize, u64)>);

/// A `presence_diff`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct PresenceChanges {
    pub(super) joins: Members,
    pub(super) leaves: Members,
}

#[derive(Deserialize)]
struct RefOnly<'a> {
    #[serde(borrow)]
    phx_ref: Cow<'a, str>,
}

/// Reads one presence `{"metas": [...], ...}` straight into the pairs of member `index`: no allocation per member.
struct PresenceSeed<'v> {
    index: Option<usize>,
    out: &'v mut Vec<(usize, u64)>,
}

impl<'de> DeserializeSeed<'de> for PresenceSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PresenceSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a presence with metas")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<Cow<'de, str>>()? {
            if field == "metas" {
                map.next_value_seed(MetasSeed { index: self.index, out: &mut *self.out })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads a `metas` list into `(index, ref hash)` pairs.
struct MetasSeed<'v> {
    index: Option<usize>,
    out: &'v mut Vec<(usize, u64)>,
}

impl<'de> DeserializeSeed<'de> for MetasSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MetasSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of metas")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(meta) = seq.next_element::<RefOnly<'de>>()? {
            if let Some(index) = self.index {
                self.out.push((index, ref_hash(&meta.phx_ref)));
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of presences by key")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    map.next_value_seed(PresenceSeed { index: View::index(&key), out: &mut pairs })?;
                }
                Ok(Members(pairs))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// One client's view of the room: member index → hash of its meta's phx_ref (0 = absent).
pub(super) struct View {
    refs: Vec<u64>,
    /// Members present.
    pub(super) present: usize,
}

impl View {
    pub(super) fn new(size: usize) -> Self {
        Self { refs: vec![0; size], present: 0 }
    }

    fn index(key: &str) -> Option<usize> {
        key.strip_prefix('s')?.parse().ok()
    }

    /// A joined meta: the member is present and the view holds this meta (a member's last meta wins).
    fn join(&mut self, index: usize, hash: u64) {
        let Some(slot) = self.refs.get_mut(index) else {
            return;
        };
        if *slot == 0 {
            self.present += 1;
        }
        *slot = hash;
    }

    /// A left meta: removes the member if it is the meta the view holds.
    fn leave(&mut self, index: usize, hash: u64) {
        let Some(slot) = self.refs.get_mut(index) else {
            return;
        };
        if *slot != 0 && *slot == hash {
            *slot = 0;
            self.present -= 1;
        }
    }

    pub(super) fn apply_diff(&mut self, diff: &PresenceChanges) {
        for &(index, hash) in &diff.joins.0 {
            self.join(index, hash);
        }
        for &(index, hash) in &diff.leaves.0 {
            self.leave(index, hash);
        }
    }

    pub(super) fn apply_state(&mut self, state: &Members) {
        self.refs.iter_mut().for_each(|r| *r = 0);
        self.present = 0;
        for &(index, hash) in &state.0 {
            self.join(index, hash);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn diff(json: &str) -> PresenceChanges {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_only_storm_members_and_their_refs() {
        let state: Members = serde_json::from_str(
            r#"{"s0":{"metas":[{"online_at":1,"phx_ref":"a","typing":false}]},
                "alice":{"metas":[{"phx_ref":"y"}]},
                "s1":{"metas":[{"phx_ref":"b0"},{"phx_ref":"b\u0031","phx_ref_prev":"b0"}]}}"#,
        )
        .unwrap();
        assert_eq!(state, Members(vec![(0, ref_hash("a")), (1, ref_hash("b0")), (1, ref_hash("b1"))]));
        let mut view = View::new(2);
        view.apply_state(&state);
        view.apply_diff(&diff(r#"{"joins":{},"leaves":{"s1":{"metas":[{"phx_ref":"b0"}]}}}"#));
        assert_eq!(view.present, 2, "the view holds s1's last meta, b1");
        view.apply_diff(&diff(r#"{"joins":{},"leaves":{"s1":{"metas":[{"phx_ref":"b1"}]}}}"#));
        assert_eq!(view.present, 1);
    }

    #[test]
    fn reads_presence_frames_by_their_event() {
        let state = r#"["1",null,"room:a","presence_state",{"s3":{"metas":[{"phx_ref":"r"}]}}]"#;
        let Some(Ok(PresenceEvent::State(members))) = read_presence(state) else { panic!("a state") };
        assert_eq!(members, Members(vec![(3, ref_hash("r"))]));
        let diff = r#"[null,null,"room:a","presence_diff",{"joins":{},"leaves":{"s1":{"metas":[{"phx_ref":"q"}]}}}]"#;
        let Some(Ok(PresenceEvent::Diff(changes))) = read_presence(diff) else { panic!("a diff") };
        assert_eq!(changes.leaves, Members(vec![(1, ref_hash("q"))]));
        assert!(read_presence(r#"["1","1","room:a","phx_reply",{"status":"ok","response":{}}]"#).is_none());
        assert!(matches!(read_presence(r#"[null,null,"t","presence_diff",{"joins":3}]"#), Some(Err(_))));
    }

    #[test]
    fn view_applies_state_and_diffs_by_ref() {
        let mut view = View::new(3);
        let early = diff(r#"{"joins":{"s2":{"metas":[{"phx_ref":"c"}]}},"leaves":{}}"#);
        view.apply_diff(&early);
        let state = serde_json::from_str(r#"{"s0":{"metas":[{"phx_ref":"a"}]},"s1":{"metas":[{"phx_ref":"b"}]}}"#);
        view.apply_state(&state.unwrap());
        assert_eq!(view.present, 2);
        view.apply_diff(&diff(
            r#"{"joins":{"s2":{"metas":[{"phx_ref":"c"}]}},"leaves":{"s0":{"metas":[{"phx_ref":"x"}]}}}"#,
        ));
        assert_eq!(view.present, 3, "a leave of an unknown ref removes nothing");
        view.apply_diff(&diff(r#"{"joins":{},"leaves":{"s0":{"metas":[{"phx_ref":"a"}]}}}"#));
        assert_eq!(view.present, 2);
        view.apply_diff(&diff(
            r#"{"joins":{"s7":{"metas":[{"phx_ref":"z"}]},"alice":{"metas":[{"phx_ref":"y"}]}},"leaves":{}}"#,
        ));
        assert_eq!(view.present, 2, "members outside the storm are not counted");
    }
}
