//! Registered accounts: the [`AccountStore`] contract, kept in the same database as messages.
//!
//! Names are unique case-insensitively (`Ada` and `ada` are one account); the store keeps the spelling chosen at
//! registration. Only password hashes are stored (argon2id, see `crate::auth::password`).

use async_trait::async_trait;

use super::StoreError;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name as registered.
    pub username: String,
    /// The argon2id hash in PHC string format.
    pub password_hash: String,
}

/// The key names are unique by.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// Where accounts live.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates an account; `Ok(false)` when the name (case-insensitively) is taken.
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError>;
    /// The account registered under `username` (any case).
    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError>;
    /// The [`username_key`] of every account (loaded once by [`super::LocalCache`]).
    async fn account_keys(&self) -> Result<Vec<String>, StoreError>;
}
