//! Decoding query rows into the store's types: every `SELECT` of [`super::SqlStore`] and group commit reads its rows
//! through here, so a column order lives next to the one function that depends on it.

use protocol::chat::Message;
use sqlx::Row;
use sqlx_core::any::AnyRow;

use super::{Account, ApiKey, RoomActivity};

/// The columns [`message`] expects, in order.
pub(crate) const MESSAGE_COLUMNS: &str = "id, author, body, sent_at";

/// A message from a row that starts with [`MESSAGE_COLUMNS`].
pub(crate) fn message(row: &AnyRow) -> Result<Message, sqlx::Error> {
    let id: i64 = row.try_get(0)?;
    Ok(Message {
        id: u64::try_from(id).unwrap_or_default(),
        user: row.try_get(1)?,
        body: row.try_get(2)?,
        timestamp: row.try_get(3)?,
    })
}

/// An account from `SELECT username, password_hash`.
pub(crate) fn account(row: &AnyRow) -> Result<Account, sqlx::Error> {
    Ok(Account { username: row.try_get(0)?, password_hash: row.try_get(1)? })
}

/// A room's activity from `SELECT slug, last_message_at`.
pub(crate) fn room_activity(row: &AnyRow) -> Result<RoomActivity, sqlx::Error> {
    Ok(RoomActivity { room: row.try_get(0)?, last_message_at: row.try_get(1)? })
}

/// An API key from `SELECT name, created_at, revoked_at`.
pub(crate) fn api_key(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    Ok(ApiKey { name: row.try_get(0)?, created_at: row.try_get(1)?, revoked_at: row.try_get(2)? })
}
