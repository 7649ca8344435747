//! Topic fan-out: the [`PubSub`] contract and the in-process implementation.
//!
//! A [`Broadcast`] is encoded at most once per serializer version, however many connections receive it; every
//! subscriber gets the same shared buffer (Phoenix calls this fastlane). Delivery never blocks the publisher: it
//! goes through each connection's bounded [`Outbox`](crate::socket::outbound::Outbox).

pub mod local;

use std::sync::{Arc, OnceLock};

use protocol::{
    frame::Payload,
    serializer::{Outgoing, Vsn, encode_server},
};

use crate::socket::outbound::{Encoded, Outbox};

pub use local::LocalPubSub;

/// Identifies one connection for the lifetime of the process.
pub type ConnId = u64;

/// A message for every subscriber of a topic, encoded lazily and only once per serializer version.
#[derive(Debug)]
pub struct Broadcast {
    /// The topic, e.g. `room:lobby`.
    pub topic: Arc<str>,
    /// The event name.
    pub event: String,
    /// The payload.
    pub payload: Payload,
    /// The message id for `message:new` broadcasts. A connection that joined with a history reply up to id N drops
    /// broadcasts with `seq <= N`, so a message is never shown twice around a join.
    pub seq: Option<u64>,
    v1: OnceLock<Option<Encoded>>,
    v2: OnceLock<Option<Encoded>>,
}

impl Broadcast {
    /// A broadcast of `event` with `payload` on `topic`.
    pub fn new(topic: Arc<str>, event: impl Into<String>, payload: Payload) -> Self {
        Self { topic, event: event.into(), payload, seq: None, v1: OnceLock::new(), v2: OnceLock::new() }
    }

    /// Sets the message id used for de-duplication around joins.
    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    /// The frame for connections speaking `vsn`; encoded on first use, then shared. `None` when the payload cannot
    /// be expressed in that serializer (binary under V1); such connections skip it.
    pub fn encoded(&self, vsn: Vsn) -> Option<Encoded> {
        let cell = match vsn {
            Vsn::V1 => &self.v1,
            Vsn::V2 => &self.v2,
        };
        cell.get_or_init(|| {
            let outgoing = Outgoing::Broadcast { topic: &self.topic, event: &self.event, payload: &self.payload };
            match encode_server(vsn, &outgoing) {
                Ok(frame) => Some(Encoded::from_wire(frame)),
                Err(error) => {
                    tracing::warn!(topic = %self.topic, event = %self.event, %error, "broadcast not encodable");
                    None
                }
            }
        })
        .clone()
    }
}

/// One connection subscribed to a topic.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The connection.
    pub conn: ConnId,
    /// Where its frames go.
    pub outbox: Outbox,
}

/// Topic-based fan-out to connections. Implementations: [`LocalPubSub`] (one process).
pub trait PubSub: Send + Sync + 'static {
    /// Starts delivering broadcasts on `topic` to `subscriber` (replacing an earlier subscription of the same
    /// connection to that topic).
    fn subscribe(&self, topic: &str, subscriber: Subscriber);
    /// Stops delivering `topic` to `conn`.
    fn unsubscribe(&self, topic: &str, conn: ConnId);
    /// Delivers to every subscriber of the broadcast's topic. Never blocks on a slow subscriber.
    fn broadcast(&self, message: Arc<Broadcast>);
    /// How many connections are subscribed to `topic`.
    fn subscriber_count(&self, topic: &str) -> usize;
}
