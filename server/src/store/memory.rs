//! An in-memory [`MessageStore`]: the reference implementation the durable stores are tested against, and the
//! store used by tests that do not care about durability.

use std::collections::HashMap;

use async_trait::async_trait;
use protocol::chat::Message;
use std::sync::Mutex;

use super::{
    AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, StoreError,
    accounts::{Account, AccountStore, username_key},
};

/// One room's history.
#[derive(Default)]
struct Room {
    messages: Vec<Message>,
    client_ids: HashMap<String, u64>,
}

/// Keeps every room's messages in a map. A std `Mutex` is right here: critical sections are short and never await.
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<String, Room>>,
    accounts: Mutex<HashMap<String, Account>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_rooms<T>(&self, f: impl FnOnce(&mut HashMap<String, Room>) -> T) -> T {
        // A panic while holding the lock cannot leave a room half-updated (every update is a single push), so a
        // poisoned lock is safe to keep using.
        let mut rooms = self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rooms)
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError> {
        // `after_commit` runs under the lock, so callbacks of one room run in id order.
        Ok(self.with_rooms(|rooms| {
            let room = rooms.entry(record.room).or_default();
            let original = record
                .client_id
                .as_ref()
                .and_then(|c| room.client_ids.get(c))
                .and_then(|id| room.messages.iter().find(|m| m.id == *id));
            let appended = match original {
                Some(original) => Appended { message: original.clone(), duplicate: true },
                None => {
                    let id = room.messages.last().map_or(1, |m| m.id + 1);
                    let message = Message { id, user: record.user, body: record.body, timestamp: record.timestamp };
                    if let Some(client_id) = record.client_id {
                        room.client_ids.insert(client_id, id);
                    }
                    room.messages.push(message.clone());
                    Appended { message, duplicate: false }
                }
            };
            after_commit(&appended);
            appended
        }))
    }

    async fn latest(&self, room: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        Ok(self.with_rooms(|rooms| {
            rooms.get(room).map_or_else(Vec::new, |r| {
                let start = r.messages.len().saturating_sub(limit);
                r.messages[start..].to_vec()
            })
        }))
    }

    async fn after(&self, room: &str, after_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        Ok(self.with_rooms(|rooms| {
            rooms
                .get(room)
                .map_or_else(Vec::new, |r| r.messages.iter().filter(|m| m.id > after_id).take(limit).cloned().collect())
        }))
    }

    async fn before(&self, room: &str, before_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        Ok(self.with_rooms(|rooms| {
            rooms.get(room).map_or_else(Vec::new, |r| {
                let older: Vec<&Message> = r.messages.iter().filter(|m| m.id < before_id).collect();
                let start = older.len().saturating_sub(limit);
                older[start..].iter().map(|m| (*m).clone()).collect()
            })
        }))
    }

    async fn recent_rooms(&self, limit: usize) -> Result<Vec<RoomActivity>, StoreError> {
        Ok(self.with_rooms(|rooms| {
            let mut active: Vec<RoomActivity> = rooms
                .iter()
                .filter_map(|(name, r)| {
                    r.messages.last().map(|m| RoomActivity { room: name.clone(), last_message_at: m.timestamp })
                })
                .collect();
            active.sort_by(|a, b| b.last_message_at.cmp(&a.last_message_at).then_with(|| a.room.cmp(&b.room)));
            active.truncate(limit);
            active
        }))
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_account(&self, account: Account, _created_at: i64) -> Result<bool, StoreError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = username_key(&account.username);
        if accounts.contains_key(&key) {
            return Ok(false);
        }
        accounts.insert(key, account);
        Ok(true)
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(accounts.get(&username_key(username)).cloned())
    }

    async fn account_keys(&self) -> Result<Vec<String>, StoreError> {
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(accounts.keys().cloned().collect())
    }
}
