//! [`LocalCache`]: what a single-node server keeps in memory in front of its own database: the newest messages of
//! active rooms ([`RecentMessages`]) and the name of every account ([`AccountNames`]).
//!
//! Only for stores this process alone writes (SQLite, memory): with a PostgreSQL shared by several nodes, another
//! node's messages and accounts would never reach these copies.

use std::sync::Arc;

use async_trait::async_trait;
use protocol::chat::Message;

use super::{
    Account, AccountStore, AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, Store, StoreError,
    account_names::AccountNames,
    accounts::username_key,
    api_keys::{ApiKey, ApiKeyStore},
    operators::{Grant, OperatorStore},
    recent::RecentMessages,
};

/// A [`Store`] answering join history and account-name checks from memory (see the module docs).
pub struct LocalCache {
    inner: Arc<dyn Store>,
    recent: Arc<RecentMessages>,
    names: AccountNames,
}

impl LocalCache {
    /// Fronts `inner`, keeping up to `capacity` newest messages per room (the join history size); loads the account
    /// names.
    pub async fn load(inner: Arc<dyn Store>, capacity: usize) -> Result<Self, StoreError> {
        let names = AccountNames::new(inner.account_keys().await?);
        Ok(Self { inner, recent: Arc::new(RecentMessages::new(capacity)), names })
    }
}

#[async_trait]
impl MessageStore for LocalCache {
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError> {
        let recent = self.recent.clone();
        let room = record.room.clone();
        let update: AfterCommit = Box::new(move |appended: &Appended| {
            if !appended.duplicate {
                recent.committed(&room, &appended.message);
            }
            after_commit(appended);
        });
        self.inner.append_then(record, update).await
    }

    async fn latest(&self, room: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        if let Some(messages) = self.recent.latest(room, limit) {
            return Ok(messages);
        }
        let capacity = self.recent.capacity();
        if limit > capacity {
            return self.inner.latest(room, limit).await;
        }
        let filling = self.recent.begin_fill(room);
        let read = self.inner.latest(room, capacity).await;
        if filling {
            self.recent.finish_fill(room, read.as_deref().ok());
        }
        let window = read?;
        let skip = window.len().saturating_sub(limit);
        Ok(window.into_iter().skip(skip).collect())
    }

    async fn after(&self, room: &str, after_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        match self.recent.after(room, after_id, limit) {
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
impl AccountStore for LocalCache {
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError> {
        // Claimed before the insert, so no connect slips through between the commit and the set update. A name the
        // store calls taken stays claimed (it is registered); only a failed insert gives it back.
        let key = username_key(&account.username);
        let claimed = self.names.insert(key.clone());
        let created = self.inner.create_account(account, created_at).await;
        if claimed && created.is_err() {
            self.names.remove(&key);
        }
        created
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        if !self.names.contains(&username_key(username)) {
            return Ok(None);
        }
        self.inner.find_account(username).await
    }

    async fn account_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.names.keys())
    }
}

/// Operators are never cached: `server admin` changes them from another process while this one runs.
#[async_trait]
impl OperatorStore for LocalCache {
    async fn grant_operator(&self, username: &str, granted_at: i64) -> Result<Grant, StoreError> {
        self.inner.grant_operator(username, granted_at).await
    }

    async fn revoke_operator(&self, username: &str) -> Result<bool, StoreError> {
        self.inner.revoke_operator(username).await
    }

    async fn is_operator(&self, username: &str) -> Result<bool, StoreError> {
        self.inner.is_operator(username).await
    }
}

/// API keys are never cached: `server api-key` creates and revokes them from another process while this one runs.
#[async_trait]
impl ApiKeyStore for LocalCache {
    async fn create_api_key(&self, name: &str, key_hash: &str, created_at: i64) -> Result<bool, StoreError> {
        self.inner.create_api_key(name, key_hash, created_at).await
    }

    async fn live_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.inner.live_api_key(key_hash).await
    }

    async fn revoke_api_key(&self, name: &str, revoked_at: i64) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(name, revoked_at).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.api_keys().await
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

    fn account(name: &str) -> Account {
        Account { username: name.into(), password_hash: "hash".into() }
    }

    #[tokio::test]
    async fn serves_windows_from_memory_and_follows_appends() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let cache = LocalCache::load(inner.clone(), 3).await.unwrap();
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
        let cache = LocalCache::load(Arc::new(MemoryStore::new()), 3).await.unwrap();
        assert!(cache.recent.begin_fill("r"));
        cache.append(record("r", "during the fill")).await.unwrap();
        assert!(cache.recent.is_stale_fill("r"));
    }

    #[tokio::test]
    async fn duplicates_do_not_grow_the_window() {
        let cache = LocalCache::load(Arc::new(MemoryStore::new()), 5).await.unwrap();
        let with_id = || NewRecord { client_id: Some("c".into()), ..record("r", "once") };
        assert!(cache.latest("r", 5).await.unwrap().is_empty());
        cache.append(with_id()).await.unwrap();
        assert!(cache.append(with_id()).await.unwrap().duplicate);
        assert_eq!(ids(&cache.latest("r", 5).await.unwrap()), [1]);
    }

    #[tokio::test]
    async fn answers_unknown_names_from_memory_and_learns_new_accounts() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        inner.create_account(account("Ada"), 0).await.unwrap();
        let index = LocalCache::load(inner.clone(), 3).await.unwrap();
        assert_eq!(index.find_account("ADA").await.unwrap().unwrap().username, "Ada");
        // Created behind the index's back: not known, so really answered from memory.
        inner.create_account(account("Hidden"), 0).await.unwrap();
        assert!(index.find_account("hidden").await.unwrap().is_none());
        assert!(index.create_account(account("Grace"), 0).await.unwrap());
        assert!(index.find_account("grace").await.unwrap().is_some());
        // A taken name is refused; one the index had missed is learnt.
        assert!(!index.create_account(account("ada"), 0).await.unwrap());
        assert!(!index.create_account(account("hidden"), 0).await.unwrap());
        let mut keys = index.account_keys().await.unwrap();
        keys.sort();
        assert_eq!(keys, ["ada", "grace", "hidden"]);
    }
}
