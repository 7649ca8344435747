//! Topic fan-out: the [`PubSub`] contract, the in-process implementation, and the bounded per-connection queues
//! (outboxes) that every delivery goes through.
//!
//! A [`Broadcast`] is encoded at most once per serializer version however many connections receive it. Delivery never
//! blocks the publisher: it is a `try_send` into each subscriber's bounded [`Outbox`]; a full outbox marks that
//! connection as a slow consumer (see [`outbox`]).

mod broadcast;
mod local;
pub(crate) mod outbox;

pub use broadcast::Broadcast;
pub(crate) use local::LocalPubSub;
pub(crate) use outbox::Outbox;

/// Identifies one connection for the lifetime of the process.
pub type ConnId = u64;

/// One connection subscribed to a topic.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub(crate) conn: ConnId,
    pub(crate) outbox: Outbox,
}

/// Topic-based fan-out to connections. Implementations: [`LocalPubSub`] (one process) and the cluster's, which
/// relays through Redis and orders room messages by id (`crate::cluster`).
pub trait PubSub: Send + Sync + 'static {
    /// Starts delivering broadcasts on `topic` to `subscriber` (replacing an earlier subscription of the same
    /// connection to that topic).
    fn subscribe(&self, topic: &str, subscriber: Subscriber);
    /// Stops delivering `topic` to `conn`.
    fn unsubscribe(&self, topic: &str, conn: ConnId);
    /// Delivers to every subscriber of the broadcast's topic. Never blocks on a slow subscriber.
    fn broadcast(&self, message: std::sync::Arc<Broadcast>);
    /// Called by a join after subscribing and before reading history: from when this resolves, every broadcast with a
    /// `seq` above what a store read returns reaches the subscriber in order. In one process that holds at once; a
    /// cluster node first learns the room's head from the store. False when it could not (the store is down).
    fn align<'a>(&'a self, _topic: &'a str) -> futures::future::BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}
