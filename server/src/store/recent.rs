//! [`RecentCache`]: the newest messages of active rooms kept in memory in front of a single-node store.
//!
//! Every join asks for a room's latest messages (and a reconnect for the few after its cursor). With SQLite each of
//! those is a round trip to the database thread; profiling a join storm showed the thread hand-offs (futex wake and
//! wait) as the largest single cost. This cache answers them from memory once a room has been read, and keeps itself
//! current from the commit path: the store runs the after-commit hook in id order per room, so appending there keeps
//! each cached window ordered and gapless.
//!
//! Only for stores this process alone writes (SQLite, memory): with a PostgreSQL shared by several nodes another node's
//! messages would never reach this cache.
//!
//! Filling races with appends: a room is marked `Filling` before its database read, an append committed meanwhile
//! marks the fill stale, and a stale fill is not installed (the next read simply fills again).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use protocol::chat::Message;

use super::{Account, AccountStore, AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, Store, StoreError};

/// How many rooms are cached at most; past that an arbitrary room is dropped (it refills on its next join).
const MAX_ROOMS: usize = 4096;

enum Entry {
    /// A database read is under way; `stale` once an append committed during it.
    Filling { stale: bool },
    /// The newest messages of the room.
    Ready(Window),
}

struct Window {
    /// Oldest first, at most `capacity`.
    messages: VecDeque<Message>,
    /// True when `messages` is the room's entire history.
    whole: bool,
}

impl Window {
    fn append(&mut self, message: &Message, capacity: usize) {
        if self.messages.back().is_some_and(|last| last.id >= message.id) {
            return; // Already read from the database by the fill that raced this commit.
        }
        self.messages.push_back(message.clone());
        if self.messages.len() > capacity {
            self.messages.pop_front();
            self.whole = false;
        }
    }

    /// The messages after `after_id`, if this window can tell (it reaches back far enough).
    fn after(&self, after_id: u64, limit: usize) -> Option<Vec<Message>> {
        let first = self.messages.front().map(|m| m.id);
        let covered = self.whole || first.is_some_and(|first| after_id + 1 >= first);
        covered.then(|| self.messages.iter().filter(|m| m.id > after_id).take(limit).cloned().collect())
    }
}

/// A [`Store`] whose latest-messages reads come from memory (see the module docs).
pub struct RecentCache {
    inner: Arc<dyn Store>,
    capacity: usize,
    rooms: Arc<Mutex<HashMap<String, Entry>>>,
}

impl RecentCache {
    /// Caches up to `capacity` newest messages per room (the join history size) in front of `inner`.
    pub fn new(inner: Arc<dyn Store>, capacity: usize) -> Self {
        Self { inner, capacity: capacity.max(1), rooms: Arc::new(Mutex::new(HashMap::new())) }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the room's window from the database and installs it unless an append raced the read.
    async fn fill(&self, room: &str) -> Result<Vec<Message>, StoreError> {
        let filling = {
            let mut rooms = self.rooms();
            if rooms.len() >= MAX_ROOMS && !rooms.contains_key(room) {
                let evict = rooms.keys().next().cloned();
                if let Some(evict) = evict {
                    rooms.remove(&evict);
                }
            }
            match rooms.get(room) {
                Some(Entry::Filling { .. }) => false,
                _ => {
                    rooms.insert(room.to_owned(), Entry::Filling { stale: false });
                    true
                }
            }
        };
        let read = self.inner.latest(room, self.capacity).await;
        if filling {
            let mut rooms = self.rooms();
            match (&read, rooms.get(room)) {
                (Ok(messages), Some(Entry::Filling { stale: false })) => {
                    let whole = messages.len() < self.capacity;
                    let window = Window { messages: messages.iter().cloned().collect(), whole };
                    rooms.insert(room.to_owned(), Entry::Ready(window));
                }
                (_, Some(Entry::Filling { .. })) => {
                    rooms.remove(room);
                }
                _ => {}
            }
        }
        read
    }

    fn cached_latest(&self, room: &str, limit: usize) -> Option<Vec<Message>> {
        match self.rooms().get(room) {
            Some(Entry::Ready(window)) if limit <= window.messages.len() || window.whole => {
                let skip = window.messages.len().saturating_sub(limit);
                Some(window.messages.iter().skip(skip).cloned().collect())
            }
            _ => None,
        }
    }
}

#[async_trait]
impl MessageStore for RecentCache {
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError> {
        let rooms = self.rooms.clone();
        let capacity = self.capacity;
        let room = record.room.clone();
        let update: AfterCommit = Box::new(move |appended: &Appended| {
            if !appended.duplicate {
                let mut rooms = rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match rooms.get_mut(&room) {
                    Some(Entry::Ready(window)) => window.append(&appended.message, capacity),
                    Some(Entry::Filling { stale }) => *stale = true,
                    None => {}
                }
            }
            after_commit(appended);
        });
        self.inner.append_then(record, update).await
    }

