//! The durable [`MessageStore`]: SQLite (the embedded default) or PostgreSQL (shared history for a cluster), one
//! implementation over sqlx's `Any` driver because every statement is SQL both accept. `Any` and the migrator come
//! from `sqlx-core` rather than the `sqlx` facade (see server/Cargo.toml for why); everything else is the facade's.
//! Statements built at run time (here and in [`super::batch`], marked `AssertSqlSafe`) are assembled only from
//! constants and generated placeholders: every value is bound.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`: every commit is fsynced, so an acknowledged message survives a
//! process crash *and* a power loss. That costs one fsync per commit, which group commit ([`super::writer`]) spreads
//! over every message of the batch; `NORMAL` would only protect against process crashes.

use std::{
    path::Path,
    sync::{Arc, Once},
    time::Duration,
};

use async_trait::async_trait;
use protocol::chat::Message;
use sqlx::{AssertSqlSafe, Executor, Row};
use sqlx_core::any::{Any, AnyArguments, AnyPool, AnyPoolOptions, driver::install_drivers};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::metrics::Meters;

use super::{
    AfterCommit, Appended, MessageStore, NewRecord, RoomActivity, StoreError,
    accounts::{Account, AccountStore, username_key},
    api_keys::{ApiKey, ApiKeyStore},
    engine::Engine,
    operators::{Grant, OperatorStore},
    rows::{self, MESSAGE_COLUMNS},
    schema,
    writer::{self, WriteRequest},
};

/// A SQL-backed store with a group-commit writer.
pub struct SqlStore {
    pool: AnyPool,
    engine: Engine,
    writer: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SqlStore {
    /// The SQLite database `chat.db` in `data_dir`.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open(&Self::sqlite_dir_url(data_dir)).await
    }

    /// The URL of the SQLite database `chat.db` in `data_dir`.
    pub(crate) fn sqlite_dir_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("chat.db").display())
    }

    /// Connects to `url`, applies migrations and starts the writer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_metered(url, None).await
    }

    /// [`Self::open`], with a writer that counts its commits in `meters`.
    pub(crate) async fn open_metered(url: &str, meters: Option<Arc<Meters>>) -> Result<Self, StoreError> {
        install_sql_drivers();
        let engine = Engine::of(url)?;
        let options = AnyPoolOptions::new()
            // SQLite: one writer plus readers (WAL lets them read during a commit). PostgreSQL: a few more readers.
            .max_connections(match engine {
                Engine::Sqlite => 4,
                Engine::Postgres => 8,
            })
            // A database that is down must turn into an `unavailable` reply well before a client's 10 s push
            // timeout; a local SQLite file only waits this long behind a long commit.
            .acquire_timeout(match engine {
                Engine::Sqlite => Duration::from_secs(10),
                Engine::Postgres => Duration::from_secs(3),
            })
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(url).await.map_err(StoreError::backend)?;
        schema::migrate(&pool).await?;
        let (sender, task) = writer::spawn(pool.clone(), engine, meters);
        Ok(Self { pool, engine, writer: Mutex::new(Some(sender)), writer_task: Mutex::new(Some(task)) })
    }

    /// The engine in use, for logs.
    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }

    async fn messages(&self, query: sqlx::query::Query<'_, Any, AnyArguments>) -> Result<Vec<Message>, StoreError> {
        let found = query.fetch_all(&self.pool).await.map_err(StoreError::backend)?;
        found.iter().map(|row| rows::message(row).map_err(StoreError::backend)).collect()
    }
}

/// Registers the two drivers `Any` dispatches to, once per process (sqlx refuses a second registration).
fn install_sql_drivers() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        if let Err(error) = install_drivers(&[sqlx::sqlite::any::DRIVER, sqlx::postgres::any::DRIVER]) {
            // Only if something else in the process registered drivers first; its list is used then.
            tracing::warn!(%error, "sqlx Any drivers were already installed");
        }
    });
}

