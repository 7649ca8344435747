//! Group commit: one writer task per store turns concurrent appends into one transaction.
//!
//! Appends queue up while a transaction commits; the writer then takes everything queued (up to [`MAX_BATCH`]) into
//! the next transaction. Every caller is answered only after the commit that holds its message returned, so an
//! acknowledged message is durable. Throughput comes from batching (one fsync per batch), durability from acking after
//! commit; under light load a batch is a single message and nothing waits for a timer.

use std::{collections::HashMap, sync::Arc, time::Instant};

use sqlx_core::any::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{AfterCommit, Appended, NewRecord, StoreError, engine::Engine};
use crate::metrics::Meters;

/// Most appends in one transaction: bounds the latency a single commit adds to the messages behind it.
const MAX_BATCH: usize = 512;
/// Appends waiting for the writer before callers are made to wait (backpressure instead of unbounded memory).
const QUEUE: usize = 8192;

/// An append waiting for its commit.
pub(super) struct WriteRequest {
    pub(super) record: NewRecord,
    /// Runs right after the commit, in batch order.
    pub(super) after_commit: AfterCommit,
    /// Where the result goes once committed.
    pub(super) reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Starts the writer task; it ends when every sender is dropped and the queue is drained.
pub(super) fn spawn(
    pool: AnyPool,
    engine: Engine,
    meters: Option<Arc<Meters>>,
) -> (mpsc::Sender<WriteRequest>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let handle = tokio::spawn(run(pool, engine, meters, rx));
    (tx, handle)
}

async fn run(pool: AnyPool, engine: Engine, meters: Option<Arc<Meters>>, mut queue: mpsc::Receiver<WriteRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&NewRecord> = batch.iter().map(|r| &r.record).collect();
        let started = Instant::now();
        match super::batch::commit(&pool, engine, &records).await {
            Ok(results) => {
                if let Some(meters) = &meters {
                    count(meters, &records, &results, started);
                }
                // Callbacks first, all of them, in batch order (ids ascend within a room); only then the replies.
                let requests = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                let mut replies = Vec::with_capacity(requests.len());
                for (request, result) in requests.into_iter().zip(results) {
                    (request.after_commit)(&result);
                    replies.push((request.reply, result));
                }
                for (reply, result) in replies {
                    let _ = reply.send(Ok(result));
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

/// Counts one committed batch: its latency and size, and its new messages (a duplicate `client_id` stores nothing)
/// by room.
fn count(meters: &Meters, records: &[&NewRecord], results: &[Appended], started: Instant) {
    let elapsed = started.elapsed();
    // A map, not a scan per record: a batch of 512 appends may name as many rooms.
    let mut rooms: HashMap<&str, u64> = HashMap::new();
    for (record, _) in records.iter().zip(results).filter(|(_, result)| !result.duplicate) {
        *rooms.entry(record.room.as_str()).or_default() += 1;
    }
    let stored = rooms.values().sum();
    meters.committed(records.len(), stored, elapsed, rooms);
}
