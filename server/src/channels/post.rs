//! Posting a message to a room: the one path a member's `message:new` and the HTTP API's
//! `POST /api/rooms/{room}/messages` both take, so their messages get the same checks, ids, idempotency and delivery.
//!
//! [`Draft::check`] validates what was sent (the body through `protocol::chat::normalize_body`, the `client_id`'s
//! length); the caller applies its own rate limit between the two steps; [`Posting::post`] hands the message to the
//! store's group commit and broadcasts it from the after-commit hook, so members on every node receive it in id order,
//! and a `client_id` seen before answers the stored message without a second broadcast.

use std::sync::Arc;

use protocol::{
    chat::{Message, NewMessage, normalize_body},
    reasons,
    typed::{Event, to_payload},
};

use crate::{
    clock::now_ms,
    pubsub::{Broadcast, PubSub},
    store::{Appended, MessageStore, NewRecord, StoreError},
};

/// Longest accepted `client_id` (a UUID is 36 characters).
const MAX_CLIENT_ID_CHARS: usize = 64;

/// A message that passed the checks, ready to store.
#[derive(Debug)]
pub(crate) struct Draft {
    body: String,
    client_id: Option<String>,
}

impl Draft {
    /// Checks a post; the refusal is the protocol's reason (`invalid payload`, `empty message`, `message too long`).
    pub(crate) fn check(request: NewMessage) -> Result<Self, &'static str> {
        if request.client_id.as_ref().is_some_and(|c| c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS) {
            return Err(reasons::INVALID_PAYLOAD);
        }
        let body = normalize_body(&request.body).map_err(|error| error.reason())?;
        Ok(Self { body, client_id: request.client_id })
    }
}

/// Stores and broadcasts checked messages.
#[derive(Clone)]
pub(crate) struct Posting {
    store: Arc<dyn MessageStore>,
    pubsub: Arc<dyn PubSub>,
}

impl Posting {
    pub(crate) fn new(store: Arc<dyn MessageStore>, pubsub: Arc<dyn PubSub>) -> Self {
        Self { store, pubsub }
    }

    /// The store it posts to (for reads beside the posts).
    pub(crate) fn store(&self) -> &dyn MessageStore {
        &*self.store
    }

    /// Stores `draft` in `room` (whose topic is `topic`) as `user`; returns once it is committed, after its broadcast
    /// was published (the original message, unbroadcast, for a `client_id` seen before).
    pub(crate) async fn post(
        &self,
        topic: &Arc<str>,
        room: &str,
        user: String,
        draft: Draft,
    ) -> Result<Appended, StoreError> {
        let record = NewRecord {
            room: room.to_owned(),
            user,
            body: draft.body,
            client_id: draft.client_id,
            timestamp: now_ms(),
        };
        // Published by the store right after the commit, in id order (see `AfterCommit`).
        let (topic, pubsub) = (topic.clone(), self.pubsub.clone());
        let broadcast = Box::new(move |appended: &Appended| {
            if appended.duplicate {
                return;
            }
            match to_payload(&appended.message) {
                Ok(payload) => {
                    let message = Broadcast::new(topic, Message::EVENT, payload);
                    pubsub.broadcast(Arc::new(message.with_seq(appended.message.id)));
                }
                Err(error) => tracing::error!(%error, "message not encodable"),
            }
        });
        self.store.append_then(record, broadcast).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn post(body: &str, client_id: Option<&str>) -> NewMessage {
        NewMessage { body: body.into(), client_id: client_id.map(str::to_owned) }
    }

    #[test]
    fn checks_give_the_protocol_reasons() {
        assert_eq!(Draft::check(post("  hi  ", Some("c1"))).unwrap().body, "hi");
        assert_eq!(Draft::check(post(" \u{200b} ", None)).unwrap_err(), reasons::EMPTY_MESSAGE);
        assert_eq!(Draft::check(post(&"x".repeat(4001), None)).unwrap_err(), reasons::MESSAGE_TOO_LONG);
        assert_eq!(Draft::check(post("hi", Some(""))).unwrap_err(), reasons::INVALID_PAYLOAD);
        assert_eq!(Draft::check(post("hi", Some(&"c".repeat(65)))).unwrap_err(), reasons::INVALID_PAYLOAD);
    }
}
