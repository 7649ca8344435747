//! One shared suite every `MessageStore` passes: the in-memory reference, SQLite, SQLite behind the local cache of recent
//! messages and account names (what a single-node server runs) and PostgreSQL (a throwaway server started by the test).

#![allow(clippy::unwrap_used)]

mod postgres;

use std::sync::Arc;

use server::store::{
    Account, AccountStore, ApiKey, Grant, LocalCache, MemoryStore, MessageStore, NewRecord, OperatorStore, SqlStore,
    Store,
};

fn record(room: &str, body: &str) -> NewRecord {
    NewRecord {
        room: room.into(),
        user: "ada".into(),
        body: body.into(),
        client_id: None,
        timestamp: 1_700_000_000_000,
    }
}

fn ids(messages: &[protocol::chat::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

async fn ids_start_at_one_and_increase_per_room(store: Arc<dyn Store>) {
    for n in 1..=3 {
        assert_eq!(store.append(record("a", &format!("a{n}"))).await.unwrap().message.id, n);
    }
    assert_eq!(store.append(record("b", "b1")).await.unwrap().message.id, 1, "ids are per room");
    let appended = store.append(record("a", "a4")).await.unwrap();
    assert!(!appended.duplicate);
    assert_eq!((appended.message.id, appended.message.body.as_str(), appended.message.user.as_str()), (4, "a4", "ada"));
}

async fn latest_after_before_are_oldest_first(store: Arc<dyn Store>) {
    for n in 1..=10 {
        store.append(record("r", &format!("m{n}"))).await.unwrap();
    }
    assert_eq!(ids(&store.latest("r", 3).await.unwrap()), vec![8, 9, 10]);
    assert_eq!(ids(&store.latest("r", 50).await.unwrap()).len(), 10);
    assert_eq!(ids(&store.after("r", 7, 100).await.unwrap()), vec![8, 9, 10]);
    assert_eq!(ids(&store.after("r", 2, 3).await.unwrap()), vec![3, 4, 5]);
    assert_eq!(ids(&store.before("r", 5, 2).await.unwrap()), vec![3, 4]);
    assert_eq!(ids(&store.before("r", 1, 10).await.unwrap()), Vec::<u64>::new());
    assert!(store.latest("empty", 50).await.unwrap().is_empty());
    let latest = store.latest("r", 1).await.unwrap();
    assert_eq!((latest[0].body.as_str(), latest[0].timestamp), ("m10", 1_700_000_000_000));
}

async fn client_id_is_idempotent_per_room(store: Arc<dyn Store>) {
    let with_id = |room: &str, body: &str| NewRecord { client_id: Some("c-1".into()), ..record(room, body) };
    let first = store.append(with_id("r", "hello")).await.unwrap();
    let again = store.append(with_id("r", "hello (retry)")).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.message, first.message, "the original message comes back");
    let other_room = store.append(with_id("s", "hello")).await.unwrap();
    assert!(!other_room.duplicate, "client ids are scoped to a room");
    assert_eq!(store.latest("r", 10).await.unwrap().len(), 1);
    // Concurrent retries of one client_id (likely in one group-commit batch) store it once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store.append(NewRecord { client_id: Some("c-2".into()), ..record("r", "same") }).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    assert!(results.iter().all(|r| r.message.id == results[0].message.id));
    assert_eq!(store.latest("r", 10).await.unwrap().len(), 2);
}

async fn concurrent_appends_get_unique_gapless_ids(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append(record("busy", &format!("m{n}"))).await.unwrap().message.id })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<u64>>());
    assert_eq!(ids(&store.after("busy", 0, 1000).await.unwrap()), (1..=200).collect::<Vec<u64>>());
}

async fn recent_rooms_by_last_message(store: Arc<dyn Store>) {
    for (room, at) in [("old", 1), ("new", 3), ("mid", 2), ("old", 0)] {
        store.append(NewRecord { timestamp: at, ..record(room, "x") }).await.unwrap();
    }
    let rooms: Vec<String> = store.recent_rooms(10).await.unwrap().into_iter().map(|r| r.room).collect();
    assert_eq!(rooms, vec!["new", "mid", "old"]);
    assert_eq!(store.recent_rooms(1).await.unwrap().len(), 1);
    store.health().await.unwrap();
}

