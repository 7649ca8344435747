//! Durable message history: the [`MessageStore`] contract and its implementations.
//!
//! The room channel only talks to this trait. Every implementation must give each room ids strictly increasing from
//! 1 and never reused, return messages oldest first, and honour `client_id` idempotency: appending a message whose
//! `client_id` was already stored in the same room returns the original message with `duplicate = true`.

mod account_names;
mod accounts;
mod api_keys;
mod batch;
mod engine;
mod local;
mod memory;
mod operators;
mod recent;
mod rows;
mod schema;
mod sql;
mod writer;

use async_trait::async_trait;
use protocol::chat::Message;
use thiserror::Error;

pub use accounts::{Account, AccountStore, username_key};
pub use api_keys::{ApiKey, ApiKeyStore};
pub use local::LocalCache;
pub use memory::MemoryStore;
pub use operators::{Grant, OperatorStore};
pub use sql::SqlStore;

/// A message about to be stored; the store assigns its id.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// Room slug (not the topic).
    pub room: String,
    /// Author's display name.
    pub user: String,
    /// Normalized body.
    pub body: String,
    /// Optional idempotency key chosen by the client.
    pub client_id: Option<String>,
    /// Server clock, milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The stored message (the original one for a duplicate `client_id`).
    pub message: Message,
    /// True when the `client_id` was seen before and nothing new was stored.
    pub duplicate: bool,
}

/// A room with recent activity, for the home page.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomActivity {
    pub room: String,
    /// Timestamp of its newest message.
    pub last_message_at: i64,
}

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backing database reported an error.
    #[error("store backend error: {0}")]
    Backend(String),
    /// The store is shutting down and accepts no more writes.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Wraps a backend error (its text is logged, never sent to clients).
    pub fn backend(error: impl std::fmt::Display) -> Self {
        Self::Backend(error.to_string())
    }
}

/// Runs right after the commit that stored (or found) a message, in id order within a room: the room channel
/// broadcasts from here, so members receive `message:new` in id order even when group commit stores several
/// messages at once (a client's `last_seen_id` is only a safe recovery cursor if ids arrive in order).
pub type AfterCommit = Box<dyn FnOnce(&Appended) + Send>;

/// Where messages live. Implementations are shared by every connection (`Arc<dyn MessageStore>`).
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a message durably, runs `after_commit` (in id order per room, before any later message's), then
    /// returns the message with its id.
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError>;

    /// Stores a message durably, then returns it with its id.
    async fn append(&self, record: NewRecord) -> Result<Appended, StoreError> {
        self.append_then(record, Box::new(|_| {})).await
    }
    /// The newest `limit` messages of a room, oldest first.
    async fn latest(&self, room: &str, limit: usize) -> Result<Vec<Message>, StoreError>;
    /// Messages with `id > after_id`, oldest first, at most `limit`.
    async fn after(&self, room: &str, after_id: u64, limit: usize) -> Result<Vec<Message>, StoreError>;
    /// Messages with `id < before_id`, oldest first: the `limit` newest of them.
    async fn before(&self, room: &str, before_id: u64, limit: usize) -> Result<Vec<Message>, StoreError>;
    /// The newest id of each of `rooms` that has messages (rooms without any are left out).
    async fn heads(&self, rooms: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut heads = Vec::with_capacity(rooms.len());
        for room in rooms {
            if let Some(newest) = self.latest(room, 1).await?.pop() {
                heads.push((room.clone(), newest.id));
            }
        }
        Ok(heads)
    }
    /// Rooms ordered by their newest message, most recent first.
    async fn recent_rooms(&self, limit: usize) -> Result<Vec<RoomActivity>, StoreError>;
    /// Ok when the store can serve requests (`/healthz`).
    async fn health(&self) -> Result<(), StoreError>;
    /// Commits what is queued and stops accepting writes (server shutdown).
    async fn close(&self) {}
}

/// Everything the server keeps in its database: messages, accounts, operators and API keys, one backend.
pub trait Store: MessageStore + AccountStore + OperatorStore + ApiKeyStore {}

impl<T: MessageStore + AccountStore + OperatorStore + ApiKeyStore> Store for T {}
