//! `room:<slug>`: the chat room channel of `docs/protocol.md`.
//!
//! Business logic only: validate, store, broadcast, track who is online. The socket layer handles refs, join_refs and
//! ordering; the store assigns ids and makes messages durable before [`RoomChannel`] acknowledges them. Every payload
//! is read and written through the typed `protocol::chat` requests.
//!
//! A join with `"watch": true` (docs/protocol.md §7.5) is a [`WatchInstance`] instead of a [`RoomInstance`]: no
//! history, no presence, read-only, and its connection writes only the room's `message:new` broadcasts
//! ([`Broadcasts::MessagesOnly`]).

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use protocol::{
    chat::{
        HistoryBefore, HistoryReply, JOIN_HISTORY, JoinParams, JoinReply, MAX_RECOVERY, MemberStatus, Message,
        NewMessage, NewMessageReply, Typing, WatchReply,
    },
    events::PRESENCE_STATE,
    frame::Payload,
    names::{slug_from_topic, validate_room_slug},
    reasons::{self, ErrorReply},
    typed::{Request, from_payload},
};

use super::post::{Draft, Posting};
use crate::{
    channel::{
        Broadcasts, Channel, ChannelContext, ChannelFailure, ChannelInstance, JoinRequest, Joined, Outcome, Push,
        Termination,
    },
    clock::now_ms,
    presence::Tracker,
    pubsub::PubSub,
    store::{MessageStore, StoreError},
};

/// Bytes a message adds to a reply beyond its author and body (ids, timestamp, keys, punctuation).
const MESSAGE_OVERHEAD_BYTES: usize = 64;

/// How large a join reply's history may grow, in bytes of JSON (approximately: names and bodies plus a fixed
/// overhead per message). Every joiner gets its own encoded reply, so without a byte bound 2,000 joins of a room full
/// of 4,000-emoji messages would each cost 800 KB at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryBudget {
    /// The latest history of a plain join: the newest messages that fit.
    pub(crate) join_bytes: usize,
    /// A rejoin's gap after `last_seen_id`: recovered whole if it fits, else the reply falls back to the latest
    /// history with `recovered: false`.
    pub(crate) recovery_bytes: usize,
    /// The largest `history:before` page, in messages (`--max-history-page`).
    pub(crate) page: u32,
}

fn reply_bytes(message: &Message) -> usize {
    message.user.len() + message.body.len() + MESSAGE_OVERHEAD_BYTES
}

/// The newest messages of `messages` (oldest first) whose size fits `budget`.
fn newest_within(mut messages: Vec<Message>, budget: usize) -> Vec<Message> {
    let mut total = 0;
    let keep = messages.iter().rev().take_while(|m| {
        total += reply_bytes(m);
        total <= budget
    });
    let first_kept = messages.len() - keep.count();
    messages.drain(..first_kept);
    messages
}

/// The router entry for `room:*`.
pub(crate) struct RoomChannel {
    store: Arc<dyn MessageStore>,
    pubsub: Arc<dyn PubSub>,
    /// Shared by every member's instance: one pointer per joined room, not a store and a pubsub each.
    posting: Arc<Posting>,
    presence: Arc<Tracker>,
    budget: HistoryBudget,
}

impl RoomChannel {
    pub(crate) fn new(
        store: Arc<dyn MessageStore>,
        pubsub: Arc<dyn PubSub>,
        presence: Arc<Tracker>,
        budget: HistoryBudget,
    ) -> Self {
        let posting = Arc::new(Posting::new(store.clone(), pubsub.clone()));
        Self { store, pubsub, posting, presence, budget }
    }

    /// The join reply's history: the gap after `last_seen_id` when it is small enough, else the latest messages.
    async fn history(&self, room: &str, last_seen_id: Option<u64>) -> Result<(Vec<Message>, bool), ErrorReply> {
        let unavailable = |error: StoreError| {
            tracing::error!(%error, room, "history unavailable");
            ErrorReply::new(reasons::JOIN_CRASHED)
        };
        let latest =
            newest_within(self.store.latest(room, JOIN_HISTORY).await.map_err(unavailable)?, self.budget.join_bytes);
        let Some(last_seen) = last_seen_id else {
            return Ok((latest, true));
        };
        let newest = latest.last().map_or(0, |m| m.id);
        if last_seen > newest {
            // The client knows ids this room never had (another server's data, a wiped store): start over.
            return Ok((latest, false));
        }
        let gap = self.store.after(room, last_seen, MAX_RECOVERY + 1).await.map_err(unavailable)?;
        let too_big =
            gap.len() > MAX_RECOVERY || gap.iter().map(reply_bytes).sum::<usize>() > self.budget.recovery_bytes;
        if too_big { Ok((latest, false)) } else { Ok((gap, true)) }
    }