async fn accounts_are_unique_case_insensitively(store: Arc<dyn Store>) {
    let account = |name: &str| Account { username: name.into(), password_hash: format!("hash-of-{name}") };
    assert!(store.create_account(account("Ada"), 1).await.unwrap());
    assert!(!store.create_account(account("ada"), 2).await.unwrap(), "taken, whatever the case");
    assert!(store.create_account(account("Grace"), 3).await.unwrap());
    let found = store.find_account("ADA").await.unwrap().unwrap();
    assert_eq!(found, account("Ada"), "the spelling chosen at registration is kept");
    assert_eq!(store.find_account("nobody").await.unwrap(), None);
    // Look-alikes are the same account: Cyrillic А, fullwidth ａｄａ.
    assert!(!store.create_account(account("\u{410}da"), 4).await.unwrap(), "a Cyrillic look-alike is taken");
    let fullwidth = store.find_account("\u{ff41}\u{ff44}\u{ff41}").await.unwrap().unwrap();
    assert_eq!(fullwidth.username, "Ada");
}

async fn operators_are_accounts_granted_and_revoked(store: Arc<dyn Store>) {
    let account = Account { username: "Ada".into(), password_hash: "hash".into() };
    assert!(store.create_account(account, 1).await.unwrap());
    assert!(!store.is_operator("Ada").await.unwrap(), "accounts are not operators by default");
    assert_eq!(store.grant_operator("nobody", 2).await.unwrap(), Grant::NoSuchAccount);
    assert!(!store.is_operator("nobody").await.unwrap());
    assert_eq!(store.grant_operator("ADA", 2).await.unwrap(), Grant::Granted, "any spelling names the account");
    assert_eq!(store.grant_operator("Ada", 3).await.unwrap(), Grant::Granted, "granting twice is harmless");
    assert!(store.is_operator("ada").await.unwrap());
    assert!(store.is_operator("\u{410}da").await.unwrap(), "a look-alike spelling is the same account");
    assert!(store.revoke_operator("Ada").await.unwrap());
    assert!(!store.revoke_operator("Ada").await.unwrap(), "nothing left to revoke");
    assert!(!store.is_operator("Ada").await.unwrap());
}

async fn api_keys_are_found_by_hash_until_revoked(store: Arc<dyn Store>) {
    assert!(store.create_api_key("backend", "hash-1", 1).await.unwrap());
    assert!(!store.create_api_key("backend", "hash-2", 2).await.unwrap(), "a live name is unique");
    assert_eq!(
        store.live_api_key("hash-1").await.unwrap(),
        Some(ApiKey { name: "backend".into(), created_at: 1, revoked_at: None })
    );
    assert_eq!(store.live_api_key("hash-2").await.unwrap(), None, "the refused key was not stored");
    assert!(store.revoke_api_key("backend", 3).await.unwrap());
    assert!(!store.revoke_api_key("backend", 4).await.unwrap(), "nothing left to revoke");
    assert_eq!(store.live_api_key("hash-1").await.unwrap(), None, "a revoked key is refused");
    assert!(store.create_api_key("backend", "hash-3", 5).await.unwrap(), "a revoked key's name can be reused");
    let keys = store.api_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| (k.created_at, k.revoked_at)).collect::<Vec<_>>(), [(1, Some(3)), (5, None)]);
}

/// Where a reopen test finds its database again.
enum Target {
    SqliteDir(std::path::PathBuf),
    Url(String),
}

async fn open(target: &Target) -> Arc<dyn MessageStore> {
    match target {
        Target::SqliteDir(dir) => Arc::new(SqlStore::open_sqlite_dir(dir).await.unwrap()),
        Target::Url(url) => Arc::new(SqlStore::open(url).await.unwrap()),
    }
}

