//! The presence join storm: N clients join one room as fast as they can; each keeps its own view of who is online
//! (from `presence_state` and `presence_diff`, with the phoenix.js rule that diffs arriving before the state are
//! applied after it) and the scenario measures when every client sees all N members.
//!
//! Clients are named `s<index>`, so a client's [`View`] is a vector indexed by member with the member's `phx_ref`
//! hash. A storm of N sends every client O(N) members in its `presence_state` and diffs, 2.3 GB of JSON in all at
//! 5,000, so the views read only the keys and refs out of each frame, borrowed from its text ([`view`]): the
//! generator shares the machine with the server and should not spend it building maps.

mod view;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use protocol::chat::{JoinParams, JoinReply};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use self::view::{PresenceChanges, PresenceEvent, View, read_presence};
use crate::{
    client::{BenchClient, ClientError},
    frames,
    servers::{self, Servers},
};

/// What to run.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// Socket URL without query, e.g. `ws://127.0.0.1:3000/socket/websocket`.
    pub url: String,
    /// Number of clients.
    pub clients: usize,
    pub room: String,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Give up after this long.
    pub timeout: Duration,
    /// The server processes, for their memory once every client converged.
    pub servers: Servers,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// This process's open-file limit.
    pub fd_limit: u64,
    /// Clients started.
    pub clients: usize,
    /// Joins answered ok.
    pub joined: usize,
    /// Clients that failed (connect, join error, closed).
    pub failed: usize,
    /// Clients that saw all N members.
    pub converged: usize,
    /// Seconds from start until the last join reply.
    pub all_joined_s: f64,
    /// Seconds from start until the last client converged (None if not all did).
    pub all_converged_s: Option<f64>,
    /// Frames received by all clients.
    pub frames: u64,
    /// Bytes of text received by all clients.
    pub bytes: u64,
    /// Server RSS before the storm, KiB (all server processes).
    pub rss_before_kib: Option<u64>,
    /// Server RSS when the storm ended (every client converged and still connected), KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / joined, KiB.
    pub kib_per_connection: Option<f64>,
}

impl fmt::Display for StormReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "join storm (fd limit {})\n  clients        {}\n  joined         {}\n  failed         {}\n  converged      {}\n  all joined     {:.2} s\n  all converged  {}\n  frames         {}\n  bytes          {:.1} MB\n  server RSS     {} → {}\n  per connection {}",
            self.fd_limit,
            self.clients,
            self.joined,
            self.failed,
            self.converged,
            self.all_joined_s,
            self.all_converged_s.map_or("no".to_owned(), |s| format!("{s:.2} s")),
            self.frames,
            self.bytes as f64 / 1e6,
            crate::or_na(self.rss_before_kib, |v| format!("{v} KiB")),
            crate::or_na(self.rss_after_kib, |v| format!("{v} KiB")),
            crate::or_na(self.kib_per_connection, |v| format!("{v:.1} KiB")),
        )
    }
}

struct Shared {
    start: Instant,
    joined: AtomicUsize,
    failed: AtomicUsize,
    converged: AtomicUsize,
    last_join_us: AtomicU64,
    last_converge_us: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
}

impl Shared {
    fn mark(&self, slot: &AtomicU64) {
        let micros = self.start.elapsed().as_micros() as u64;
        slot.fetch_max(micros, Ordering::Relaxed);
    }
}

async fn run_client(
    index: usize,
    config: Arc<StormConfig>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let topic = format!("room:{}", config.room);
    let mut client = {
        let _permit = gate.acquire().await;
        let url = format!("{}?vsn=2.0.0&user=s{index}", config.url);
        let mut client = BenchClient::connect(&url).await?;
        client.send_join(&topic, &JoinParams::default()).await?;
        client
    };
    let mut view = View::new(config.clients);
    let mut state_seen = false;
    let mut pending: Vec<PresenceChanges> = Vec::new();
    let mut converged = false;
    loop {
        let text = tokio::select! {
            text = client.next_text() => text?,
            _ = stop.changed() => break,
        };
        shared.frames.fetch_add(1, Ordering::Relaxed);
        shared.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        match read_presence(&text).transpose().map_err(frames::FrameError::from)? {
            Some(PresenceEvent::State(state)) => {
                view.apply_state(&state);
                for diff in pending.drain(..) {
                    view.apply_diff(&diff);
                }
                state_seen = true;
            }
            Some(PresenceEvent::Diff(diff)) if state_seen => view.apply_diff(&diff),
            Some(PresenceEvent::Diff(diff)) => pending.push(diff),
            None => {
                if let Some(reply) = frames::decode(&text)?.reply() {
                    // The only request is the join, so the only reply is its answer; a refusal fails this client.
                    frames::response::<JoinReply>(&reply)?;
                    shared.joined.fetch_add(1, Ordering::Relaxed);
                    shared.mark(&shared.last_join_us);
                }
            }
        }
        if state_seen && !converged && view.present == config.clients {
            converged = true;
            shared.converged.fetch_add(1, Ordering::Relaxed);
            shared.mark(&shared.last_converge_us);
        }
    }
    client.close().await;
    Ok(())
}

/// Runs the storm and waits until every client converged, or the timeout.
pub async fn run(config: StormConfig) -> StormReport {
    let config = Arc::new(config);
    let rss_before = config.servers.rss_kib();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        joined: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        converged: AtomicUsize::new(0),
        last_join_us: AtomicU64::new(0),
        last_converge_us: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        let (config, shared, gate, stop) = (config.clone(), shared.clone(), gate.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            if run_client(index, config, shared.clone(), gate, stop).await.is_err() {
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + config.timeout;
    while Instant::now() < deadline {
        let done = shared.converged.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= config.clients {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Measured while every client is still connected: what the server holds for a room this size.
    let rss_after = config.servers.rss_kib();
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let converged = shared.converged.load(Ordering::Relaxed);
    let joined = shared.joined.load(Ordering::Relaxed);
    let kib_per_connection = servers::kib_per(rss_before, rss_after, joined);
    StormReport {
        fd_limit: crate::fd_limit(),
        clients: config.clients,
        joined,
        failed: shared.failed.load(Ordering::Relaxed),
        converged,
        all_joined_s: shared.last_join_us.load(Ordering::Relaxed) as f64 / 1e6,
        all_converged_s: (converged == config.clients)
            .then(|| shared.last_converge_us.load(Ordering::Relaxed) as f64 / 1e6),
        frames: shared.frames.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_connection,
    }
}
