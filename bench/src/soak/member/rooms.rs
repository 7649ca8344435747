//! What a member knows about each room it is in, and the delivery rules it holds the server to (docs/protocol.md
//! §5, §7.1, §7.4): nothing for a topic before its join reply or after its leave, every message once and in id order
//! (`id > last_seen_id`), a rejoin that recovers exactly the gap. Kept free of I/O so the rules are unit-tested.

use protocol::chat::{JoinReply, Message};

use crate::soak::ledger::{Membership, body_hash};

/// Where a room's channel stands on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// No join sent on this connection yet.
    Unjoined,
    /// `phx_join` sent, no reply yet.
    Joining,
    /// Joined.
    Joined,
    /// `phx_leave` sent, no reply yet (broadcasts may still arrive).
    Leaving,
}

/// A rule broken by what the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub kind: &'static str,
    pub detail: String,
}

/// One room of one member.
#[derive(Debug, Clone)]
pub struct RoomSlot {
    pub room: usize,
    pub topic: String,
    pub channel: Channel,
    /// The ref of the current join (its join_ref).
    pub join_ref: Option<String>,
    /// The highest id delivered by a join reply or a broadcast (history pages hold only older ids).
    pub last_seen: Option<u64>,
    /// Whether a join was ever answered `ok` (the first one sets where the membership starts).
    pub started: bool,
    /// The record the final check reads.
    pub membership: Membership,
}

/// What a join reply asks of the member next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterJoin {
    /// Nothing missing.
    Complete,
    /// `recovered: false`: read `history:before` from `before_id` back to just after `stop_after`.
    FillGap { before_id: u64, stop_after: u64 },
}

impl RoomSlot {
    /// A room the member is about to join for the first time.
    pub fn new(who: &str, room: usize, topic: String, stayed: bool) -> Self {
        Self {
            room,
            topic,
            channel: Channel::Unjoined,
            join_ref: None,
            last_seen: None,
            started: false,
            membership: Membership { who: who.to_owned(), room, stayed, from: 0, seen: Vec::new() },
        }
    }

    /// The `last_seen_id` to join with: none the first time (the latest messages), afterwards the highest id seen,
    /// or where the membership started when nothing arrived yet (`0` asks for the whole room).
    pub fn join_param(&self) -> Option<u64> {
        self.started.then(|| self.last_seen.unwrap_or(self.membership.from))
    }

    /// Applies an `ok` join reply that answered a join with [`Self::join_param`] `asked`.
    pub fn joined(&mut self, asked: Option<u64>, reply: &JoinReply) -> (AfterJoin, Vec<Broken>) {
        self.channel = Channel::Joined;
        if !self.started {
            self.started = true;
            self.membership.from = reply.messages.first().map_or(0, |m| m.id.saturating_sub(1));
        }
        let mut broken = Vec::new();
        for message in &reply.messages {
            broken.extend(self.deliver(message, false));
        }
        if let (Some(asked), false) = (asked, reply.recovered) {
            if let Some(first) = reply.messages.first()
                && first.id > asked + 1
            {
                return (AfterJoin::FillGap { before_id: first.id, stop_after: asked }, broken);
            }
            if reply.messages.is_empty() || reply.messages.first().is_some_and(|m| m.id <= asked) {
                broken.push(Broken {
                    kind: "a rejoin found fewer messages than were delivered",
                    detail: format!("{}: last_seen_id {asked}, recovered false", self.topic),
                });
            }
        }
        (AfterJoin::Complete, broken)
    }

    /// Records a message from a join reply or (`live`) a `message:new` broadcast, checking the delivery rules.
    pub fn deliver(&mut self, message: &Message, live: bool) -> Option<Broken> {
        if live && self.channel != Channel::Joined && self.channel != Channel::Leaving {
            return Some(Broken {
                kind: "message:new on a channel not joined",
                detail: format!("{} id {} while {:?}", self.topic, message.id, self.channel),
            });
        }
        if let Some(last) = self.last_seen
            && message.id <= last
        {
            return Some(Broken {
                kind: "duplicate or out-of-order delivery",
                detail: format!("{} id {} after {last} (live: {live})", self.topic, message.id),
            });
        }
        self.last_seen = Some(message.id);
        self.membership.seen.push((message.id, body_hash(&message.body)));
        None
    }

