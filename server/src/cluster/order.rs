//! [`RoomOrder`]: each room's messages reach this node's members strictly in id order, exactly once, whichever node
//! stored them.
//!
//! Messages arrive from this node's own commits and from the bus, in any order and possibly not at all (Redis is
//! at-most-once). Per room with members here, the node remembers the next id it owes them: an older id is dropped, the
//! next one is delivered (with any held successors), a later one is held while the gap is read from the store after a
//! short wait. Ids are dense and committed in order (`store::batch`), so a gap always exists in the store by the time a
//! later id is seen. A writer that committed and died before publishing leaves no hole either: [`RoomOrder::check_heads`]
//! compares every room against the store's head periodically and after each bus reconnect.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use protocol::{chat::Message, names::slug_from_topic, typed::Event, typed::to_payload};

use crate::{
    metrics::Meters,
    pubsub::{Broadcast, LocalPubSub, PubSub},
    store::MessageStore,
};

/// How long a later id waits for the missing ones to arrive from the bus before they are read from the store.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// Retry delay of a gap read that failed (the store is down).
const RETRY: Duration = Duration::from_secs(1);
/// Most messages one gap read fetches; a longer gap takes several reads.
const FILL_PAGE: usize = 500;
/// Most messages held back per room before the oldest are dropped (the store read fills them in again).
const MAX_HELD: usize = 4096;

/// One room's delivery cursor.
#[derive(Default)]
struct Room {
    /// The next id this node's members are owed; `None` until the head was read.
    next: Option<u64>,
    /// Later ids waiting for the gap before them.
    held: BTreeMap<u64, Arc<Broadcast>>,
    /// A gap read is scheduled or running.
    filling: bool,
    /// Serializes the first head read of concurrent joins.
    aligning: Arc<tokio::sync::Mutex<()>>,
}

/// The in-order delivery of every room with members on this node.
pub(crate) struct RoomOrder {
    rooms: Mutex<HashMap<Arc<str>, Room>>,
    local: Arc<LocalPubSub>,
    store: Arc<dyn MessageStore>,
    /// Counts the messages gap reads deliver.
    meters: Arc<Meters>,
    me: Weak<RoomOrder>,
}

