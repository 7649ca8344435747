//! Group commit: one writer task per store turns concurrent appends into one transaction.
//!
//! Appends queue up while a transaction commits; the writer then takes everything queued (up to [`MAX_BATCH`]) into
//! the next transaction. Every caller is answered only after the commit that holds its message returned, so an
//! acknowledged message is durable. Throughput comes from batching (one fsync per batch), durability from acking after
//! commit; under light load a batch is a single message and nothing waits for a timer.

use protocol::chat::Message;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{Appended, NewRecord, StoreError};

/// Most appends in one transaction: bounds the latency a single commit adds to the messages behind it.
pub const MAX_BATCH: usize = 512;
/// Appends waiting for the writer before callers are made to wait (backpressure instead of unbounded memory).
pub const QUEUE: usize = 8192;

/// An append waiting for its commit.
pub struct WriteRequest {
    /// What to store.
    pub record: NewRecord,
    /// Where the result goes once committed.
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Starts the writer task; it ends when every sender is dropped and the queue is drained.
pub fn spawn(pool: AnyPool) -> (mpsc::Sender<WriteRequest>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let handle = tokio::spawn(run(pool, rx));
    (tx, handle)
}

async fn run(pool: AnyPool, mut queue: mpsc::Receiver<WriteRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&NewRecord> = batch.iter().map(|r| &r.record).collect();
        match commit(&pool, &records).await {
            Ok(results) => {
                for (request, result) in batch.drain(..).zip(results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(%error, size = batch.len(), "group commit failed");
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(StoreError::Backend(error.to_string())));
                }
            }
        }
    }
}

/// Stores every record in one transaction; results in the same order.
async fn commit(pool: &AnyPool, records: &[&NewRecord]) -> Result<Vec<Appended>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(records.len());
    for record in records {
        results.push(append_one(&mut tx, record).await?);
    }
    tx.commit().await?;
    Ok(results)
}

async fn append_one(tx: &mut Transaction<'static, Any>, record: &NewRecord) -> Result<Appended, sqlx::Error> {
    if let Some(client_id) = &record.client_id {
        let existing = sqlx::query("SELECT id, author, body, sent_at FROM messages WHERE room = $1 AND client_id = $2")
            .bind(&record.room)
            .bind(client_id)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = existing {
            return Ok(Appended { message: message_from_row(&row)?, duplicate: true });
        }
    }
    // The room row hands out ids: the upsert's row lock also serializes concurrent writers on PostgreSQL (several
    // nodes sharing one database), and the id is committed with the message, so it is never handed out twice.
    let id: i64 = sqlx::query(
        "INSERT INTO rooms (slug, last_id, last_message_at) VALUES ($1, 1, $2)
         ON CONFLICT (slug) DO UPDATE SET last_id = rooms.last_id + 1, last_message_at = $2
         RETURNING last_id",
    )
    .bind(&record.room)
    .bind(record.timestamp)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    sqlx::query("INSERT INTO messages (room, id, author, body, client_id, sent_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&record.room)
        .bind(id)
        .bind(&record.user)
        .bind(&record.body)
        .bind(record.client_id.as_deref())
        .bind(record.timestamp)
        .execute(&mut **tx)
        .await?;
    let message = Message {
        id: u64::try_from(id).unwrap_or_default(),
        user: record.user.clone(),
        body: record.body.clone(),
        timestamp: record.timestamp,
    };
    Ok(Appended { message, duplicate: false })
}

/// A message from a `SELECT id, author, body, sent_at` row.
pub fn message_from_row(row: &sqlx::any::AnyRow) -> Result<Message, sqlx::Error> {
    let id: i64 = row.try_get(0)?;
    Ok(Message {
        id: u64::try_from(id).unwrap_or_default(),
        user: row.try_get(1)?,
        body: row.try_get(2)?,
        timestamp: row.try_get(3)?,
    })
}
