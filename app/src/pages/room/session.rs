//! [`RoomSession`]: everything one open room knows and decides, with no I/O and no clock of its own.
//!
//! Who I am (and the token to prove it), the messages by id with the `last_seen_id` cursor, my messages that are not
//! stored yet, the typing throttle, older-page loading and who is online. The browser driver (`live`) feeds it what
//! arrives and the time, and sends what it returns: each method that has something for the server returns it as a
//! typed `protocol::chat` request. That keeps every rule here testable natively, by calling methods.

use protocol::chat::{
    HISTORY_DEFAULT_LIMIT, HistoryBefore, HistoryReply, JOIN_HISTORY, JoinParams, JoinReply, Message,
};
use protocol::{chat::NewMessage, chat::NewMessageReply, chat::Typing, frame::Payload};

use super::state::{Delivery, Line, OnlineUser, by_arrival, online_user};
use crate::{
    api::RoomPageData,
    realtime::{history::RoomHistory, presence::ChannelPresence, push::PushFailure},
};

/// `typing: true` is re-sent at most this often while someone keeps typing, so it survives a missed update.
pub const TYPING_REFRESH_MS: f64 = 3_000.0;
/// `typing: false` goes out after this long without a keystroke.
pub const TYPING_IDLE_MS: u64 = 4_000;

/// One of my messages the server has not stored yet (or refused).
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    client_id: String,
    body: String,
    timestamp: i64,
    /// Set once the server acknowledged it; the line goes when the broadcast with this id arrives.
    id: Option<u64>,
    delivery: Delivery,
}

/// What a keystroke asks of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keystroke {
    /// Push this now (the first keystroke, or a refresh).
    pub push: Option<Typing>,
    /// Call [`RoomSession::typing_idle`] with this after [`TYPING_IDLE_MS`].
    pub generation: u64,
}

/// The state of one open room (see the module docs).
#[derive(Default)]
pub struct RoomSession {
    me: String,
    token: Option<String>,
    history: RoomHistory,
    pending: Vec<Pending>,
    typing: bool,
    typing_sent_at: f64,
    typing_generation: u64,
    loading_older: bool,
    more_above: bool,
    presence: ChannelPresence,
}

impl RoomSession {
    /// The session of a page the server rendered: its identity, token and history.
    pub fn new(page: &RoomPageData) -> Self {
        Self {
            me: page.user.clone(),
            token: page.token.clone(),
            history: RoomHistory::from_messages(page.messages.clone()),
            more_above: page.messages.len() >= JOIN_HISTORY,
            ..Self::default()
        }
    }

    /// My display name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The socket's connect params: the account's token when there is one, else the name the server gave this page.
    pub fn connect_params(&self) -> Vec<(String, String)> {
        match &self.token {
            Some(token) => vec![("token".to_owned(), token.clone())],
            None => vec![("user".to_owned(), self.me.clone())],
        }
    }

    /// Whether the page belongs to an account (whose token needs refreshing).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// A fresh token for the next (re)connect.
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// The join params of the next (re)join: what I have seen, so the server sends exactly what I missed.
    pub fn join_params(&self) -> JoinParams {
        JoinParams { last_seen_id: self.history.last_seen_id(), watch: false }
    }

    /// A join or rejoin succeeded.
    pub fn joined(&mut self, reply: &JoinReply) {
        self.me.clone_from(&reply.user);
        self.history.on_join_reply(reply);
    }

    /// A `message:new` broadcast; my pending copy of it goes.
    pub fn message(&mut self, message: Message) {
        let id = message.id;
        self.history.on_message(message);
        self.pending.retain(|p| p.id != Some(id));
    }

    /// A channel message that may be a presence event; returns who is online when it was one.
    pub fn presence(&mut self, event: &str, payload: &Payload, join_ref: Option<&str>) -> Option<Vec<OnlineUser>> {
        let events = self.presence.handle(event, payload, join_ref);
        (!events.is_empty()).then(|| by_arrival(self.presence.list(online_user)))
    }

