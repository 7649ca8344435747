//! One group-commit batch as SQL: a handful of statements whatever the batch size.
//!
//! 1. one upsert that locks the batch's room rows, in slug order (so two nodes' batches never deadlock),
//! 2. one lookup of the batch's client ids (idempotent retries): under the room locks it sees every message another
//!    node committed before us, so one `client_id` sent to two nodes at once is stored once,
//! 3. one id allocation for all rooms of the batch (a multi-row upsert, `last_id = last_id + k`),
//! 4. one multi-row insert per [`INSERT_CHUNK`] messages,
//!
//! all in one transaction. The room locks are held until commit, so with several writers a room's ids are committed
//! in id order: id n is visible before n + 1 exists. Results come back in record order. A batch that loses a race
//! anyway (unique violation, deadlock) is retried whole.

use std::collections::HashMap;

use protocol::chat::Message;
use sqlx::{AssertSqlSafe, Row, Transaction};
use sqlx_core::any::{Any, AnyPool};

use super::{Appended, NewRecord, engine::Engine, rows};

/// Rows per multi-row statement: 6 parameters each stays far below SQLite's and PostgreSQL's parameter limits.
const INSERT_CHUNK: usize = 256;
/// Rooms per id-allocation statement (3 parameters each).
const ROOM_CHUNK: usize = 256;

/// What the batch does with one record.
enum Outcome {
    /// Stored now under this id.
    New(u64),
    /// Its client id was stored before: this is the original.
    Stored(Message),
    /// Its client id appeared earlier in this batch, at this index.
    SameAs(usize),
}

/// How often a batch that conflicted with another writer is tried again before its callers get the error.
const CONFLICT_RETRIES: usize = 3;

/// Stores every record in one transaction; results in record order.
pub(super) async fn commit(
    pool: &AnyPool,
    engine: Engine,
    records: &[&NewRecord],
) -> Result<Vec<Appended>, sqlx::Error> {
    let mut attempt = 0;
    loop {
        match commit_once(pool, engine, records).await {
            Err(error) if attempt < CONFLICT_RETRIES && is_conflict(&error) => {
                attempt += 1;
                tracing::debug!(%error, attempt, "batch conflicted with another writer; retrying");
            }
            result => return result,
        }
    }
}

/// Whether the error is a race with another writer that a retry resolves: a unique violation (`23505`, SQLite's
/// `2067`/`1555`), a deadlock (`40P01`) or a serialization failure (`40001`).
fn is_conflict(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    matches!(database.code().as_deref(), Some("23505" | "40P01" | "40001" | "2067" | "1555"))
}

async fn commit_once(pool: &AnyPool, engine: Engine, records: &[&NewRecord]) -> Result<Vec<Appended>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut rooms: Vec<&str> = records.iter().map(|r| r.room.as_str()).collect();
    rooms.sort_unstable();
    rooms.dedup();
    for chunk in rooms.chunks(ROOM_CHUNK) {
        lock_rooms(&mut tx, engine, chunk).await?;
    }
    let existing = existing_client_ids(&mut tx, engine, records).await?;

    // Decide what is new: a client id seen earlier in the store or earlier in this batch is a duplicate.
    let mut outcome: Vec<Outcome> = Vec::with_capacity(records.len());
    let mut first_in_batch: HashMap<(&str, &str), usize> = HashMap::new();
    let mut fresh_per_room: Vec<(&str, Vec<usize>)> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if let Some(client_id) = record.client_id.as_deref() {
            let key = (record.room.as_str(), client_id);
            if let Some(message) = existing.get(&key) {
                outcome.push(Outcome::Stored(message.clone()));
                continue;
            }
            if let Some(first) = first_in_batch.get(&key) {
                outcome.push(Outcome::SameAs(*first));
                continue;
            }
            first_in_batch.insert(key, index);
        }
        match fresh_per_room.iter_mut().find(|(room, _)| *room == record.room) {
            Some((_, indexes)) => indexes.push(index),
            None => fresh_per_room.push((record.room.as_str(), vec![index])),
        }
        outcome.push(Outcome::New(0));
    }

    fresh_per_room.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for chunk in fresh_per_room.chunks(ROOM_CHUNK) {
        let firsts = allocate_ids(&mut tx, engine, chunk, records).await?;
        for ((_, indexes), first) in chunk.iter().zip(firsts) {
            for (offset, index) in (0u64..).zip(indexes) {
                outcome[*index] = Outcome::New(first + offset);
            }
        }
    }

    let fresh: Vec<(&NewRecord, u64)> = outcome
        .iter()
        .zip(records)
        .filter_map(|(outcome, record)| match outcome {
            Outcome::New(id) => Some((*record, *id)),
            _ => None,
        })
        .collect();
    for chunk in fresh.chunks(INSERT_CHUNK) {
        insert(&mut tx, engine, chunk).await?;
    }
    tx.commit().await?;

    let mut results: Vec<Appended> = Vec::with_capacity(records.len());
    for (outcome, record) in outcome.into_iter().zip(records) {
        let appended = match outcome {
            Outcome::New(id) => Appended {
                message: Message {
                    id,
                    user: record.user.clone(),
                    body: record.body.clone(),
                    timestamp: record.timestamp,
                },
                duplicate: false,
            },
            Outcome::Stored(message) => Appended { message, duplicate: true },
            Outcome::SameAs(first) => Appended { message: results[first].message.clone(), duplicate: true },
        };
        results.push(appended);
    }
    Ok(results)
}