    async fn latest(&self, room: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        if let Some(messages) = self.cached_latest(room, limit) {
            return Ok(messages);
        }
        if limit > self.capacity {
            return self.inner.latest(room, limit).await;
        }
        let window = self.fill(room).await?;
        let skip = window.len().saturating_sub(limit);
        Ok(window.into_iter().skip(skip).collect())
    }

    async fn after(&self, room: &str, after_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        let cached = match self.rooms().get(room) {
            Some(Entry::Ready(window)) => window.after(after_id, limit),
            _ => None,
        };
        match cached {
            Some(messages) => Ok(messages),
            None => self.inner.after(room, after_id, limit).await,
        }
    }

    async fn before(&self, room: &str, before_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.inner.before(room, before_id, limit).await
    }

    async fn recent_rooms(&self, limit: usize) -> Result<Vec<RoomActivity>, StoreError> {
        self.inner.recent_rooms(limit).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[async_trait]
impl AccountStore for RecentCache {
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError> {
        self.inner.create_account(account, created_at).await
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.inner.find_account(username).await
    }

    async fn account_keys(&self) -> Result<Vec<String>, StoreError> {
        self.inner.account_keys().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::MemoryStore;

    fn record(room: &str, body: &str) -> NewRecord {
        NewRecord { room: room.into(), user: "ada".into(), body: body.into(), client_id: None, timestamp: 1 }
    }

    fn ids(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.id).collect()
    }

    #[tokio::test]
    async fn serves_windows_from_memory_and_follows_appends() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let cache = RecentCache::new(inner.clone(), 3);
        for n in 1..=2 {
            cache.append(record("r", &format!("m{n}"))).await.unwrap();
        }
        assert_eq!(ids(&cache.latest("r", 3).await.unwrap()), [1, 2]);
        // Written behind the cache's back: invisible, so the window really is served from memory.
        inner.append(record("r", "hidden")).await.unwrap();
        assert_eq!(ids(&cache.latest("r", 3).await.unwrap()), [1, 2]);
        assert_eq!(ids(&cache.after("r", 0, 10).await.unwrap()), [1, 2]);
        // Appends through the cache slide the window; ids stay ordered even when one raced the fill.
        cache.append(record("r", "m4")).await.unwrap();
        cache.append(record("r", "m5")).await.unwrap();
        assert_eq!(ids(&cache.latest("r", 3).await.unwrap()), [2, 4, 5]);
        assert_eq!(ids(&cache.latest("r", 2).await.unwrap()), [4, 5]);
        // Before the window: the database answers.
        assert_eq!(ids(&cache.after("r", 0, 10).await.unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(ids(&cache.after("r", 2, 10).await.unwrap()), [4, 5]);
        assert_eq!(ids(&cache.latest("r", 10).await.unwrap()), [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn an_append_during_a_fill_makes_it_stale() {
        let cache = RecentCache::new(Arc::new(MemoryStore::new()), 3);
        cache.rooms().insert("r".into(), Entry::Filling { stale: false });
        cache.append(record("r", "during the fill")).await.unwrap();
        assert!(matches!(cache.rooms().get("r"), Some(Entry::Filling { stale: true })));
    }

    #[tokio::test]
    async fn duplicates_do_not_grow_the_window() {
        let cache = RecentCache::new(Arc::new(MemoryStore::new()), 5);
        let with_id = || NewRecord { client_id: Some("c".into()), ..record("r", "once") };
        assert!(cache.latest("r", 5).await.unwrap().is_empty());
        cache.append(with_id()).await.unwrap();
        assert!(cache.append(with_id()).await.unwrap().duplicate);
        assert_eq!(ids(&cache.latest("r", 5).await.unwrap()), [1]);
    }
}