    /// The rest of a join with `"watch": true`, once the room is valid and aligned: the room's newest id and the
    /// unread count, no presence. `delivered_up_to` is the newest id, so the broadcasts the watcher gets are exactly
    /// the messages stored after the reply's `last_id`, in order.
    async fn watch(&self, topic: &Arc<str>, room: &str, last_seen_id: Option<u64>) -> Result<Joined, ErrorReply> {
        let newest = self.store.latest(room, 1).await.map_err(|error| {
            tracing::error!(%error, room, "newest id unavailable");
            ErrorReply::new(reasons::JOIN_CRASHED)
        })?;
        let last_id = newest.last().map(|m| m.id);
        // A room's ids are dense, so the unread count is a subtraction rather than a read of up to MAX_UNREAD rows.
        let reply = WatchReply::new(last_id, last_seen_id);
        let reply = serde_json::to_value(reply).map_err(|_| ErrorReply::new(reasons::JOIN_CRASHED))?;
        let instance = WatchInstance {
            room: room.to_owned(),
            topic: topic.clone(),
            store: self.store.clone(),
            history_page: self.budget.page,
        };
        Ok(Joined {
            reply,
            instance: Box::new(instance),
            delivered_up_to: last_id,
            pushes: Vec::new(),
            broadcasts: Broadcasts::MessagesOnly,
        })
    }
}

#[async_trait]
impl Channel for RoomChannel {
    async fn join(&self, request: JoinRequest<'_>, context: ChannelContext<'_>) -> Result<Joined, ErrorReply> {
        let invalid_room = || ErrorReply::new(reasons::INVALID_ROOM);
        let slug = slug_from_topic(request.topic).ok_or_else(invalid_room)?;
        validate_room_slug(slug).map_err(|_| invalid_room())?;
        let params: JoinParams =
            from_payload(request.payload).map_err(|_| ErrorReply::new(reasons::INVALID_PAYLOAD))?;
        // Subscribed already (the socket does it first); once aligned, every message newer than the history read
        // below reaches this member in id order, whichever node stored it.
        if !self.pubsub.align(request.topic).await {
            return Err(ErrorReply::new(reasons::JOIN_CRASHED));
        }
        if params.watch {
            return self.watch(request.topic, slug, params.last_seen_id).await;
        }
        let (messages, recovered) = self.history(slug, params.last_seen_id).await?;
        let newest_sent = messages.last().map(|m| m.id);
        let delivered_up_to = match (recovered, params.last_seen_id) {
            (true, Some(seen)) => Some(newest_sent.map_or(seen, |id| id.max(seen))),
            _ => newest_sent,
        };
        let user = context.socket.user.to_string();
        let reply = JoinReply { user: user.clone(), messages, recovered };
        let reply = serde_json::to_value(reply).map_err(|_| ErrorReply::new(reasons::JOIN_CRASHED))?;
        // Tracked last, after every check that can refuse the join: a refused join leaves no presence behind.
        self.presence.prepare(request.topic).await;
        let status = MemberStatus { online_at: now_ms(), typing: false };
        let (phx_ref, state) = self.presence.track(request.topic, &user, status.to_meta());
        let instance = RoomInstance {
            room: slug.to_owned(),
            topic: request.topic.clone(),
            user,
            history_page: self.budget.page,
            posting: self.posting.clone(),
            presence: self.presence.clone(),
            phx_ref,
            status,
        };
        let pushes = state.map(|json| Push::Encoded { event: PRESENCE_STATE, json }).into_iter().collect();
        Ok(Joined { reply, instance: Box::new(instance), delivered_up_to, pushes, broadcasts: Broadcasts::All })
    }
}

/// One connection's membership of one room.
struct RoomInstance {
    room: String,
    topic: Arc<str>,
    user: String,
    /// The largest `history:before` page.
    history_page: u32,
    /// Where its `message:new` goes (the path the HTTP API shares) and its `history:before` is read from: the
    /// channel's, shared.
    posting: Arc<Posting>,
    presence: Arc<Tracker>,
    /// This connection's current presence meta (changes on every update).
    phx_ref: String,
    status: MemberStatus,
}