/// Creates missing room rows and locks every row of `rooms` (sorted) until the transaction ends: an upsert that
/// changes nothing, so it works alike on both engines (`SELECT … FOR UPDATE` cannot lock a row that does not exist).
async fn lock_rooms(tx: &mut Transaction<'static, Any>, engine: Engine, rooms: &[&str]) -> Result<(), sqlx::Error> {
    let mut sql = String::from("INSERT INTO rooms (slug, last_id, last_message_at) VALUES ");
    engine.rows(&mut sql, rooms.len(), 3);
    sql.push_str(" ON CONFLICT (slug) DO UPDATE SET last_id = rooms.last_id");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for room in rooms {
        query = query.bind(*room).bind(0i64).bind(0i64);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Reserves consecutive ids for each (room, record indexes) with one multi-row upsert; returns each room's first id,
/// in order. The room rows' locks serialize writers (several nodes sharing PostgreSQL), and the reservation commits
/// with the messages, so no id is ever handed out twice.
async fn allocate_ids(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    rooms: &[(&str, Vec<usize>)],
    records: &[&NewRecord],
) -> Result<Vec<u64>, sqlx::Error> {
    let mut sql = String::from("INSERT INTO rooms (slug, last_id, last_message_at) VALUES ");
    engine.rows(&mut sql, rooms.len(), 3);
    // `excluded.last_id` is the number of ids this batch takes in that room.
    sql.push_str(
        " ON CONFLICT (slug) DO UPDATE SET last_id = rooms.last_id + excluded.last_id,
          last_message_at = CASE WHEN rooms.last_message_at > excluded.last_message_at
                                 THEN rooms.last_message_at ELSE excluded.last_message_at END
          RETURNING slug, last_id",
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (room, indexes) in rooms {
        let count = i64::try_from(indexes.len()).unwrap_or(i64::MAX);
        let newest = indexes.iter().map(|i| records[*i].timestamp).max().unwrap_or_default();
        query = query.bind(*room).bind(count).bind(newest);
    }
    let mut last_ids: HashMap<String, i64> = HashMap::with_capacity(rooms.len());
    for row in query.fetch_all(&mut **tx).await? {
        last_ids.insert(row.try_get(0)?, row.try_get(1)?);
    }
    rooms
        .iter()
        .map(|(room, indexes)| {
            let last = last_ids.get(*room).copied().ok_or(sqlx::Error::RowNotFound)?;
            let count = i64::try_from(indexes.len()).unwrap_or(i64::MAX);
            Ok(u64::try_from(last - count + 1).unwrap_or_default())
        })
        .collect()
}

/// One multi-row INSERT of (record, id) pairs.
async fn insert(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    rows: &[(&NewRecord, u64)],
) -> Result<(), sqlx::Error> {
    let mut sql = String::from("INSERT INTO messages (room, id, author, body, client_id, sent_at) VALUES ");
    engine.rows(&mut sql, rows.len(), 6);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (record, id) in rows {
        query = query
            .bind(record.room.as_str())
            .bind(i64::try_from(*id).unwrap_or(i64::MAX))
            .bind(record.user.as_str())
            .bind(record.body.as_str())
            .bind(record.client_id.as_deref())
            .bind(record.timestamp);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Messages already stored under the client ids of this batch, by (room, client id).
async fn existing_client_ids<'r>(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    records: &[&'r NewRecord],
) -> Result<HashMap<(&'r str, &'r str), Message>, sqlx::Error> {
    let wanted: Vec<&NewRecord> = records.iter().copied().filter(|r| r.client_id.is_some()).collect();
    let mut found = HashMap::new();
    for chunk in wanted.chunks(INSERT_CHUNK) {
        let mut sql = format!("SELECT {}, room, client_id FROM messages WHERE client_id IN ", rows::MESSAGE_COLUMNS);
        engine.row(&mut sql, 0, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for record in chunk {
            query = query.bind(record.client_id.as_deref());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let room: String = row.try_get(4)?;
            let client_id: String = row.try_get(5)?;
            let record = chunk.iter().find(|r| r.room == room && r.client_id.as_deref() == Some(client_id.as_str()));
            if let Some(record) = record
                && let Some(client_id) = record.client_id.as_deref()
            {
                found.insert((record.room.as_str(), client_id), rows::message(&row)?);
            }
        }
    }
    Ok(found)
}