impl RoomOrder {
    pub(crate) fn new(local: Arc<LocalPubSub>, store: Arc<dyn MessageStore>, meters: Arc<Meters>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self { rooms: Mutex::new(HashMap::new()), local, store, meters, me: me.clone() })
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Arc<str>, Room>> {
        // Every critical section leaves the map consistent before anything can panic.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes sure the room's cursor is known: the first join of a room on this node reads the store's head, and
    /// ids up to it are never delivered (a joiner reads its history after this, so it holds them). False when the
    /// store cannot be read.
    pub(crate) async fn align(&self, topic: &str) -> bool {
        let gate = {
            let mut rooms = self.rooms();
            let room = rooms.entry(Arc::from(topic)).or_default();
            if room.next.is_some() {
                return true;
            }
            room.aligning.clone()
        };
        let _turn = gate.lock().await;
        if self.rooms().get(topic).is_some_and(|room| room.next.is_some()) {
            return true;
        }
        let Some(slug) = slug_from_topic(topic) else {
            return true;
        };
        let head = match self.store.heads(&[slug.to_owned()]).await {
            Ok(heads) => heads.first().map_or(0, |(_, id)| *id),
            Err(error) => {
                tracing::warn!(%error, topic, "cannot read the room's head");
                return false;
            }
        };
        let topic: Arc<str> = Arc::from(topic);
        let mut rooms = self.rooms();
        let room = rooms.entry(topic.clone()).or_default();
        if room.next.is_none() {
            room.next = Some(head + 1);
            room.held = room.held.split_off(&(head + 1));
            self.drain(&topic, room);
        }
        true
    }

    /// Forgets a room nobody here is subscribed to any more.
    pub(crate) fn forget(&self, topic: &str) {
        self.rooms().remove(topic);
    }

    /// A message with its id (`seq`), from this node's commit or from the bus.
    pub(crate) fn offer(&self, message: Arc<Broadcast>) {
        let Some(seq) = message.seq else {
            self.local.broadcast(message);
            return;
        };
        let topic = message.topic.clone();
        let mut rooms = self.rooms();
        if !self.local.has_subscribers(&topic) {
            rooms.remove(&topic);
            return;
        }
        let room = rooms.entry(topic.clone()).or_default();
        match room.next {
            Some(next) if seq < next => {}
            _ => {
                room.held.insert(seq, message);
                while room.held.len() > MAX_HELD {
                    room.held.pop_last();
                }
                self.drain(&topic, room);
            }
        }
    }

    /// Delivers held messages while they are the next ones; schedules a gap read when some remain.
    fn drain(&self, topic: &Arc<str>, room: &mut Room) {
        let Some(mut next) = room.next else {
            return;
        };
        while let Some(entry) = room.held.first_entry() {
            if *entry.key() < next {
                entry.remove();
                continue;
            }
            if *entry.key() > next {
                break;
            }
            self.local.broadcast(entry.remove());
            next += 1;
        }
        room.next = Some(next);
        if !room.held.is_empty() && !room.filling {
            room.filling = true;
            self.schedule_fill(topic.clone(), GAP_WAIT);
        }
    }

    fn schedule_fill(&self, topic: Arc<str>, after: Duration) {
        let Some(order) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            order.fill(topic).await;
        });
    }

    /// Reads what this node's members are owed from the store and delivers it, page by page.
    async fn fill(&self, topic: Arc<str>) {
        loop {
            let next = {
                let mut rooms = self.rooms();
                let Some(room) = rooms.get_mut(&topic) else {
                    return;
                };
                match room.next {
                    Some(next) => next,
                    None => {
                        room.filling = false;
                        return;
                    }
                }
            };
            let Some(slug) = slug_from_topic(&topic) else {
                return;
            };
            let page = match self.store.after(slug, next - 1, FILL_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, %topic, "cannot read a gap; retrying");
                    self.schedule_fill(topic, RETRY);
                    return;
                }
            };
            let full = page.len() == FILL_PAGE;
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(&topic) else {
                return;
            };
            let mut filled = 0;
            for message in page {
                if let Some(broadcast) = broadcast_of(&topic, &message)
                    && let std::collections::btree_map::Entry::Vacant(gap) = room.held.entry(message.id)
                {
                    gap.insert(broadcast);
                    filled += 1;
                }
            }
            self.meters.bus_gaps_filled(filled);
            room.filling = false;
            self.drain(&topic, room);
            if !full || room.filling {
                return;
            }
        }
    }

    /// Compares every room with members here against the store's head and reads what is missing: the periodic
    /// check, and the first thing after a bus reconnect.
    pub(crate) async fn check_heads(&self) {
        let known: Vec<(Arc<str>, u64)> =
            self.rooms().iter().filter_map(|(topic, room)| Some((topic.clone(), room.next?))).collect();
        if known.is_empty() {
            return;
        }
        let slugs: Vec<String> =
            known.iter().filter_map(|(topic, _)| slug_from_topic(topic).map(str::to_owned)).collect();
        let heads: HashMap<String, u64> = match self.store.heads(&slugs).await {
            Ok(heads) => heads.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot check room heads");
                return;
            }
        };
        for (topic, next) in known {
            let behind = slug_from_topic(&topic).and_then(|slug| heads.get(slug)).is_some_and(|head| *head >= next);
            if !behind {
                continue;
            }
            let start = {
                let mut rooms = self.rooms();
                match rooms.get_mut(&topic) {
                    Some(room) if !room.filling => {
                        room.filling = true;
                        true
                    }
                    _ => false,
                }
            };
            if start {
                tracing::debug!(%topic, next, "room behind the store; reading the gap");
                self.fill(topic).await;
            }
        }
    }
}

