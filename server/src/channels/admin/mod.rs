//! `admin:stats`: the operators' live statistics, the channel behind the `/dashboard` page (docs/protocol.md §7.6).
//!
//! A join is allowed to a socket whose identity is an account (a verified token) that the store calls an operator,
//! asked at every join so a revoke needs no new token; everyone else gets `unauthorized`. The reply carries the
//! recent samples of every node this one hears from ([`sampler::StatsRing`]); then the joiner receives every node's `stats` broadcasts, which
//! the [`sampler::Sampler`] publishes. Nothing is tracked and nothing can be pushed.

pub(crate) mod sampler;

use std::sync::Arc;

use async_trait::async_trait;
use protocol::{
    admin::StatsJoinReply,
    frame::Payload,
    reasons::{self, ErrorReply},
};

use crate::{
    channel::{
        Broadcasts, Channel, ChannelContext, ChannelFailure, ChannelInstance, JoinRequest, Joined, Outcome, Termination,
    },
    node::NodeId,
    store::Store,
};
use sampler::StatsRing;

/// The `admin:stats` channel.
pub(crate) struct AdminStatsChannel {
    operators: Arc<dyn Store>,
    node: NodeId,
    ring: Arc<StatsRing>,
}

impl AdminStatsChannel {
    pub(crate) fn new(operators: Arc<dyn Store>, node: NodeId, ring: Arc<StatsRing>) -> Self {
        Self { operators, node, ring }
    }
}

#[async_trait]
impl Channel for AdminStatsChannel {
    async fn join(&self, _request: JoinRequest<'_>, context: ChannelContext<'_>) -> Result<Joined, ErrorReply> {
        let socket = context.socket;
        // A guest's name is never an account's, but checking `account` keeps that rule from being load-bearing here.
        if !socket.account {
            return Err(ErrorReply::new(reasons::UNAUTHORIZED));
        }
        match self.operators.is_operator(&socket.user).await {
            Ok(true) => {}
            Ok(false) => return Err(ErrorReply::new(reasons::UNAUTHORIZED)),
            Err(error) => {
                tracing::warn!(%error, "operator check failed");
                return Err(ErrorReply::new(reasons::JOIN_CRASHED));
            }
        }
        let reply = StatsJoinReply {
            node: self.node.as_str().to_owned(),
            history: self.ring.history(self.node.as_str(), tokio::time::Instant::now()),
        };
        let reply = serde_json::to_value(reply).map_err(|_| ErrorReply::new(reasons::JOIN_CRASHED))?;
        Ok(Joined {
            reply,
            instance: Box::new(StatsWatch),
            delivered_up_to: None,
            pushes: Vec::new(),
            broadcasts: Broadcasts::All,
        })
    }
}

/// A joined dashboard: it only receives.
struct StatsWatch;

#[async_trait]
impl ChannelInstance for StatsWatch {
    async fn handle_in(&mut self, _: &str, _: Payload, _: ChannelContext<'_>) -> Result<Outcome, ChannelFailure> {
        Ok(Outcome::error(reasons::UNKNOWN_EVENT))
    }

    fn terminate(&mut self, _reason: Termination) {}
}
