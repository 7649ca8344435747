//! What a member does with what arrives: replies to its joins, leaves, messages, gap fills and acks, and
//! `message:new` broadcasts, each checked against the delivery rules of [`super::rooms`].

use std::time::Instant;

use protocol::{
    chat::{HistoryReply, JoinReply, Message, NewMessageReply},
    events::{MESSAGE_NEW, PHX_CLOSE, PHX_ERROR, PHX_REPLY},
    reasons::{JOIN_CRASHED, RATE_LIMITED, UNAVAILABLE},
};

use super::{
    Ended, GAP_PAGE, Member, Purpose, RETRY_AFTER, Step,
    rooms::{AfterJoin, Channel},
};
use crate::{
    frames::{self, FrameError},
    soak::{
        conn::{Incoming, Ws},
        ledger::bump,
        text,
    },
};

impl Member {
    /// Handles what arrived; `Err` when the connection ended.
    pub(super) async fn incoming(&mut self, ws: &mut Ws, incoming: Incoming) -> Step {
        match incoming {
            Incoming::Text(text) => self.frame(ws, &text).await,
            Incoming::Binary => {
                self.violation("a binary frame from a room channel", String::new());
                Ok(())
            }
            Incoming::Closed(code, reason) => {
                self.closed_by_server(code, &reason);
                Err(Ended::Lost)
            }
            Incoming::Gone(_) => Err(Ended::Lost),
        }
    }

    /// The server closed a well-behaved member's socket: only a restart (1012) or, for a reader too slow, 1011 may
    /// do that; every other code means the server misread something valid or missed heartbeats.
    pub(super) fn closed_by_server(&self, code: u16, reason: &str) {
        match code {
            1011 => crate::warn("soak", &format!("{} closed as a slow consumer ({reason})", self.spec.name)),
            1012 => {}
            _ => self.violation("a well-behaved member was closed", format!("{}: {code} {reason}", self.spec.name)),
        }
    }