    /// Records a page of `history:before` read to fill a gap; `Some(before_id)` for the next page while the gap is
    /// not closed yet (`stop_after` is the last id seen before it).
    pub fn gap_page(&mut self, messages: &[Message], limit: usize, stop_after: u64) -> Option<u64> {
        for message in messages.iter().filter(|m| m.id > stop_after) {
            self.membership.seen.push((message.id, body_hash(&message.body)));
        }
        let oldest = messages.first()?.id;
        (messages.len() == limit && oldest > stop_after + 1).then_some(oldest)
    }

    /// The connection is gone: the channel with it.
    pub fn disconnected(&mut self) {
        self.channel = Channel::Unjoined;
        self.join_ref = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(id: u64) -> Message {
        Message { id, user: "u".into(), body: format!("c{id} hi"), timestamp: 0 }
    }

    fn reply(ids: impl IntoIterator<Item = u64>, recovered: bool) -> JoinReply {
        JoinReply { user: "u".into(), messages: ids.into_iter().map(message).collect(), recovered }
    }

    #[test]
    fn a_first_join_starts_the_membership_and_rejoins_ask_for_the_gap() {
        let mut slot = RoomSlot::new("u", 0, "room:a".into(), true);
        assert_eq!(slot.join_param(), None);
        let (after, broken) = slot.joined(None, &reply(5..=7, true));
        assert_eq!((after, broken), (AfterJoin::Complete, vec![]));
        assert_eq!((slot.membership.from, slot.last_seen), (4, Some(7)));
        assert_eq!(slot.deliver(&message(8), true), None);
        slot.disconnected();
        assert_eq!(slot.join_param(), Some(8));
        assert!(slot.deliver(&message(9), true).is_some(), "nothing before the join reply");
        let (after, broken) = slot.joined(Some(8), &reply([9, 10], true));
        assert_eq!((after, broken), (AfterJoin::Complete, vec![]));
        let ids: Vec<u64> = slot.membership.seen.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn an_empty_room_is_joined_from_zero() {
        let mut slot = RoomSlot::new("u", 0, "room:a".into(), false);
        slot.joined(None, &reply([], true));
        assert_eq!((slot.membership.from, slot.join_param()), (0, Some(0)));
    }

    #[test]
    fn duplicates_and_reordering_are_caught() {
        let mut slot = RoomSlot::new("u", 0, "room:a".into(), true);
        slot.joined(None, &reply([3], true));
        assert_eq!(slot.deliver(&message(3), true).unwrap().kind, "duplicate or out-of-order delivery");
        assert_eq!(slot.deliver(&message(5), true), None);
        assert!(slot.deliver(&message(4), true).is_some());
    }

    #[test]
    fn an_unrecovered_rejoin_fills_the_gap_from_history() {
        let mut slot = RoomSlot::new("u", 0, "room:a".into(), true);
        slot.joined(None, &reply([1], true));
        slot.disconnected();
        let (after, broken) = slot.joined(Some(1), &reply(1200..=1249, false));
        assert_eq!((after, broken), (AfterJoin::FillGap { before_id: 1200, stop_after: 1 }, vec![]));
        let page: Vec<Message> = (1100..1200).map(message).collect();
        assert_eq!(slot.gap_page(&page, 100, 1), Some(1100));
        let last: Vec<Message> = (1..100).map(message).collect();
        assert_eq!(slot.gap_page(&last, 100, 1), None);
        assert_eq!(slot.membership.seen.len(), 1 + 50 + 100 + 98);
        let (_, broken) = slot.joined(Some(5000), &reply([], false));
        assert_eq!(broken.len(), 1, "the server forgot messages it had delivered");
    }
}
