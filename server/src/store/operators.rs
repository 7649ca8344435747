//! Operators: the accounts allowed to watch the server (the `/dashboard` page and the `admin:stats` channel).
//!
//! Kept in the same database as the accounts, by [`username_key`](super::username_key), so an operator is the account
//! whatever spelling it logs in with. Granted and revoked from the command line (`server admin`); the page and the
//! channel ask the store at every render and join (never a cache), so a revoke takes effect without new tokens.

use async_trait::async_trait;

use super::StoreError;

/// What granting operator rights found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The account is an operator now (or already was).
    Granted,
    /// No account has that name.
    NoSuchAccount,
}

/// Where operator rights live.
#[async_trait]
pub trait OperatorStore: Send + Sync + 'static {
    /// Makes the account `username` (any spelling of it) an operator; `granted_at` is ms since the epoch.
    async fn grant_operator(&self, username: &str, granted_at: i64) -> Result<Grant, StoreError>;
    /// Takes operator rights away; `Ok(false)` when the account had none.
    async fn revoke_operator(&self, username: &str) -> Result<bool, StoreError>;
    /// Whether the account `username` is an operator.
    async fn is_operator(&self, username: &str) -> Result<bool, StoreError>;
}