async fn durable_across_reopen(target: Target) {
    let store = open(&target).await;
    store.append(record("keep", "one")).await.unwrap();
    store.append(record("keep", "two")).await.unwrap();
    store.close().await;
    drop(store);
    let store = open(&target).await;
    assert_eq!(ids(&store.latest("keep", 10).await.unwrap()), vec![1, 2]);
    assert_eq!(store.append(record("keep", "three")).await.unwrap().message.id, 3, "ids continue");
    store.close().await;
}

macro_rules! suite {
    ($module:ident, $open:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn ids_start_at_one_and_increase_per_room() {
                let (store, _guard) = $open.await;
                super::ids_start_at_one_and_increase_per_room(store).await;
            }

            #[tokio::test]
            async fn latest_after_before_are_oldest_first() {
                let (store, _guard) = $open.await;
                super::latest_after_before_are_oldest_first(store).await;
            }

            #[tokio::test]
            async fn client_id_is_idempotent_per_room() {
                let (store, _guard) = $open.await;
                super::client_id_is_idempotent_per_room(store).await;
            }

            #[tokio::test]
            async fn concurrent_appends_get_unique_gapless_ids() {
                let (store, _guard) = $open.await;
                super::concurrent_appends_get_unique_gapless_ids(store).await;
            }

            #[tokio::test]
            async fn recent_rooms_by_last_message() {
                let (store, _guard) = $open.await;
                super::recent_rooms_by_last_message(store).await;
            }

            #[tokio::test]
            async fn accounts_are_unique_case_insensitively() {
                let (store, _guard) = $open.await;
                super::accounts_are_unique_case_insensitively(store).await;
            }

            #[tokio::test]
            async fn operators_are_accounts_granted_and_revoked() {
                let (store, _guard) = $open.await;
                super::operators_are_accounts_granted_and_revoked(store).await;
            }
            #[tokio::test]
            async fn api_keys_are_found_by_hash_until_revoked() {
                let (store, _guard) = $open.await;
                super::api_keys_are_found_by_hash_until_revoked(store).await;
            }
        }
    };
}

/// Something to keep alive for the duration of a test (a temp dir, a database server).
type Guard = Box<dyn std::any::Any + Send>;