impl RoomInstance {
    async fn new_message(&self, payload: &Payload, context: ChannelContext<'_>) -> Result<Outcome, ChannelFailure> {
        let Ok(request) = from_payload::<NewMessage>(payload) else {
            return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
        };
        let draft = match Draft::check(request) {
            Ok(draft) => draft,
            Err(reason) => return Ok(Outcome::error(reason)),
        };
        if !context.limits.allow_message(Instant::now()) {
            return Ok(Outcome::error(reasons::RATE_LIMITED));
        }
        match self.posting.post(&self.topic, &self.room, self.user.clone(), draft).await {
            Ok(appended) => Outcome::answer::<NewMessage>(&NewMessageReply { id: appended.message.id }),
            Err(error) => Ok(unavailable(&self.room, &error)),
        }
    }

    fn typing(&mut self, payload: &Payload) -> Result<Outcome, ChannelFailure> {
        let Ok(Typing { typing }) = from_payload::<Typing>(payload) else {
            return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
        };
        if typing != self.status.typing {
            let status = MemberStatus { typing, ..self.status };
            if let Some(phx_ref) = self.presence.update(&self.topic, &self.user, &self.phx_ref, status.to_meta()) {
                self.phx_ref = phx_ref;
                self.status = status;
            }
        }
        Outcome::answer::<Typing>(&Default::default())
    }
}

#[async_trait]
impl ChannelInstance for RoomInstance {
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        context: ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            NewMessage::EVENT => self.new_message(&payload, context).await,
            HistoryBefore::EVENT => {
                history_before(self.posting.store(), &self.room, self.history_page, &payload, context).await
            }
            Typing::EVENT => self.typing(&payload),
            _ => Ok(Outcome::error(reasons::UNKNOWN_EVENT)),
        }
    }

    fn terminate(&mut self, reason: Termination) {
        self.presence.untrack(&self.topic, &self.user, &self.phx_ref);
        tracing::trace!(room = %self.room, user = %self.user, ?reason, "left room");
    }
}

/// One connection's watch of one room (`"watch": true`): read-only and not in the room's presence. Its connection
/// writes only the room's `message:new` broadcasts.
struct WatchInstance {
    room: String,
    topic: Arc<str>,
    store: Arc<dyn MessageStore>,
    /// The largest `history:before` page.
    history_page: u32,
}

#[async_trait]
impl ChannelInstance for WatchInstance {
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        context: ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            // Refused whatever the payload, before the rate limit: a watcher is not a member.
            NewMessage::EVENT | Typing::EVENT => Ok(Outcome::error(reasons::UNAUTHORIZED)),
            // Read-only, and reading history needs no membership (the room's page shows it to anyone): allowed, with
            // the socket's rate limit.
            HistoryBefore::EVENT => {
                history_before(&*self.store, &self.room, self.history_page, &payload, context).await
            }
            _ => Ok(Outcome::error(reasons::UNKNOWN_EVENT)),
        }
    }

    fn terminate(&mut self, reason: Termination) {
        // Nothing was tracked, so there is nothing to untrack.
        tracing::trace!(topic = %self.topic, ?reason, "stopped watching room");
    }
}

/// `history:before` on `room`, for members and watchers alike.
async fn history_before(
    store: &dyn MessageStore,
    room: &str,
    max_page: u32,
    payload: &Payload,
    context: ChannelContext<'_>,
) -> Result<Outcome, ChannelFailure> {
    let Ok(request) = from_payload::<HistoryBefore>(payload) else {
        return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
    };
    if !context.limits.allow_history(Instant::now()) {
        return Ok(Outcome::error(reasons::RATE_LIMITED));
    }
    // Capped by this server's `--max-history-page` (which may exceed the protocol's 100).
    let limit = request.limit_within(max_page) as usize;
    match store.before(room, request.before_id, limit).await {
        Ok(messages) => Outcome::answer::<HistoryBefore>(&HistoryReply { messages }),
        Err(error) => Ok(unavailable(room, &error)),
    }
}

/// The answer when the store cannot serve a request: nothing was stored, the client may retry.
fn unavailable(room: &str, error: &StoreError) -> Outcome {
    tracing::warn!(%error, room, "store unavailable");
    Outcome::error(reasons::UNAVAILABLE)
}
