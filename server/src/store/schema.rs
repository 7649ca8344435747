//! The schema and its migrations, embedded in the binary and applied in order on start.
//!
//! Each migration is plain SQL that SQLite and PostgreSQL both accept. Applied versions are recorded in
//! `schema_migrations`; a migration runs in the same transaction as its record, so a crash never leaves one half done.

use sqlx::{AnyPool, Row};

use super::StoreError;

/// (version, statements) in order. Never edit an applied migration; add a new one. Statements are idempotent
/// (`IF NOT EXISTS`), so two nodes starting at once against one database both succeed.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            // One row per room: the last id handed out (ids are never reused) and when it last had a message.
            "CREATE TABLE IF NOT EXISTS rooms (
            slug TEXT PRIMARY KEY,
            last_id BIGINT NOT NULL,
            last_message_at BIGINT NOT NULL
        )",
            "CREATE TABLE IF NOT EXISTS messages (
            room TEXT NOT NULL,
            id BIGINT NOT NULL,
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            client_id TEXT,
            sent_at BIGINT NOT NULL,
            PRIMARY KEY (room, id)
        )",
            // Leading with client_id: group commit looks a batch's ids up with `client_id IN (...)`.
            "CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (client_id, room) WHERE client_id IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS rooms_recent ON rooms (last_message_at)",
        ],
    ),
    (
        2,
        &[
            // Accounts: `username_key` is the lowercased name, so names are unique case-insensitively.
            "CREATE TABLE IF NOT EXISTS accounts (
            username_key TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        ],
    ),
];

/// Applies every migration not yet recorded.
pub async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .execute(pool)
        .await
        .map_err(StoreError::backend)?;
    for (version, statements) in MIGRATIONS {
        let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::backend)?
            .map(|row| row.try_get::<i64, _>(0));
        if applied.is_some() {
            continue;
        }
        let mut tx = pool.begin().await.map_err(StoreError::backend)?;
        for statement in *statements {
            sqlx::query(statement).execute(&mut *tx).await.map_err(StoreError::backend)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING")
            .bind(*version)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
