//! [`AccountIndex`]: every registered name in memory, in front of a single-node store.
//!
//! Each guest connection asks whether its name belongs to an account (a guest may not take one). With SQLite that is
//! a database round trip per connect, almost always answered "no". The index holds the key of every account (a few
//! dozen bytes each), so unknown names cost no database work; known ones still read the account from the
//! store. Like [`super::RecentCache`] it is only for stores this process alone writes: another node's new account
//! would be missing here.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use protocol::chat::Message;

use super::{
    Account, AccountStore, AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, Store, StoreError,
    accounts::username_key,
};

/// A [`Store`] that knows every account name without asking the database (see the module docs).
pub struct AccountIndex {
    inner: Arc<dyn Store>,
    keys: RwLock<HashSet<String>>,
}

impl AccountIndex {
    /// Loads the names of `inner`'s accounts.
    pub async fn load(inner: Arc<dyn Store>) -> Result<Self, StoreError> {
        let keys = inner.account_keys().await?.into_iter().collect();
        Ok(Self { inner, keys: RwLock::new(keys) })
    }

    fn knows(&self, key: &str) -> bool {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(key)
    }
}

#[async_trait]
impl AccountStore for AccountIndex {
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError> {
        // Claimed before the insert, so no connect slips through between the commit and the index update. A name the
        // store calls taken stays claimed (it is registered); only a failed insert gives it back.
        let key = username_key(&account.username);
        let claimed = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.clone());
        let created = self.inner.create_account(account, created_at).await;
        if claimed && created.is_err() {
            self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
        }
        created
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        if !self.knows(&username_key(username)) {
            return Ok(None);
        }
        self.inner.find_account(username).await
    }

    async fn account_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect())
    }
}

#[async_trait]
impl MessageStore for AccountIndex {
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError> {
        self.inner.append_then(record, after_commit).await
    }

    async fn latest(&self, room: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.inner.latest(room, limit).await
    }

    async fn after(&self, room: &str, after_id: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.inner.after(room, after_id, limit).await
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::MemoryStore;

    fn account(name: &str) -> Account {
        Account { username: name.into(), password_hash: "hash".into() }
    }

    #[tokio::test]
    async fn answers_unknown_names_from_memory_and_learns_new_accounts() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        inner.create_account(account("Ada"), 0).await.unwrap();
        let index = AccountIndex::load(inner.clone()).await.unwrap();
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
