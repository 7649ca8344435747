//! `room:<slug>`: the chat room channel of chat-protocol.md.
//!
//! Business logic only: validate, store, broadcast. The socket layer handles refs, join_refs and ordering; the store
//! assigns ids and makes messages durable before [`RoomChannel`] acknowledges them.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use protocol::{
    chat::{
        HistoryBefore, HistoryReply, JOIN_HISTORY, JoinParams, JoinReply, MAX_RECOVERY, Message, NewMessage,
        NewMessageReply, Typing, normalize_body,
    },
    events::{HISTORY_BEFORE, MESSAGE_NEW, PRESENCE_STATE, TYPING},
    frame::Payload,
    names::{slug_from_topic, validate_room_slug},
    presence::Meta,
    reasons,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{
    channel::{
        Channel, ChannelContext, ChannelFailure, ChannelInstance, JoinRequest, Joined, Outcome, Push, Termination,
        reason_payload,
    },
    clock::now_ms,
    presence::Tracker,
    pubsub::{Broadcast, PubSub},
    store::{Appended, MessageStore, NewRecord},
};

/// Longest accepted `client_id` (a UUID is 36 characters).
const MAX_CLIENT_ID_CHARS: usize = 64;

/// Parses a JSON payload into `T`; anything else (binary, wrong shape) is `None`.
fn parse<T: DeserializeOwned>(payload: &Payload) -> Option<T> {
    match payload {
        Payload::Json(value @ Value::Object(_)) => serde_json::from_value(value.clone()).ok(),
        _ => None,
    }
}

/// The router entry for `room:*`.
pub struct RoomChannel {
    store: Arc<dyn MessageStore>,
    pubsub: Arc<dyn PubSub>,
    presence: Arc<Tracker>,
}

impl RoomChannel {
    /// A room channel storing into `store`, broadcasting through `pubsub` and tracking who is online in `presence`.
    pub fn new(store: Arc<dyn MessageStore>, pubsub: Arc<dyn PubSub>, presence: Arc<Tracker>) -> Self {
        Self { store, pubsub, presence }
    }

    /// The join reply's history: the gap after `last_seen_id` when it is small enough, else the latest messages.
    async fn history(&self, room: &str, last_seen_id: Option<u64>) -> Result<(Vec<Message>, bool), Value> {
        let unavailable = |error: crate::store::StoreError| {
            tracing::error!(%error, room, "history unavailable");
            reason_payload(reasons::JOIN_CRASHED)
        };
        let latest = self.store.latest(room, JOIN_HISTORY).await.map_err(unavailable)?;
        let Some(last_seen) = last_seen_id else {
            return Ok((latest, true));
        };
        let newest = latest.last().map_or(0, |m| m.id);
        if last_seen > newest {
            // The client knows ids this room never had (another server's data, a wiped store): start over.
            return Ok((latest, false));
        }
        let gap = self.store.after(room, last_seen, MAX_RECOVERY + 1).await.map_err(unavailable)?;
        if gap.len() > MAX_RECOVERY { Ok((latest, false)) } else { Ok((gap, true)) }
    }
}

#[async_trait]
impl Channel for RoomChannel {
    async fn join(&self, request: JoinRequest<'_>, context: ChannelContext<'_>) -> Result<Joined, Value> {
        let slug = slug_from_topic(request.topic).ok_or_else(|| reason_payload(reasons::INVALID_ROOM))?;
        validate_room_slug(slug).map_err(|_| reason_payload(reasons::INVALID_ROOM))?;
        let params: JoinParams = parse(request.payload).ok_or_else(|| reason_payload(reasons::INVALID_PAYLOAD))?;
        let (messages, recovered) = self.history(slug, params.last_seen_id).await?;
        let newest_sent = messages.last().map(|m| m.id);
        let delivered_up_to = match (recovered, params.last_seen_id) {
            (true, Some(seen)) => Some(newest_sent.map_or(seen, |id| id.max(seen))),
            _ => newest_sent,
        };
        let reply = JoinReply { user: context.socket.user.to_string(), messages, recovered };
        let reply = serde_json::to_value(reply).map_err(|_| reason_payload(reasons::JOIN_CRASHED))?;
        // Tracked last, after every check that can refuse the join: a refused join leaves no presence behind.
        let user = context.socket.user.to_string();
        let meta = Meta::new().with("online_at", now_ms()).with("typing", false);
        let (phx_ref, state) = self.presence.track(request.topic, &user, meta);
        let instance = RoomInstance {
            room: slug.to_owned(),
            topic: request.topic.clone(),
            user,
            store: self.store.clone(),
            pubsub: self.pubsub.clone(),
            presence: self.presence.clone(),
            phx_ref,
            typing: false,
        };
        let pushes = vec![Push::RawJson { event: PRESENCE_STATE.to_owned(), json: state }];
        Ok(Joined { reply, instance: Box::new(instance), delivered_up_to, pushes })
    }
}

