//! [`AccountNames`]: every registered name in memory (used by [`super::LocalCache`]).
//!
//! Each guest connection asks whether its name belongs to an account (a guest may not take one). With SQLite that is
//! a database round trip per connect, almost always answered "no". This set holds the key of every account (a few
//! dozen bytes each), so unknown names cost no database work; known ones still read the account from the store.

use std::{collections::HashSet, sync::RwLock};

/// The [`super::accounts::username_key`] of every account.
pub struct AccountNames(RwLock<HashSet<String>>);

impl AccountNames {
    /// The set of `keys`.
    pub fn new(keys: impl IntoIterator<Item = String>) -> Self {
        Self(RwLock::new(keys.into_iter().collect()))
    }

    /// Whether `key` is an account's.
    pub fn contains(&self, key: &str) -> bool {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(key)
    }

    /// Adds `key`; true when it was not there yet.
    pub fn insert(&self, key: String) -> bool {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }
}
