//! In-process [`PubSub`]: a sharded map from topic to subscribers.
//!
//! Sharding keeps joins to different topics from contending on one lock (Phoenix's registry went from 1.3M to 2M
//! subscribers by sharding). The locks are std mutexes: critical sections never await, and delivery is a
//! non-blocking `try_send` per subscriber.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex, MutexGuard},
};

use super::{Broadcast, ConnId, PubSub, Subscriber};

/// Number of shards: a power of two comfortably above the core count of the machines we target.
const SHARDS: usize = 32;

type Shard = HashMap<Arc<str>, Vec<Subscriber>>;

/// The in-process implementation of [`PubSub`].
pub(crate) struct LocalPubSub {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for LocalPubSub {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: RandomState::new() }
    }
}

impl LocalPubSub {
    /// An empty pubsub.
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    fn subscriber_count(&self, topic: &str) -> usize {
        self.shard(topic).get(topic).map_or(0, Vec::len)
    }

    /// Whether any connection of this process is subscribed to `topic`.
    pub(crate) fn has_subscribers(&self, topic: &str) -> bool {
        self.shard(topic).contains_key(topic)
    }

    /// Stops delivering `topic` to `conn`; true when nobody in this process is subscribed to it any more.
    pub(crate) fn remove(&self, topic: &str, conn: ConnId) -> bool {
        let mut shard = self.shard(topic);
        let Some(subscribers) = shard.get_mut(topic) else {
            return true;
        };
        subscribers.retain(|s| s.conn != conn);
        if subscribers.is_empty() {
            shard.remove(topic);
            return true;
        }
        false
    }

    fn shard(&self, topic: &str) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(topic) as usize) % SHARDS;
        // Every mutation is a single insert/remove on a Vec, so a poisoned shard is still consistent.
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PubSub for LocalPubSub {
    fn subscribe(&self, topic: &str, subscriber: Subscriber) {
        let mut shard = self.shard(topic);
        let subscribers = shard.entry(Arc::from(topic)).or_default();
        subscribers.retain(|s| s.conn != subscriber.conn);
        subscribers.push(subscriber);
    }

    fn unsubscribe(&self, topic: &str, conn: ConnId) {
        self.remove(topic, conn);
    }

    fn broadcast(&self, message: Arc<Broadcast>) {
        let shard = self.shard(&message.topic);
        if let Some(subscribers) = shard.get(&*message.topic) {
            for subscriber in subscribers {
                subscriber.outbox.deliver(message.clone());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use protocol::{frame::Payload, serializer::Vsn};

    use super::*;
    use crate::{frames::Encoded, pubsub::outbox::queue};

    fn broadcast(topic: &str) -> Arc<Broadcast> {
        Arc::new(Broadcast::new(Arc::from(topic), "msg", Payload::Json(serde_json::json!({"n": 1}))))
    }

    #[tokio::test]
    async fn delivers_only_to_subscribers_of_the_topic() {
        let pubsub = LocalPubSub::new();
        let (a, mut a_in) = queue(8);
        let (b, mut b_in) = queue(8);
        pubsub.subscribe("t:1", Subscriber { conn: 1, outbox: a });
        pubsub.subscribe("t:2", Subscriber { conn: 2, outbox: b });
        pubsub.broadcast(broadcast("t:1"));
        let mut got = Vec::new();
        assert_eq!(a_in.recv_many(&mut got, 8).await, 1);
        drop(pubsub);
        assert_eq!(b_in.recv_many(&mut got, 8).await, 0, "t:2 got nothing and its sender is gone");
    }

    #[tokio::test]
    async fn one_encoding_shared_by_every_subscriber() {
        let pubsub = LocalPubSub::new();
        let mut inboxes = Vec::new();
        for conn in 0..3 {
            let (outbox, inbox) = queue(4);
            pubsub.subscribe("t", Subscriber { conn, outbox });
            inboxes.push(inbox);
        }
        pubsub.broadcast(broadcast("t"));
        let mut pointers = Vec::new();
        for inbox in &mut inboxes {
            let mut got = Vec::new();
            inbox.recv_many(&mut got, 4).await;
            let message = got.remove(0);
            let Some(Encoded::Text(text)) = message.encoded(Vsn::V2) else { panic!("expected text") };
            assert_eq!(&text[..], br#"[null,null,"t","msg",{"n":1}]"#);
            pointers.push(text.as_ptr());
        }
        assert!(pointers.windows(2).all(|w| w[0] == w[1]), "all subscribers share one buffer");
    }

    #[tokio::test]
    async fn a_full_queue_flags_only_that_subscriber() {
        let pubsub = LocalPubSub::new();
        let (slow, slow_in) = queue(1);
        let (fast, mut fast_in) = queue(8);
        pubsub.subscribe("t", Subscriber { conn: 1, outbox: slow });
        pubsub.subscribe("t", Subscriber { conn: 2, outbox: fast });
        pubsub.broadcast(broadcast("t"));
        pubsub.broadcast(broadcast("t"));
        assert!(slow_in.has_overflowed());
        let mut got = Vec::new();
        assert_eq!(fast_in.recv_many(&mut got, 8).await, 2);
    }

    #[test]
    fn unsubscribe_removes_empty_topics() {
        let pubsub = LocalPubSub::new();
        let (outbox, _inbox) = queue(1);
        pubsub.subscribe("t", Subscriber { conn: 7, outbox: outbox.clone() });
        pubsub.subscribe("t", Subscriber { conn: 7, outbox });
        assert_eq!(pubsub.subscriber_count("t"), 1, "resubscribing replaces");
        pubsub.unsubscribe("t", 7);
        assert_eq!(pubsub.subscriber_count("t"), 0);
    }
}