    /// Queues a message I wrote (shown as pending at once) and returns the request to push. `None` for a blank body.
    pub fn compose(&mut self, body: &str, client_id: String, now_ms: i64) -> Option<NewMessage> {
        let body = body.trim();
        if body.is_empty() {
            return None;
        }
        let pending =
            Pending { client_id, body: body.to_owned(), timestamp: now_ms, id: None, delivery: Delivery::Pending };
        let request = NewMessage { body: pending.body.clone(), client_id: Some(pending.client_id.clone()) };
        self.pending.push(pending);
        Some(request)
    }

    /// Sends a failed message again, with the same client id (the server stores it at most once).
    pub fn retry(&mut self, client_id: &str) -> Option<NewMessage> {
        let pending = self.pending.iter_mut().find(|p| p.client_id == client_id)?;
        pending.delivery = Delivery::Pending;
        Some(NewMessage { body: pending.body.clone(), client_id: Some(pending.client_id.clone()) })
    }

    /// The server answered a `message:new` of mine.
    pub fn sent(&mut self, client_id: &str, outcome: Result<NewMessageReply, PushFailure>) {
        let Some(pending) = self.pending.iter_mut().find(|p| p.client_id == client_id) else { return };
        match outcome {
            Ok(reply) => {
                pending.id = Some(reply.id);
                pending.delivery = Delivery::Stored;
            }
            Err(failure) => pending.delivery = Delivery::Failed(failure.into_reason()),
        }
        // The broadcast may have come first: then the message is already in the history.
        let stored = pending.id.is_some_and(|id| self.history.contains(id));
        if stored {
            self.pending.retain(|p| p.client_id != client_id);
        }
    }

    /// A keystroke at `now_ms`: `typing: true` when it is news or due for a refresh.
    pub fn keystroke(&mut self, now_ms: f64) -> Keystroke {
        let due = !self.typing || now_ms - self.typing_sent_at > TYPING_REFRESH_MS;
        let push = due.then(|| {
            self.typing = true;
            self.typing_sent_at = now_ms;
            Typing { typing: true }
        });
        self.typing_generation += 1;
        Keystroke { push, generation: self.typing_generation }
    }

    /// [`TYPING_IDLE_MS`] after keystroke `generation`: `typing: false` if nothing was typed since.
    pub fn typing_idle(&mut self, generation: u64) -> Option<Typing> {
        (generation == self.typing_generation).then(|| self.stop_typing()).flatten()
    }

    /// `typing: false` if I was typing (sending a message ends typing too).
    pub fn stop_typing(&mut self) -> Option<Typing> {
        std::mem::take(&mut self.typing).then_some(Typing { typing: false })
    }

    /// The request for the page before the oldest message held, unless one is loading or there is nothing older.
    pub fn older_request(&mut self) -> Option<HistoryBefore> {
        if self.loading_older || !self.more_above {
            return None;
        }
        let before_id = self.history.oldest_id()?;
        self.loading_older = true;
        Some(HistoryBefore { before_id, limit: Some(HISTORY_DEFAULT_LIMIT) })
    }

    /// The answer to [`RoomSession::older_request`] (`None` when it failed; scrolling up asks again).
    pub fn older_page(&mut self, page: Option<HistoryReply>) {
        self.loading_older = false;
        if let Some(page) = page {
            if page.messages.len() < HISTORY_DEFAULT_LIMIT as usize {
                self.more_above = false;
            }
            self.history.prepend(page.messages);
        }
    }

    /// Whether older messages may exist.
    pub fn more_above(&self) -> bool {
        self.more_above
    }

    /// The visible lines: stored history, then my messages not yet in it.
    pub fn lines(&self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.history.messages().map(Line::stored).collect();
        for pending in &self.pending {
            if pending.id.is_some_and(|id| self.history.contains(id)) {
                continue;
            }
            lines.push(Line {
                key: format!("c{}", pending.client_id),
                id: pending.id,
                client_id: Some(pending.client_id.clone()),
                user: self.me.clone(),
                body: pending.body.clone(),
                timestamp: pending.timestamp,
                delivery: pending.delivery.clone(),
            });
        }
        lines
    }

    /// Ids with a "some messages were skipped" marker before them.
    pub fn gaps(&self) -> Vec<u64> {
        self.history.gaps().to_vec()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
