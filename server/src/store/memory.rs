//! An in-memory [`MessageStore`]: the reference implementation the durable stores are tested against, and the
//! store used by tests that do not care about durability.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use protocol::chat::Message;
use std::sync::Mutex;

use super::{
    AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, StoreError,
    accounts::{Account, AccountStore, username_key},
    api_keys::{ApiKey, ApiKeyStore},
    operators::{Grant, OperatorStore},
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
    /// API keys by hash, oldest first.
    api_keys: Mutex<Vec<(String, ApiKey)>>,
    /// Operators' account keys.
    operators: Mutex<HashSet<String>>,
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

#[async_trait]
impl OperatorStore for MemoryStore {
    async fn grant_operator(&self, username: &str, _granted_at: i64) -> Result<Grant, StoreError> {
        let key = username_key(username);
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !accounts.contains_key(&key) {
            return Ok(Grant::NoSuchAccount);
        }
        self.operators.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key);
        Ok(Grant::Granted)
    }

    async fn revoke_operator(&self, username: &str) -> Result<bool, StoreError> {
        let mut operators = self.operators.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(operators.remove(&username_key(username)))
    }

    async fn is_operator(&self, username: &str) -> Result<bool, StoreError> {
        let operators = self.operators.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(operators.contains(&username_key(username)))
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, name: &str, key_hash: &str, created_at: i64) -> Result<bool, StoreError> {
        let mut keys = self.api_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.iter().any(|(hash, key)| hash == key_hash || (key.name == name && key.revoked_at.is_none())) {
            return Ok(false);
        }
        keys.push((key_hash.to_owned(), ApiKey { name: name.to_owned(), created_at, revoked_at: None }));
        Ok(true)
    }

    async fn live_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let keys = self.api_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(keys.iter().find(|(hash, key)| hash == key_hash && key.revoked_at.is_none()).map(|(_, key)| key.clone()))
    }

    async fn revoke_api_key(&self, name: &str, revoked_at: i64) -> Result<bool, StoreError> {
        let mut keys = self.api_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let live = keys.iter_mut().find(|(_, key)| key.name == name && key.revoked_at.is_none());
        let Some((_, key)) = live else {
            return Ok(false);
        };
        key.revoked_at = Some(revoked_at);
        Ok(true)
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let keys = self.api_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(keys.iter().map(|(_, key)| key.clone()).collect())
    }
}