async fn memory() -> (Arc<dyn Store>, Guard) {
    (Arc::new(MemoryStore::new()), Box::new(()))
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("chat-store-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&path).unwrap();
    TempDir(path)
}

async fn sqlite() -> (Arc<dyn Store>, Guard) {
    let dir = temp_dir();
    let store = SqlStore::open_sqlite_dir(&dir.0).await.unwrap();
    (Arc::new(store), Box::new(dir))
}

async fn cached_sqlite() -> (Arc<dyn Store>, Guard) {
    let (store, guard) = sqlite().await;
    // A window smaller than the suite's rooms, so reads both inside and beyond it are exercised.
    (Arc::new(LocalCache::load(store, 4).await.unwrap()), guard)
}

async fn pg() -> (Arc<dyn Store>, Guard) {
    let server = tokio::task::spawn_blocking(postgres::Postgres::start).await.unwrap();
    let mut last_error = None;
    for _ in 0..50 {
        match SqlStore::open(&server.url).await {
            Ok(store) => return (Arc::new(store), Box::new(server)),
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("cannot connect to the test postgres: {last_error:?}");
}

suite!(memory_store, memory());
suite!(sqlite_store, sqlite());
suite!(cached_sqlite_store, cached_sqlite());
suite!(postgres_store, pg());

/// A database whose accounts were keyed by the older rule (lowercase only) is re-keyed on open, so a look-alike of
/// an old account is refused too.
#[tokio::test]
async fn old_account_keys_are_brought_up_to_the_current_rule() {
    let dir = temp_dir();
    let store = SqlStore::open_sqlite_dir(&dir.0).await.unwrap();
    store.close().await;
    let url = format!("sqlite://{}", dir.0.join("chat.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    // `Аda` with a Cyrillic А, as the lowercase-only rule stored it.
    sqlx::query("INSERT INTO accounts (username_key, username, password_hash, created_at) VALUES ($1, $2, 'x', 1)")
        .bind("\u{430}da")
        .bind("\u{410}da")
        .execute(&pool)
        .await
        .unwrap();
    // An operator under the old key stays one: its rights move with the account.
    sqlx::query("INSERT INTO operators (username_key, granted_at) VALUES ($1, 1)")
        .bind("\u{430}da")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let reopened = SqlStore::open_sqlite_dir(&dir.0).await.unwrap();
    let found = reopened.find_account("ada").await.unwrap().expect("found by the current key");
    assert_eq!(found.username, "\u{410}da");
    assert!(reopened.is_operator("\u{410}da").await.unwrap(), "the operator's rights follow the new key");
    let plain = Account { username: "ada".into(), password_hash: "y".into() };
    assert!(!reopened.create_account(plain, 2).await.unwrap(), "the Latin look-alike is taken");
    reopened.close().await;
}

/// Two processes opening one new SQLite file at once (a server starting while `server api-key` runs) both come up:
/// SQLite has no migration lock, so the one that loses the race runs the migrations again.
#[tokio::test]
async fn two_opens_of_one_new_sqlite_file_at_once_both_migrate() {
    for _ in 0..10 {
        let dir = temp_dir();
        let (one, two) = tokio::join!(SqlStore::open_sqlite_dir(&dir.0), SqlStore::open_sqlite_dir(&dir.0));
        let (one, two) = (one.unwrap(), two.unwrap());
        one.close().await;
        two.close().await;
    }
}

#[tokio::test]
async fn sqlite_is_durable_across_reopen() {
    let dir = temp_dir();
    let path = dir.0.clone();
    durable_across_reopen(Target::SqliteDir(path)).await;
}

#[tokio::test]
async fn postgres_is_durable_across_reopen() {
    let server = tokio::task::spawn_blocking(postgres::Postgres::start).await.unwrap();
    let url = server.url.clone();
    // Wait until the server accepts sessions.
    let mut ready = false;
    for _ in 0..50 {
        if let Ok(store) = SqlStore::open(&url).await {
            store.close().await;
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "postgres not ready");
    durable_across_reopen(Target::Url(url)).await;
}

/// Several writers on one PostgreSQL, as the nodes of a cluster: three stores opened at once on an empty database all
/// come up (migrations under the migrator's advisory lock); concurrent appends through all of them give each room dense
/// ids; one `client_id` sent through two writers at once is stored once and both get its id.
#[tokio::test]
async fn postgres_shared_by_three_writers() {
    let server = tokio::task::spawn_blocking(postgres::Postgres::start).await.unwrap();
    let url = server.url.clone();
    let mut stores = Vec::new();
    for _ in 0..50 {
        let opened = futures::future::join_all((0..3).map(|_| SqlStore::open(&url))).await;
        if opened.iter().all(Result::is_ok) {
            stores = opened.into_iter().map(|s| Arc::new(s.unwrap())).collect::<Vec<_>>();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stores.len(), 3, "three writers opened the empty database at once");

    let appends = (0..150).map(|n| {
        let store = stores[n % 3].clone();
        async move { store.append(record(["x", "y"][n % 2], &format!("m{n}"))).await.unwrap().message.id }
    });
    futures::future::join_all(appends).await;
    for room in ["x", "y"] {
        assert_eq!(ids(&stores[0].after(room, 0, 500).await.unwrap()), (1..=75).collect::<Vec<_>>(), "{room}");
    }

    for round in 0..20 {
        let mut retry = record("x", &format!("retry {round}"));
        retry.client_id = Some(format!("c-{round}"));
        let (a, b) = tokio::join!(stores[1].append(retry.clone()), stores[2].append(retry.clone()));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.message.id, b.message.id, "both writers answer with the one stored id");
        assert!(a.duplicate != b.duplicate, "exactly one of them stored it");
    }
    let stored = stores[0].after("x", 75, 500).await.unwrap();
    assert_eq!(ids(&stored), (76..=95).collect::<Vec<_>>(), "one row per client_id, ids still dense");
    for store in stores {
        store.close().await;
    }
}
