//! The schema and its migrations, embedded in the binary and applied in order on start by sqlx's migrator.
//!
//! Each migration is plain SQL that SQLite and PostgreSQL both accept, applied in one transaction with its record in
//! `_sqlx_migrations`. On PostgreSQL the migrator holds an advisory lock while it runs, so several nodes starting at
//! once against an empty database apply each migration exactly once and all come up. Statements are also idempotent
//! (`IF NOT EXISTS`): databases created before the migrator (recorded in the old `schema_migrations` table) adopt it
//! without change. Never edit an applied migration; add a new one.

use std::borrow::Cow;

use sqlx::{Row, SqlSafeStr};
use sqlx_core::{
    any::AnyPool,
    migrate::{Migration, MigrationType, Migrator},
};

use super::{StoreError, accounts::username_key};

/// (version, description, SQL) in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "rooms and messages",
        // One row per room: the last id handed out (ids are never reused) and when it last had a message. Leading the
        // client-id index with client_id: group commit looks a batch's ids up with `client_id IN (...)`.
        "CREATE TABLE IF NOT EXISTS rooms (
            slug TEXT PRIMARY KEY,
            last_id BIGINT NOT NULL,
            last_message_at BIGINT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS messages (
            room TEXT NOT NULL,
            id BIGINT NOT NULL,
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            client_id TEXT,
            sent_at BIGINT NOT NULL,
            PRIMARY KEY (room, id)
        );
        CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (client_id, room) WHERE client_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS rooms_recent ON rooms (last_message_at);",
    ),
    (
        2,
        "accounts",
        // `username_key` is the lowercased name, so names are unique case-insensitively.
        "CREATE TABLE IF NOT EXISTS accounts (
            username_key TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );",
    ),
    (
        3,
        "api keys",
        // Only the SHA-256 of a key is stored (hex). A live name is unique (the partial index); a revoked key keeps
        // its row and date, so its name can be given to a new key.
        "CREATE TABLE IF NOT EXISTS api_keys (
            key_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT
        );
        CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;",
    ),
    (
        4,
        "operators",
        // Accounts allowed to see the dashboard, by account key (the row goes when rights are revoked).
        "CREATE TABLE IF NOT EXISTS operators (
            username_key TEXT PRIMARY KEY,
            granted_at BIGINT NOT NULL
        );",
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// How long a migration run that failed waits before it runs again (see [`migrate`]).
const MIGRATION_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Applies every migration not yet recorded, then brings account keys up to the current rule.
///
/// SQLite has no migration lock (PostgreSQL's migrator holds an advisory lock): when two processes open one new
/// SQLite file at once (a server starting while `server api-key` or `server admin` runs), both read an empty
/// `_sqlx_migrations` and the loser's insert of a version fails and rolls back. The winner's schema is in place by
/// then, so one more run finds every migration applied; a real failure fails again and is returned.
pub async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    if let Err(error) = migrator().run(pool).await {
        tracing::debug!(%error, "migrations failed, running them again");
        tokio::time::sleep(MIGRATION_RETRY).await;
        migrator().run(pool).await.map_err(StoreError::backend)?;
    }
    rekey_accounts(pool).await
}

/// Re-keys accounts stored under an older [`username_key`] rule (plain lowercase, before NFKC and confusable
/// skeletons), and their operator rights with them in the same transaction, so a change of the rule never takes an
/// operator's rights away. SQL cannot compute the key, so this is Rust, run at every start: a scan that updates
/// nothing once the keys are current, and harmless when several nodes run it at once. When two old accounts share a
/// new key (`alice` and a Cyrillic `аlice` registered before the rule), the older keeps it and the other keeps its old
/// key (and its rights), so both owners can still log in with the exact spelling; a warning names it.
async fn rekey_accounts(pool: &AnyPool) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT username_key, username FROM accounts ORDER BY created_at")
        .fetch_all(pool)
        .await
        .map_err(StoreError::backend)?;
    for row in rows {
        let (old, name): (String, String) =
            (row.try_get(0).map_err(StoreError::backend)?, row.try_get(1).map_err(StoreError::backend)?);
        let key = username_key(&name);
        if key == old {
            continue;
        }
        if let Err(error) = rekey(pool, &old, &key).await {
            tracing::warn!(account = name, %error, "account keeps its old key: an older account has its new one");
        }
    }
    Ok(())
}

/// Moves one account and its operator row (if any) from `old` to `key`, both or neither.
async fn rekey(pool: &AnyPool, old: &str, key: &str) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    for update in [
        "UPDATE accounts SET username_key = $1 WHERE username_key = $2",
        "UPDATE operators SET username_key = $1 WHERE username_key = $2",
    ] {
        sqlx::query(update).bind(key).bind(old).execute(&mut *transaction).await?;
    }
    transaction.commit().await
}
