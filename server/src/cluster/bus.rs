//! The bus: one Redis pub/sub channel that every node publishes to and listens on, as Phoenix's Redis adapter does.
//!
//! Redis pub/sub is at-most-once: a node that is disconnected misses what was published meanwhile. Nothing depends on
//! it for durability: room messages are recovered from the store ([`super::order`]) and presence from the registry
//! ([`super::registry`]) after every reconnect. [`Publisher`] queues outgoing envelopes (bounded; dropped when Redis is
//! away) and sends them in pipelines; [`listen`] keeps one subscription alive and reconnects with backoff.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use protocol::presence::Meta;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Meters;

/// The one channel of the bus.
pub(crate) const CHANNEL: &str = "parley:bus";
/// Envelopes waiting to be published; beyond this they are dropped (the store and registry recover them).
const QUEUE: usize = 65_536;
/// Most envelopes in one pipeline.
const BATCH: usize = 512;
/// Reconnect backoff bounds of the subscription.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What travels on the bus. Every envelope names the node that sent it, which ignores its own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Envelope {
    /// A broadcast on a topic; `seq` is the message id of a room's `message:new`.
    Broadcast {
        node: String,
        topic: String,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        payload: Value,
    },
    /// Presence changes of one topic made by `node`: leaves (key, phx_ref), then joins (key, meta).
    Presence {
        node: String,
        topic: String,
        #[serde(default)]
        leaves: Vec<(String, String)>,
        #[serde(default)]
        joins: Vec<(String, Meta)>,
    },
    /// `node` stopped: forget its presences now.
    Down { node: String },
    /// `node` could not publish for a while (its envelopes were dropped): re-read the registry.
    Resync { node: String },
}

impl Envelope {
    /// The node that sent it.
    pub(crate) fn node(&self) -> &str {
        match self {
            Self::Broadcast { node, .. }
            | Self::Presence { node, .. }
            | Self::Down { node }
            | Self::Resync { node } => node,
        }
    }
}

/// The sending side of the bus.
#[derive(Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<Vec<u8>>,
}

impl Publisher {
    /// Starts the publishing task of `node` on `redis`.
    pub(crate) fn start(redis: ConnectionManager, node: String, meters: Arc<Meters>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(publish(redis, node, meters, receiver));
        Self { queue }
    }

    /// Queues an envelope; never waits. Dropped when the queue is full (Redis away for long).
    pub(crate) fn send(&self, envelope: &Envelope) {
        match serde_json::to_vec(envelope) {
            Ok(bytes) => {
                if self.queue.try_send(bytes).is_err() {
                    tracing::debug!("bus queue full; envelope dropped");
                }
            }
            Err(error) => tracing::error!(%error, "envelope not encodable"),
        }
    }
}

/// Publishes queued envelopes in pipelines. After a failure (Redis away, or too slow under a burst), the first batch
/// that goes out again starts with a [`Envelope::Resync`], so the other nodes re-read the presence this node announced
/// into the void; room messages need nothing, the store's head checks bring them.
async fn publish(mut redis: ConnectionManager, node: String, meters: Arc<Meters>, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failing = false;
    let resync = serde_json::to_vec(&Envelope::Resync { node }).unwrap_or_default();
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        if failing {
            pipe.publish(CHANNEL, &resync).ignore();
        }
        for envelope in batch.drain(..) {
            pipe.publish(CHANNEL, envelope).ignore();
        }
        let started = Instant::now();
        let published = pipe.exec_async(&mut redis).await;
        if published.is_ok() {
            // One pipeline's round trip, whatever it carried: the latency a message adds on its way to other nodes.
            meters.bus_published(started.elapsed());
        }
        match published {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("bus publishing again; other nodes re-read the registry");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "bus publish failed; messages reach other nodes from the store");
            }
            Err(_) => {}
        }
    }
}

/// What a node does with the bus.
pub(crate) trait Listener: Send + Sync + 'static {
    /// The subscription is (again) in place; `reconnected` is false the first time.
    fn connected(&self, reconnected: bool);
    /// The subscription was lost.
    fn disconnected(&self);
    /// An envelope from another node.
    fn received(&self, envelope: Envelope);
}

/// Keeps a subscription to the bus until `stop`, reconnecting with backoff.
pub(crate) async fn listen(client: redis::Client, node: String, listener: Arc<dyn Listener>, stop: CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    let mut connected_before = false;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            result = subscribed => result,
            () = stop.cancelled() => return,
        };
        match subscribed {
            Ok(mut pubsub) => {
                backoff = MIN_BACKOFF;
                tracing::info!(reconnected = connected_before, "bus subscribed");
                listener.connected(connected_before);
                connected_before = true;
                let mut messages = pubsub.on_message();
                loop {
                    let message = tokio::select! {
                        message = messages.next() => message,
                        () = stop.cancelled() => return,
                    };
                    let Some(message) = message else { break };
                    match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                        Ok(envelope) if envelope.node() == node => {}
                        Ok(envelope) => listener.received(envelope),
                        Err(error) => tracing::warn!(%error, "malformed bus envelope ignored"),
                    }
                }
                tracing::warn!("bus subscription lost; reconnecting");
                listener.disconnected();
            }
            Err(error) => tracing::debug!(%error, "bus not reachable; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelopes_have_a_stable_shape() {
        let message = Envelope::Broadcast {
            node: "n1".into(),
            topic: "room:a".into(),
            event: "message:new".into(),
            seq: Some(7),
            payload: json!({"id": 7}),
        };
        let encoded = serde_json::to_value(&message).unwrap();
        assert_eq!(
            encoded,
            json!({"kind": "broadcast", "node": "n1", "topic": "room:a", "event": "message:new", "seq": 7,
                   "payload": {"id": 7}})
        );
        let presence: Envelope = serde_json::from_value(json!({
            "kind": "presence", "node": "n2", "topic": "room:a",
            "joins": [["bob", {"phx_ref": "r1", "typing": false}]]
        }))
        .unwrap();
        let Envelope::Presence { joins, leaves, .. } = presence else { panic!("a presence envelope") };
        assert!(leaves.is_empty());
        assert_eq!(joins[0].1.phx_ref(), Some("r1"));
        assert_eq!(Envelope::Down { node: "n3".into() }.node(), "n3");
    }
}
