//! Cluster mode: many server processes, one chat, over Redis and PostgreSQL.
//!
//! PostgreSQL is the only place a message becomes durable; it allocates each room's ids in the committing
//! transaction (`store::batch`). Redis is an at-most-once bus ([`bus`]) plus the presence registry ([`registry`]).
//! [`Cluster`] is the node's [`PubSub`]: a broadcast is delivered to this node's subscribers and published on the bus;
//! room messages (broadcasts with a `seq`) go through [`order::RoomOrder`] on every node, so members see ids in order,
//! exactly once, with gaps read back from the store. Presence changes replicate through the registry into every
//! node's tracker.

mod bus;
mod order;
mod registry;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use protocol::frame::Payload;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use self::{
    bus::{Envelope, Listener, Publisher},
    order::RoomOrder,
    registry::{HEARTBEAT_EVERY, HEARTBEAT_TTL, Registry},
};
use crate::{
    metrics::Meters,
    node::NodeId,
    presence::Tracker,
    pubsub::{Broadcast, ConnId, LocalPubSub, PubSub, Subscriber},
    store::MessageStore,
};

/// How often every room with members here is compared with the store's head (a writer that died between commit and
/// publish, a bus message lost).
const HEAD_CHECK_EVERY: Duration = Duration::from_secs(2);
/// After a bus reconnect, when the registry is read again for leaves missed meanwhile: late enough for every live
/// node to have written its presences back.
pub(crate) const RESYNC_AFTER: Duration = Duration::from_secs(6);

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct ClusterError(#[from] redis::RedisError);

/// This node's membership of the cluster.
pub(crate) struct Cluster {
    node: NodeId,
    local: Arc<LocalPubSub>,
    order: Arc<RoomOrder>,
    registry: Arc<Registry>,
    bus: Publisher,
    /// Counts bus reconnects (and, through the bus and the order, publishes and gap reads).
    meters: Arc<Meters>,
    /// When the bus subscription was last (re)established; `None` while it is down.
    connected_since: Mutex<Option<Instant>>,
    stop: CancellationToken,
}

impl Cluster {
    /// Joins the cluster at `redis_url` as `node`: starts the bus, the registry and the periodic checks. Redis may be
    /// down at start; the node serves and connects when it can.
    pub(crate) fn start(
        node: NodeId,
        redis_url: &str,
        store: Arc<dyn MessageStore>,
        local: Arc<LocalPubSub>,
        meters: Arc<Meters>,
    ) -> Result<Arc<Self>, ClusterError> {
        let client = redis::Client::open(redis_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let bus = Publisher::start(redis.clone(), node.to_string(), meters.clone());
        let registry = Registry::new(node.clone(), redis, bus.clone());
        let cluster = Arc::new(Self {
            node: node.clone(),
            order: RoomOrder::new(local.clone(), store, meters.clone()),
            meters,
            local,
            registry,
            bus,
            connected_since: Mutex::new(None),
            stop: CancellationToken::new(),
        });
        let listener: Arc<dyn Listener> = cluster.clone();
        tokio::spawn(bus::listen(client, node.to_string(), listener, cluster.stop.clone()));
        tokio::spawn(periodic(Arc::downgrade(&cluster), cluster.stop.clone()));
        Ok(cluster)
    }

    /// Replicates the tracker's presences and applies the other nodes' to it.
    pub(crate) fn attach_presence(&self, tracker: Arc<Tracker>) {
        self.registry.attach(tracker);
    }

    /// Leaves the cluster: removes this node's presences everywhere, then stops the background work.
    pub(crate) async fn leave(&self) {
        self.registry.leave().await;
        self.stop.cancel();
        tracing::info!(node = %self.node, "left the cluster");
    }

    /// Whether this node's bus subscription is up (readiness: a node cut off from Redis delivers other nodes'
    /// messages only through the store's head checks, seconds late).
    pub(crate) fn bus_connected(&self) -> bool {
        self.connected_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }

    /// Whether the bus has been up long enough that a node missing from the registry is really gone.
    fn settled(&self) -> bool {
        self.connected_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|since| since.elapsed() >= HEARTBEAT_TTL)
    }
}

/// Heartbeats and head checks until `stop`.
async fn periodic(cluster: std::sync::Weak<Cluster>, stop: CancellationToken) {
    let mut heads = tokio::time::interval(HEAD_CHECK_EVERY);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = heads.tick() => {
                let Some(cluster) = cluster.upgrade() else { return };
                cluster.order.check_heads().await;
            }
            _ = heartbeat.tick() => {
                let Some(cluster) = cluster.upgrade() else { return };
                let settled = cluster.settled();
                if cluster.registry.heartbeat(settled).await && cluster.registry.take_dirty() {
                    cluster.registry.write_back().await;
                }
            }
            () = stop.cancelled() => return,
        }
    }
}

impl Listener for Cluster {
    fn connected(&self, reconnected: bool) {
        *self.connected_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        if reconnected {
            self.meters.bus_reconnected();
        }
        // Whatever was published while the subscription was down (or before it first came up, if Redis was away at
        // start) is lost: read it back from the store and the registry, and put this node's presences back in case
        // Redis restarted empty. On a first connection of a fresh node all of this finds nothing to do.
        let (order, registry) = (self.order.clone(), self.registry.clone());
        tokio::spawn(async move {
            order.check_heads().await;
            registry.heartbeat(false).await;
            registry.take_dirty();
            registry.write_back().await;
            registry.resync(false).await;
            if reconnected {
                tokio::time::sleep(RESYNC_AFTER).await;
                registry.resync(true).await;
            }
        });
    }

    fn disconnected(&self) {
        *self.connected_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    fn received(&self, envelope: Envelope) {
        match envelope {
            Envelope::Broadcast { topic, event, seq, payload, .. } => {
                let mut message = Broadcast::new(Arc::from(topic), event, Payload::Json(payload));
                message.seq = seq;
                let message = Arc::new(message);
                if message.seq.is_some() {
                    self.order.offer(message);
                } else {
                    self.local.broadcast(message);
                }
            }
            Envelope::Presence { node, topic, leaves, joins } => {
                self.registry.remote_change(&node, &topic, joins, leaves);
            }
            Envelope::Down { node } => self.registry.node_down(&node),
            Envelope::Resync { node } => {
                tracing::debug!(%node, "a node lost envelopes; re-reading the registry");
                let registry = self.registry.clone();
                tokio::spawn(async move { registry.resync(true).await });
            }
        }
    }
}

impl PubSub for Cluster {
    fn subscribe(&self, topic: &str, subscriber: Subscriber) {
        self.local.subscribe(topic, subscriber);
    }

    fn unsubscribe(&self, topic: &str, conn: ConnId) {
        if self.local.remove(topic, conn) {
            self.order.forget(topic);
        }
    }

    fn broadcast(&self, message: Arc<Broadcast>) {
        let Payload::Json(payload) = &message.payload else {
            // Binary payloads (V2 binary pushes) stay on this node; nothing in the chat sends them.
            self.local.broadcast(message);
            return;
        };
        self.bus.send(&Envelope::Broadcast {
            node: self.node.to_string(),
            topic: message.topic.to_string(),
            event: message.event.clone(),
            seq: message.seq,
            payload: payload.clone(),
        });
        if message.seq.is_some() {
            self.order.offer(message);
        } else {
            self.local.broadcast(message);
        }
    }

    fn align<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(self.order.align(topic))
    }
}
