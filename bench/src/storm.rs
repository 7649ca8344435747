//! The presence join storm: N clients join one room as fast as they can; each keeps its own view of who is online
//! (from `presence_state` and `presence_diff`, with the phoenix.js rule that diffs arriving before the state are
//! applied after it) and the scenario measures when every client sees all N members.
//!
//! Clients are named `s<index>`, so a view is a vector indexed by member with the member's `phx_ref` hash: a client's
//! memory stays small even when every one of N clients tracks N members.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

use crate::client::{BenchClient, ClientError, FrameRef};

/// What to run.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// Socket URL without query, e.g. `ws://127.0.0.1:3000/socket/websocket`.
    pub url: String,
    /// Number of clients.
    pub clients: usize,
    /// Room slug.
    pub room: String,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
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
}

#[derive(Deserialize)]
struct LitePresence<'a> {
    #[serde(borrow)]
    metas: Vec<LiteMeta<'a>>,
}

#[derive(Deserialize)]
struct LiteMeta<'a> {
    #[serde(borrow)]
    phx_ref: &'a str,
}

#[derive(Deserialize)]
struct LiteDiff<'a> {
    #[serde(borrow)]
    joins: HashMap<&'a str, LitePresence<'a>>,
    #[serde(borrow)]
    leaves: HashMap<&'a str, LitePresence<'a>>,
}

fn ref_hash(phx_ref: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    phx_ref.hash(&mut hasher);
    hasher.finish() | 1
}

/// One client's view of the room: member index → hash of its meta's phx_ref (0 = absent).
struct View {
    refs: Vec<u64>,
    present: usize,
}

impl View {
    fn new(size: usize) -> Self {
        Self { refs: vec![0; size], present: 0 }
    }

    fn index(key: &str) -> Option<usize> {
        key.strip_prefix('s')?.parse().ok()
    }

    fn join(&mut self, key: &str, presence: &LitePresence<'_>) {
        let (Some(index), Some(meta)) = (Self::index(key), presence.metas.last()) else {
            return;
        };
        let Some(slot) = self.refs.get_mut(index) else {
            return;
        };
        if *slot == 0 {
            self.present += 1;
        }
        *slot = ref_hash(meta.phx_ref);
    }

    fn leave(&mut self, key: &str, presence: &LitePresence<'_>) {
        let Some(index) = Self::index(key) else {
            return;
        };
        let Some(slot) = self.refs.get_mut(index) else {
            return;
        };
        if presence.metas.iter().any(|m| ref_hash(m.phx_ref) == *slot) && *slot != 0 {
            *slot = 0;
            self.present -= 1;
        }
    }

    fn apply_diff(&mut self, json: &str) -> Result<(), serde_json::Error> {
        let diff: LiteDiff<'_> = serde_json::from_str(json)?;
        for (key, presence) in &diff.joins {
            self.join(key, presence);
        }
        for (key, presence) in &diff.leaves {
            self.leave(key, presence);
        }
        Ok(())
    }

    fn apply_state(&mut self, json: &str) -> Result<(), serde_json::Error> {
        let state: HashMap<&str, LitePresence<'_>> = serde_json::from_str(json)?;
        self.refs.iter_mut().for_each(|r| *r = 0);
        self.present = 0;
        for (key, presence) in &state {
            self.join(key, presence);
        }
        Ok(())
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
        client.send_join(&topic, &serde_json::json!({})).await?;
        client
    };
    let mut view = View::new(config.clients);
    let mut state_seen = false;
    let mut pending: Vec<String> = Vec::new();
    let mut converged = false;
    loop {
        let text = tokio::select! {
            text = client.next_text() => text?,
            _ = stop.changed() => break,
        };
        shared.frames.fetch_add(1, Ordering::Relaxed);
        shared.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        let frame: FrameRef<'_> = serde_json::from_str(&text)?;
        match frame.3 {
            "phx_reply" => {
                if frame.4.get().contains(r#""status":"ok""#) {
                    shared.joined.fetch_add(1, Ordering::Relaxed);
                    shared.mark(&shared.last_join_us);
                } else {
                    return Err(ClientError::Closed);
                }
            }
            "presence_state" => {
                view.apply_state(frame.4.get())?;
                for diff in pending.drain(..) {
                    let frame: FrameRef<'_> = serde_json::from_str(&diff)?;
                    view.apply_diff(frame.4.get())?;
                }
                state_seen = true;
            }
            "presence_diff" if !state_seen => pending.push(text.clone()),
            "presence_diff" => view.apply_diff(frame.4.get())?,
            _ => {}
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
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let converged = shared.converged.load(Ordering::Relaxed);
    StormReport {
        clients: config.clients,
        joined: shared.joined.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        converged,
        all_joined_s: shared.last_join_us.load(Ordering::Relaxed) as f64 / 1e6,
        all_converged_s: (converged == config.clients)
            .then(|| shared.last_converge_us.load(Ordering::Relaxed) as f64 / 1e6),
        frames: shared.frames.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn view_applies_state_and_diffs_by_ref() {
        let mut view = View::new(3);
        view.apply_diff(r#"{"joins":{"s2":{"metas":[{"phx_ref":"c"}]}},"leaves":{}}"#).unwrap();
        view.apply_state(r#"{"s0":{"metas":[{"phx_ref":"a"}]},"s1":{"metas":[{"phx_ref":"b"}]}}"#).unwrap();
        assert_eq!(view.present, 2);
        view.apply_diff(r#"{"joins":{"s2":{"metas":[{"phx_ref":"c"}]}},"leaves":{"s0":{"metas":[{"phx_ref":"x"}]}}}"#)
            .unwrap();
        assert_eq!(view.present, 3, "a leave of an unknown ref removes nothing");
        view.apply_diff(r#"{"joins":{},"leaves":{"s0":{"metas":[{"phx_ref":"a"}]}}}"#).unwrap();
        assert_eq!(view.present, 2);
    }
}