/// One connection's membership of one room.
struct RoomInstance {
    room: String,
    topic: Arc<str>,
    user: String,
    store: Arc<dyn MessageStore>,
    pubsub: Arc<dyn PubSub>,
    presence: Arc<Tracker>,
    /// This connection's current presence meta (changes on every update).
    phx_ref: String,
    typing: bool,
}

impl RoomInstance {
    async fn new_message(&self, payload: &Payload, context: ChannelContext<'_>) -> Result<Outcome, ChannelFailure> {
        let Some(request) = parse::<NewMessage>(payload) else {
            return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
        };
        if request.client_id.as_ref().is_some_and(|c| c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS) {
            return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
        }
        let body = match normalize_body(&request.body) {
            Ok(body) => body,
            Err(error) => return Ok(Outcome::error(error.reason())),
        };
        if !context.limits.allow_message(Instant::now()) {
            return Ok(Outcome::error(reasons::RATE_LIMITED));
        }
        let record = NewRecord {
            room: self.room.clone(),
            user: self.user.clone(),
            body,
            client_id: request.client_id,
            timestamp: now_ms(),
        };
        // The broadcast is published by the store right after the commit, in id order (see `AfterCommit`).
        let (topic, pubsub) = (self.topic.clone(), self.pubsub.clone());
        let broadcast = Box::new(move |appended: &Appended| {
            if appended.duplicate {
                return;
            }
            match serde_json::to_value(&appended.message) {
                Ok(payload) => {
                    let message = Broadcast::new(topic, MESSAGE_NEW, Payload::Json(payload));
                    pubsub.broadcast(Arc::new(message.with_seq(appended.message.id)));
                }
                Err(error) => tracing::error!(%error, "message not encodable"),
            }
        });
        let appended = self.store.append_then(record, broadcast).await.map_err(|e| ChannelFailure(e.to_string()))?;
        let id = appended.message.id;
        let reply = serde_json::to_value(NewMessageReply { id }).map_err(|e| ChannelFailure(e.to_string()))?;
        Ok(Outcome::ok(reply))
    }

    async fn history_before(&self, payload: &Payload) -> Result<Outcome, ChannelFailure> {
        let Some(request) = parse::<HistoryBefore>(payload) else {
            return Ok(Outcome::error(reasons::INVALID_PAYLOAD));
        };
        let limit = request.effective_limit() as usize;
        let messages =
            self.store.before(&self.room, request.before_id, limit).await.map_err(|e| ChannelFailure(e.to_string()))?;
        let reply = serde_json::to_value(HistoryReply { messages }).map_err(|e| ChannelFailure(e.to_string()))?;
        Ok(Outcome::ok(reply))
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
            MESSAGE_NEW => self.new_message(&payload, context).await,
            HISTORY_BEFORE => self.history_before(&payload).await,
            TYPING => match parse::<Typing>(&payload) {
                Some(Typing { typing }) => {
                    if typing != self.typing {
                        let fields = [("typing", Value::Bool(typing))];
                        if let Some(phx_ref) = self.presence.update(&self.topic, &self.user, &self.phx_ref, &fields) {
                            self.phx_ref = phx_ref;
                            self.typing = typing;
                        }
                    }
                    Ok(Outcome::ok(json!({})))
                }
                None => Ok(Outcome::error(reasons::INVALID_PAYLOAD)),
            },
            _ => Ok(Outcome::error(reasons::UNKNOWN_EVENT)),
        }
    }

    fn terminate(&mut self, reason: Termination) {
        self.presence.untrack(&self.topic, &self.user, &self.phx_ref);
        tracing::trace!(room = %self.room, user = %self.user, ?reason, "left room");
    }
}