    pub(super) async fn frame(&mut self, ws: &mut Ws, text: &str) -> Step {
        let frame = match frames::decode(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.violation("an undecodable frame", format!("{error}: {text:.200}"));
                return Ok(());
            }
        };
        match frame.event() {
            PHX_REPLY => {
                let Some(purpose) = frame.msg_ref().and_then(|r| self.refs.remove(r)) else { return Ok(()) };
                let Some(reply) = frame.reply() else {
                    self.violation("a reply without status", format!("{text:.200}"));
                    return Ok(());
                };
                self.reply(ws, purpose, &reply).await
            }
            MESSAGE_NEW => {
                match frame.payload::<Message>() {
                    Ok(message) => self.broadcast(frame.topic(), &message),
                    Err(error) => self.violation("a malformed message:new", format!("{error}: {text:.200}")),
                }
                Ok(())
            }
            PHX_ERROR => {
                self.violation("a channel crashed", format!("{}: {text:.200}", self.spec.name));
                if let Some(slot) = self.slots.iter_mut().find(|s| s.topic == frame.topic()) {
                    slot.disconnected();
                }
                Ok(())
            }
            PHX_CLOSE => {
                let slot = self.slots.iter().find(|s| s.topic == frame.topic());
                if slot.is_some_and(|s| s.channel == Channel::Joined && s.join_ref.as_deref() == frame.join_ref()) {
                    self.violation("phx_close of a channel nobody left", format!("{text:.200}"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A `message:new` broadcast.
    pub(super) fn broadcast(&mut self, topic: &str, message: &Message) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.topic == topic) else {
            self.violation("message:new on a topic never joined", format!("{topic} id {}", message.id));
            return;
        };
        if let Some(broken) = slot.deliver(message, true) {
            self.violation(broken.kind, broken.detail);
            return;
        }
        let ledger = &self.context.ledger;
        if let Some(sent_at) = text::client_id_of(&message.body).and_then(|id| ledger.sent_at(id)) {
            ledger.latency(sent_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }

    pub(super) async fn reply(&mut self, ws: &mut Ws, purpose: Purpose, reply: &frames::BorrowedReply<'_>) -> Step {
        let ledger = self.context.ledger.clone();
        match purpose {
            Purpose::Join { room, asked } => match frames::response::<JoinReply>(reply) {
                Ok(joined) => {
                    bump(&ledger.counters.joins);
                    match (asked, joined.recovered) {
                        (Some(_), true) => bump(&ledger.counters.recovered),
                        (Some(_), false) => bump(&ledger.counters.not_recovered),
                        (None, _) => {}
                    }
                    let Some(slot) = self.slot_mut(room) else { return Ok(()) };
                    let (after, broken) = slot.joined(asked, &joined);
                    for broken in broken {
                        self.violation(broken.kind, broken.detail);
                    }
                    if let AfterJoin::FillGap { before_id, stop_after } = after {
                        self.request_gap(ws, room, before_id, stop_after).await?;
                    }
                    self.flush_outgoing(ws).await
                }
                Err(FrameError::Refused(refusal)) if refusal.reason == JOIN_CRASHED => {
                    // The store was not ready; housekeeping joins again.
                    if let Some(slot) = self.slot_mut(room) {
                        slot.disconnected();
                    }
                    Ok(())
                }
                Err(error) => {
                    self.violation("a join was refused", format!("{}: {error}", self.context.topics[room]));
                    Ok(())
                }
            },
            Purpose::Leave { room, for_good } => {
                if reply.is_ok() {
                    bump(&ledger.counters.leaves);
                } else {
                    self.violation("a leave was refused", self.context.topics[room].clone());
                }
                if for_good {
                    if let Some(at) = self.slots.iter().position(|s| s.room == room) {
                        ledger.membership(self.slots.swap_remove(at).membership);
                    }
                } else if let Some(slot) = self.slot_mut(room) {
                    slot.disconnected();
                }
                Ok(())
            }
            Purpose::Send { client_id } => self.send_answered(&client_id, reply),
            Purpose::Gap { room, stop_after } => match frames::response::<HistoryReply>(reply) {
                Ok(page) => {
                    bump(&ledger.counters.gap_pages);
                    let next =
                        self.slot_mut(room).and_then(|s| s.gap_page(&page.messages, GAP_PAGE as usize, stop_after));
                    match next {
                        Some(before_id) => self.request_gap(ws, room, before_id, stop_after).await,
                        None => Ok(()),
                    }
                }
                Err(error) => {
                    self.violation("history:before was refused", format!("{error}"));
                    Ok(())
                }
            },
            Purpose::Ack { what } => {
                if !reply.is_ok() {
                    self.violation("a heartbeat or typing push was refused", what.to_owned());
                }
                Ok(())
            }
        }
    }

    pub(super) fn send_answered(&mut self, client_id: &str, reply: &frames::BorrowedReply<'_>) -> Step {
        let ledger = self.context.ledger.clone();
        let response = frames::response::<NewMessageReply>(reply);
        if let Ok(NewMessageReply { id }) = response {
            // Every ok counts, a double send's second one too: it must carry the first one's id.
            ledger.acked(client_id, id);
        }
        let Some(at) = self.outgoing.iter().position(|o| o.client_id == client_id) else { return Ok(()) };
        match response {
            Ok(_) => {
                self.outgoing.remove(at);
            }
            Err(FrameError::Refused(refusal)) if refusal.reason == RATE_LIMITED || refusal.reason == UNAVAILABLE => {
                let counter = if refusal.reason == RATE_LIMITED {
                    &ledger.counters.member_rate_limited
                } else {
                    &ledger.counters.unavailable
                };
                bump(counter);
                let outgoing = &mut self.outgoing[at];
                outgoing.in_flight = false;
                outgoing.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
            Err(error) => {
                self.violation("a valid message was refused", format!("{client_id}: {error}"));
                ledger.refused(client_id, &error.to_string());
                self.outgoing.remove(at);
            }
        }
        Ok(())
    }
}
