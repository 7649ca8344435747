//! `bench:*`: the fan-out path alone, for load generators (enabled with `--bench-topics`; off by default).
//!
//! The Hashrocket shootout protocol on Phoenix frames: `echo` replies with its payload; `broadcast` sends its payload
//! to every member of the topic as a `broadcast` event and replies `ok` once it is queued. No presence and no store,
//! so a room of 20,000 members measures the socket, pubsub and encode-once machinery rather than the O(N²) presence
//! sync of a join storm or the durability of `message:new` (the `chat` and `ingest` scenarios cover those).

use std::sync::Arc;

use async_trait::async_trait;
use protocol::{
    events::STATUS_OK,
    frame::Payload,
    reasons::{self, ErrorReply},
};
use serde_json::json;

use crate::{
    channel::{
        Broadcasts, Channel, ChannelContext, ChannelFailure, ChannelInstance, JoinRequest, Joined, Outcome, Termination,
    },
    pubsub::{Broadcast, PubSub},
};

/// The `bench:*` channel.
pub(crate) struct BenchChannel {
    pubsub: Arc<dyn PubSub>,
}

impl BenchChannel {
    pub(crate) fn new(pubsub: Arc<dyn PubSub>) -> Self {
        Self { pubsub }
    }
}

#[async_trait]
impl Channel for BenchChannel {
    async fn join(&self, request: JoinRequest<'_>, _context: ChannelContext<'_>) -> Result<Joined, ErrorReply> {
        Ok(Joined {
            reply: json!({}),
            instance: Box::new(BenchInstance { topic: request.topic.clone(), pubsub: self.pubsub.clone() }),
            delivered_up_to: None,
            pushes: Vec::new(),
            broadcasts: Broadcasts::All,
        })
    }
}

struct BenchInstance {
    topic: Arc<str>,
    pubsub: Arc<dyn PubSub>,
}

#[async_trait]
impl ChannelInstance for BenchInstance {
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        _: ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            "echo" => Ok(Outcome::Reply { status: STATUS_OK, response: payload }),
            "broadcast" => {
                self.pubsub.broadcast(Arc::new(Broadcast::new(self.topic.clone(), "broadcast", payload)));
                Ok(Outcome::ok(json!({})))
            }
            _ => Ok(Outcome::error(reasons::UNKNOWN_EVENT)),
        }
    }

    fn terminate(&mut self, _reason: Termination) {}
}
