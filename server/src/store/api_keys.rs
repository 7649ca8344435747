//! API keys: the [`ApiKeyStore`] contract, kept in the same database as messages and accounts.
//!
//! A key is stored only as its SHA-256 (see `crate::auth::api_key`), under a name chosen by the operator; a live
//! name is unique, so `server api-key revoke --name` means one key. Revoking keeps the row (with its date), so
//! `server api-key list` still shows it and the name can be reused for a new key. The server reads keys from the
//! database at every request (never a cache), so a key created or revoked by another process takes effect at once.

use async_trait::async_trait;

use super::StoreError;

/// A stored API key, without anything that would let one use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The operator's name for it (who uses it).
    pub name: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Where API keys live.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key by its hash; `Ok(false)` when a live key already has this name.
    async fn create_api_key(&self, name: &str, key_hash: &str, created_at: i64) -> Result<bool, StoreError>;
    /// The live (not revoked) key with this hash.
    async fn live_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Revokes the live key named `name`; `Ok(false)` when there is none.
    async fn revoke_api_key(&self, name: &str, revoked_at: i64) -> Result<bool, StoreError>;
    /// Every key, revoked ones included, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
}