/// Rooms per head lookup (one parameter each).
const HEADS_CHUNK: usize = 512;

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn id(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn append_then(&self, record: NewRecord, after_commit: AfterCommit) -> Result<Appended, StoreError> {
        let sender = self.writer.lock().await.clone().ok_or(StoreError::Closed)?;
        let (reply, result) = oneshot::channel();
        sender.send(WriteRequest { record, after_commit, reply }).await.map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    async fn latest(&self, room: &str, n: usize) -> Result<Vec<Message>, StoreError> {
        let mut newest_first = self
            .messages(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 ORDER BY id DESC LIMIT $2"
                )))
                .bind(room)
                .bind(limit(n)),
            )
            .await?;
        newest_first.reverse();
        Ok(newest_first)
    }

    async fn after(&self, room: &str, after_id: u64, n: usize) -> Result<Vec<Message>, StoreError> {
        self.messages(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND id > $2 ORDER BY id ASC LIMIT $3"
            )))
            .bind(room)
            .bind(id(after_id))
            .bind(limit(n)),
        )
        .await
    }

    async fn before(&self, room: &str, before_id: u64, n: usize) -> Result<Vec<Message>, StoreError> {
        let mut newest_first = self
            .messages(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
                )))
                .bind(room)
                .bind(id(before_id))
                .bind(limit(n)),
            )
            .await?;
        newest_first.reverse();
        Ok(newest_first)
    }

    async fn heads(&self, rooms: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut heads = Vec::with_capacity(rooms.len());
        for chunk in rooms.chunks(HEADS_CHUNK) {
            let mut sql = String::from("SELECT slug, last_id FROM rooms WHERE last_id > 0 AND slug IN ");
            self.engine.row(&mut sql, 0, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for room in chunk {
                query = query.bind(room.as_str());
            }
            for row in query.fetch_all(&self.pool).await.map_err(StoreError::backend)? {
                let last_id: i64 = row.try_get(1).map_err(StoreError::backend)?;
                heads.push((row.try_get(0).map_err(StoreError::backend)?, u64::try_from(last_id).unwrap_or_default()));
            }
        }
        Ok(heads)
    }

    async fn recent_rooms(&self, n: usize) -> Result<Vec<RoomActivity>, StoreError> {
        let found =
            sqlx::query("SELECT slug, last_message_at FROM rooms ORDER BY last_message_at DESC, slug ASC LIMIT $1")
                .bind(limit(n))
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::backend)?;
        found.iter().map(|row| rows::room_activity(row).map_err(StoreError::backend)).collect()
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn close(&self) {
        // Dropping the sender lets the writer drain what is queued, commit it and stop.
        self.writer.lock().await.take();
        if let Some(task) = self.writer_task.lock().await.take() {
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_account(&self, account: Account, created_at: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO accounts (username_key, username, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username_key) DO NOTHING",
        )
        .bind(username_key(&account.username))
        .bind(account.username)
        .bind(account.password_hash)
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() == 1)
    }

    async fn find_account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT username, password_hash FROM accounts WHERE username_key = $1")
            .bind(username_key(username))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.map(|row| rows::account(&row).map_err(StoreError::backend)).transpose()
    }

    async fn account_keys(&self) -> Result<Vec<String>, StoreError> {
        let found = sqlx::query("SELECT username_key FROM accounts")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        found.iter().map(|row| row.try_get(0).map_err(StoreError::backend)).collect()
    }
}

#[async_trait]
impl OperatorStore for SqlStore {
    async fn grant_operator(&self, username: &str, granted_at: i64) -> Result<Grant, StoreError> {
        // Granting twice keeps the first date.
        let key = username_key(username);
        let account = sqlx::query("SELECT 1 FROM accounts WHERE username_key = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        if account.is_none() {
            return Ok(Grant::NoSuchAccount);
        }
        sqlx::query(
            "INSERT INTO operators (username_key, granted_at) VALUES ($1, $2) ON CONFLICT (username_key) DO NOTHING",
        )
        .bind(key)
        .bind(granted_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(Grant::Granted)
    }

    async fn revoke_operator(&self, username: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM operators WHERE username_key = $1")
            .bind(username_key(username))
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn is_operator(&self, username: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM operators WHERE username_key = $1")
            .bind(username_key(username))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn create_api_key(&self, name: &str, key_hash: &str, created_at: i64) -> Result<bool, StoreError> {
        // No conflict target: the live-name index and the hash's primary key both make it a no-op.
        let result =
            sqlx::query("INSERT INTO api_keys (key_hash, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(key_hash)
                .bind(name)
                .bind(created_at)
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
        Ok(result.rows_affected() == 1)
    }

    async fn live_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row =
            sqlx::query("SELECT name, created_at, revoked_at FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::backend)?;
        row.map(|row| rows::api_key(&row).map_err(StoreError::backend)).transpose()
    }

    async fn revoke_api_key(&self, name: &str, revoked_at: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(revoked_at)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let found = sqlx::query("SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        found.iter().map(|row| rows::api_key(row).map_err(StoreError::backend)).collect()
    }
}
