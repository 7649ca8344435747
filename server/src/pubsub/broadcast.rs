//! [`Broadcast`]: one message for every subscriber of a topic, encoded at most once per serializer version.

use std::sync::{Arc, OnceLock};

use protocol::{
    frame::Payload,
    serializer::{Outgoing, Vsn},
};

use crate::frames::{Encoded, encode};

/// A message for every subscriber of a topic. It is encoded lazily, by the first subscriber that writes it, and only
/// once per serializer version: every other subscriber gets the same shared buffer (Phoenix calls this fastlane).
#[derive(Debug)]
pub struct Broadcast {
    /// The topic, e.g. `room:lobby`.
    pub topic: Arc<str>,
    pub event: String,
    pub payload: Payload,
    /// The message id of a `message:new` broadcast. A connection whose join reply already held messages up to id N
    /// drops broadcasts with `seq <= N`, so a message is never shown twice around a join.
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
    pub(crate) fn encoded(&self, vsn: Vsn) -> Option<Encoded> {
        let cell = match vsn {
            Vsn::V1 => &self.v1,
            Vsn::V2 => &self.v2,
        };
        cell.get_or_init(|| {
            let outgoing = Outgoing::Broadcast { topic: &self.topic, event: &self.event, payload: &self.payload };
            encode(vsn, &outgoing)
                .inspect_err(|error| {
                    tracing::warn!(topic = %self.topic, event = %self.event, %error, "broadcast not encodable");
                })
                .ok()
        })
        .clone()
    }
}
