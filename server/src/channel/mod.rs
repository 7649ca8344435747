//! The channel contract: what a topic handler implements, and the context it runs in.
//!
//! A [`Channel`] is registered for a topic pattern in the [`router::ChannelRouter`]; a successful `phx_join`
//! produces a [`ChannelInstance`] owned by the connection until leave, duplicate join, failure or disconnect.
//! Instances run inside their connection's task (no task per channel: a joined topic costs only its state), so a
//! handler's `await` delays only its own connection, exactly like a Phoenix channel process handles one message at a
//! time.

pub mod router;

use std::sync::Arc;

use async_trait::async_trait;
use protocol::{
    events::{STATUS_ERROR, STATUS_OK},
    frame::Payload,
    reasons::ErrorReply,
    serializer::Vsn,
    typed::{PayloadError, Request, to_payload},
};
use serde_json::{Value, value::RawValue};

use crate::{limits::SocketLimits, pubsub::ConnId};

pub(crate) use router::ChannelRouter;

/// Who is on the other end of a connection, fixed at connect time.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    pub(crate) conn: ConnId,
    /// The display name (presence key) of the connected user.
    pub user: Arc<str>,
    /// True when `user` is an account vouched for by a token, false for a guest.
    pub account: bool,
    pub(crate) vsn: Vsn,
}

/// A `phx_join` as a channel sees it.
#[derive(Debug)]
pub struct JoinRequest<'a> {
    /// The full topic, e.g. `room:lobby`.
    pub topic: &'a Arc<str>,
    /// The join payload (channel params).
    pub payload: &'a Payload,
}

/// What a connection lends to its channels while they handle a message.
pub struct ChannelContext<'a> {
    /// The connected user.
    pub socket: &'a SocketInfo,
    pub(crate) limits: &'a mut SocketLimits,
}

/// A successful join.
pub struct Joined {
    /// The `ok` response of the join reply.
    pub reply: Value,
    /// The channel state that handles later messages on this topic.
    pub instance: Box<dyn ChannelInstance>,
    /// Highest message id the join reply already delivered: later `message:new` broadcasts with an id at or below
    /// it are dropped for this connection, so no message is shown twice around a join.
    pub delivered_up_to: Option<u64>,
    /// Pushes to write right after the join reply, in order (e.g. `presence_state`).
    pub pushes: Vec<Push>,
    /// Which of the topic's broadcasts this connection writes.
    pub broadcasts: Broadcasts,
}

/// Which broadcasts on its topic a joined channel delivers. The connection's writer applies it per queued item, so a
/// channel that wants less than everything costs nothing to the channels that want it all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Broadcasts {
    /// Everything published on the topic.
    #[default]
    All,
    /// Only the broadcasts that carry a message id (`Broadcast::seq`: a room's `message:new`); `presence_diff` and
    /// anything else published on the topic are skipped. A room watch (`"watch": true`) wants this.
    MessagesOnly,
}

/// A push to the joining client, `[join_ref, null, topic, event, payload]`.
#[derive(Debug, Clone)]
pub enum Push {
    /// A payload encoded for the connection's serializer.
    Payload { event: String, payload: Payload },
    /// A JSON object encoded beforehand and shared by many joiners (a big room's `presence_state`): it is framed for
    /// each joiner without being parsed or encoded again.
    Encoded {
        event: &'static str,
        /// The payload; must be a JSON object.
        json: Arc<RawValue>,
    },
}

/// The answer to a message a channel handled.
#[derive(Debug)]
pub enum Outcome {
    /// Reply to the message's ref with a status (`ok` or `error`) and a response.
    Reply {
        /// `ok` or `error`.
        status: &'static str,
        /// The response payload.
        response: Payload,
    },
    /// Send nothing (the client's push will time out unless something replies later).
    NoReply,
    /// Close this channel gracefully (`phx_close`), after an optional reply.
    Stop {
        /// Sent before `phx_close` when present.
        reply: Option<(&'static str, Payload)>,
    },
}

impl Outcome {
    /// `ok` with a JSON response.
    pub fn ok(response: Value) -> Self {
        Self::Reply { status: STATUS_OK, response: Payload::Json(response) }
    }

    /// `ok` with the typed reply of request `R`.
    pub(crate) fn answer<R: Request>(reply: &R::Reply) -> Result<Self, ChannelFailure> {
        let response = to_payload(reply).map_err(ChannelFailure::from)?;
        Ok(Self::Reply { status: STATUS_OK, response })
    }

    /// `error` with `{"reason": reason}`.
    pub fn error(reason: &str) -> Self {
        Self::Reply { status: STATUS_ERROR, response: ErrorReply::new(reason).into() }
    }
}
/// A handler failure. The connection turns it into `phx_error` for that channel only.
#[derive(Debug, thiserror::Error)]
#[error("channel failed: {0}")]
pub struct ChannelFailure(pub String);

impl From<PayloadError> for ChannelFailure {
    fn from(error: PayloadError) -> Self {
        Self(error.to_string())
    }
}

/// Why a channel instance is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The client sent `phx_leave`.
    Left,
    /// A new join for the same topic replaced it.
    DuplicateJoin,
    /// The handler failed.
    Failed,
    /// The connection closed (any reason, including heartbeat/idle timeout and slow consumer).
    Disconnected,
    /// The handler asked to stop.
    Stopped,
}

/// A topic handler registered in the router: decides joins.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// Handles `phx_join`. `Err` refuses the join with that error reply.
    async fn join(&self, request: JoinRequest<'_>, context: ChannelContext<'_>) -> Result<Joined, ErrorReply>;
}

/// A joined channel on one connection.
#[async_trait]
pub trait ChannelInstance: Send + 'static {
    /// Handles any client event other than join/leave on this topic.
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        context: ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure>;

    /// Cleans up (presence untrack and the like). Runs exactly once, whatever ends the channel.
    fn terminate(&mut self, reason: Termination);
}