/// The `message:new` broadcast of a stored message.
pub(crate) fn broadcast_of(topic: &Arc<str>, message: &Message) -> Option<Arc<Broadcast>> {
    let payload = to_payload(message).inspect_err(|error| tracing::error!(%error, "message not encodable")).ok()?;
    Some(Arc::new(Broadcast::new(topic.clone(), Message::EVENT, payload).with_seq(message.id)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        pubsub::{Subscriber, outbox::queue},
        store::{MemoryStore, NewRecord},
    };

    const TOPIC: &str = "room:ordered";

    /// Stores the room's next message, `m<n>` (its id is n + 1).
    async fn store_one(store: &MemoryStore, n: u64) {
        let record = NewRecord {
            room: "ordered".into(),
            user: "ann".into(),
            body: format!("m{n}"),
            client_id: None,
            timestamp: 1,
        };
        store.append(record).await.unwrap();
    }

    async fn store_with(count: u64) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::new());
        for n in 0..count {
            store_one(&store, n).await;
        }
        store
    }

    fn message(id: u64) -> Arc<Broadcast> {
        let message = Message { id, user: "ann".into(), body: format!("m{}", id - 1), timestamp: 1 };
        broadcast_of(&Arc::from(TOPIC), &message).unwrap()
    }

    /// The ids a member received, waiting until `count` arrived.
    fn meters() -> Arc<Meters> {
        Meters::new(&crate::node::NodeId::random())
    }

    async fn received(inbox: &mut crate::pubsub::outbox::Inbox, count: usize) -> Vec<u64> {
        let mut got = Vec::new();
        let mut ids = Vec::new();
        while ids.len() < count {
            let wait = tokio::time::timeout(Duration::from_secs(5), inbox.recv_many(&mut got, 64)).await;
            assert!(wait.is_ok(), "only {ids:?} arrived");
            for item in got.drain(..) {
                ids.push(item.seq.unwrap());
            }
        }
        ids
    }

    #[tokio::test]
    async fn out_of_order_duplicated_and_missing_ids_reach_members_in_order_once() {
        let store = store_with(3).await;
        let local = Arc::new(LocalPubSub::new());
        let (outbox, mut inbox) = queue(64);
        local.subscribe(TOPIC, Subscriber { conn: 1, outbox });
        let order = RoomOrder::new(local.clone(), store.clone(), meters());
        assert!(order.align(TOPIC).await, "the head (3) is read");
        order.offer(message(2));
        for id in 4..=8 {
            store_one(&store, id - 1).await;
        }
        // 4 is never offered (its publish was lost): it comes from the store.
        order.offer(message(6));
        order.offer(message(5));
        order.offer(message(5));
        order.offer(message(8));
        assert_eq!(received(&mut inbox, 5).await, vec![4, 5, 6, 7, 8]);
        order.offer(message(7));
        order.offer(message(3));
        let nothing = tokio::time::timeout(Duration::from_millis(300), received(&mut inbox, 1)).await;
        assert!(nothing.is_err(), "old ids are not delivered again");
    }

    #[tokio::test]
    async fn a_lost_last_message_is_found_by_the_head_check() {
        let store = store_with(1).await;
        let local = Arc::new(LocalPubSub::new());
        let (outbox, mut inbox) = queue(64);
        local.subscribe(TOPIC, Subscriber { conn: 1, outbox });
        let order = RoomOrder::new(local.clone(), store.clone(), meters());
        assert!(order.align(TOPIC).await);
        store_one(&store, 1).await;
        order.check_heads().await;
        assert_eq!(received(&mut inbox, 1).await, vec![2]);
        let text = order.meters.render();
        assert!(text.lines().any(|line| line.starts_with("parley_bus_gaps_filled_total{") && line.ends_with("} 1")));
    }

    #[tokio::test]
    async fn rooms_without_members_here_are_not_tracked() {
        let store = store_with(0).await;
        let local = Arc::new(LocalPubSub::new());
        let order = RoomOrder::new(local, store, meters());
        order.offer(message(1));
        assert!(order.rooms().is_empty());
    }
}
