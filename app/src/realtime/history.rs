//! A room's message history on the client, and the cursor that makes reconnects exact.
//!
//! Every message seen (join reply, broadcast, older page) goes through [`RoomHistory`]; `last_seen_id` is the highest
//! id seen, and the channel's join params closure sends it on every rejoin, so the server's join reply holds exactly
//! what was missed. Messages are keyed by id, so nothing is ever shown twice, whatever the order of arrival.

use std::collections::BTreeMap;

use protocol::chat::{JoinReply, Message};

/// Where a "some messages were skipped" marker belongs: just before the message with this id.
pub type GapBefore = u64;

/// The messages of one room, by id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RoomHistory {
    messages: BTreeMap<u64, Message>,
    gaps: Vec<GapBefore>,
    last_seen_id: Option<u64>,
}

impl RoomHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// History rendered by the server before hydration.
    pub fn from_messages(messages: Vec<Message>) -> Self {
        let mut history = Self::new();
        for message in messages {
            history.insert(message);
        }
        history
    }

    /// The highest id seen: what the join params send as `last_seen_id`.
    pub fn last_seen_id(&self) -> Option<u64> {
        self.last_seen_id
    }

    /// Whether the message with this id is held.
    pub fn contains(&self, id: u64) -> bool {
        self.messages.contains_key(&id)
    }

    /// The lowest id held (where `history:before` pages from).
    pub fn oldest_id(&self) -> Option<u64> {
        self.messages.keys().next().copied()
    }

    fn insert(&mut self, message: Message) -> bool {
        self.last_seen_id = Some(self.last_seen_id.map_or(message.id, |seen| seen.max(message.id)));
        self.messages.insert(message.id, message).is_none()
    }

    /// A join (or rejoin) reply. When the server could not recover the gap (`recovered: false`), the marker goes
    /// before the first message of the reply that is newer than everything held.
    pub fn on_join_reply(&mut self, reply: &JoinReply) {
        if !reply.recovered && self.last_seen_id.is_some() {
            let previous = self.last_seen_id.unwrap_or(0);
            if let Some(first_new) = reply.messages.iter().map(|m| m.id).find(|id| *id > previous) {
                self.gaps.push(first_new);
            }
        }
        for message in &reply.messages {
            self.insert(message.clone());
        }
    }

    /// A live `message:new`; false if it was already held.
    pub fn on_message(&mut self, message: Message) -> bool {
        self.insert(message)
    }

    /// An older page from `history:before`.
    pub fn prepend(&mut self, older: Vec<Message>) {
        for message in older {
            self.messages.entry(message.id).or_insert(message);
        }
    }

    /// Messages oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// Ids that have a "some messages were skipped" marker before them.
    pub fn gaps(&self) -> &[GapBefore] {
        &self.gaps
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64) -> Message {
        Message { id, user: "ada".into(), body: format!("m{id}"), timestamp: 0 }
    }

    fn ids(history: &RoomHistory) -> Vec<u64> {
        history.messages().map(|m| m.id).collect()
    }

    #[test]
    fn the_cursor_is_the_highest_id_seen_and_nothing_repeats() {
        let mut history = RoomHistory::from_messages(vec![message(1), message(2)]);
        assert_eq!(history.last_seen_id(), Some(2));
        assert!(history.on_message(message(4)));
        assert!(history.on_message(message(3)));
        assert!(!history.on_message(message(3)), "a duplicate is ignored");
        assert_eq!(ids(&history), vec![1, 2, 3, 4]);
        assert_eq!(history.last_seen_id(), Some(4));
    }

    #[test]
    fn a_recovered_rejoin_fills_the_gap_without_duplicates() {
        let mut history = RoomHistory::from_messages(vec![message(1), message(2)]);
        history.on_join_reply(&JoinReply {
            user: "ada".into(),
            messages: vec![message(3), message(4)],
            recovered: true,
        });
        assert_eq!(ids(&history), vec![1, 2, 3, 4]);
        assert!(history.gaps().is_empty());
    }

    #[test]
    fn an_unrecovered_rejoin_marks_the_skipped_messages() {
        let mut history = RoomHistory::from_messages(vec![message(1), message(2)]);
        let latest: Vec<Message> = (1500..1550).map(message).collect();
        history.on_join_reply(&JoinReply { user: "ada".into(), messages: latest, recovered: false });
        assert_eq!(history.gaps(), &[1500]);
        assert_eq!(history.last_seen_id(), Some(1549));
        history.prepend((1450..1500).map(message).collect());
        assert_eq!(history.oldest_id(), Some(1));
        assert_eq!(history.len(), 102);
    }

    #[test]
    fn a_first_join_is_never_a_gap() {
        let mut history = RoomHistory::new();
        history.on_join_reply(&JoinReply { user: "ada".into(), messages: vec![message(9)], recovered: false });
        assert!(history.gaps().is_empty());
        assert_eq!(history.last_seen_id(), Some(9));
    }
}
