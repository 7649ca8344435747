//! Broadcast round trips, the Hashrocket shootout method: clients join one `bench:*` room in steps; at each step a
//! few senders keep `inflight` broadcasts going and each broadcast's round trip is the time from its push until the
//! last member has received it. The scenario reports round-trip percentiles per step, the largest step whose p95 stays
//! under the bound, and the server's CPU time per delivered message (from `/proc/<pid>/stat`).
//!
//! Needs a server started with `--bench-topics`. The `bench:*` channel echoes any JSON object to the room, so the
//! payload is the bench's own [`Probe`], sent and read typed like the chat payloads.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use protocol::{
    chat::Ack,
    typed::{Event, Request},
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    frames,
    latency::Latency,
    spread::{self, JOIN_REF, Ws},
};

/// The payload of a measured broadcast: `{"seq": N}`, pushed as `broadcast` and received as `broadcast` by every
/// member (the `bench:*` channel replies `{}` to the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The broadcast's sequence number over the whole run.
    pub seq: u64,
}

/// The event of the `bench:*` channel that sends its payload to every member.
const BROADCAST: &str = "broadcast";

impl Request for Probe {
    const EVENT: &'static str = BROADCAST;
    type Reply = Ack;
}

impl Event for Probe {
    const EVENT: &'static str = BROADCAST;
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BroadcastConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Member counts to step through (ascending).
    pub steps: Vec<usize>,
    /// Broadcasts measured per step.
    pub broadcasts: usize,
    /// Broadcasts in flight at once (one sender each).
    pub inflight: usize,
    /// Handshakes in flight while growing the room.
    pub concurrency: usize,
    /// A broadcast not complete after this long counts as lost.
    pub timeout: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// The p95 bound the report's "largest step" is judged against.
    pub bound_ms: f64,
}

/// One step's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Members in the room.
    pub clients: usize,
    /// Broadcasts that reached every member in time.
    pub completed: usize,
    /// Broadcasts that did not.
    pub lost: usize,
    /// Round-trip percentiles (the table shows p50, p95 and max).
    #[serde(flatten)]
    pub latency: Latency,
    /// Messages delivered per second during the step.
    pub delivered_per_s: f64,
    /// Server CPU (user + system) per delivered message, µs.
    pub server_cpu_us_per_message: Option<f64>,
    /// The user-space part of it, µs (the rest is the kernel's TCP work; on loopback that includes the receiving
    /// side's processing, which the kernel charges to the sender).
    pub server_user_us_per_message: Option<f64>,
}

/// One row of the table: `clients done lost p50 p95 max msgs/s server-µs/msg (user)`.
impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = |v: Option<f64>| crate::or_na(v, |v| format!("{v:.2}"));
        write!(
            f,
            "  {:>7} {:>5} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>15} ({})",
            self.clients,
            self.completed,
            self.lost,
            self.latency.p50_ms,
            self.latency.p95_ms,
            self.latency.max_ms,
            self.delivered_per_s,
            micros(self.server_cpu_us_per_message),
            micros(self.server_user_us_per_message),
        )
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BroadcastReport {
    /// Broadcasts measured per step.
    pub broadcasts: usize,
    /// Broadcasts in flight at once.
    pub inflight: usize,
    /// The p95 bound of `largest_within_bound`, ms.
    pub bound_ms: f64,
    /// This process's open-file limit.
    pub fd_limit: u64,
    /// Every step that ran.
    pub steps: Vec<StepReport>,
    /// Largest member count with p95 under the bound and nothing lost.
    pub largest_within_bound: Option<usize>,
    /// Connections that could not be opened or joined.
    pub failed_connections: usize,
}

impl fmt::Display for BroadcastReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "broadcast ({} per step, {} in flight, fd limit {})\n  clients  done  lost   p50 ms   p95 ms   max ms   msgs/s   server µs/msg (user)",
            self.broadcasts, self.inflight, self.fd_limit
        )?;
        for step in &self.steps {
            write!(f, "\n{step}")?;
        }
        write!(
            f,
            "\n  largest with p95 < {} ms: {}\n  failed connections: {}",
            self.bound_ms,
            self.largest_within_bound.map_or("none".to_owned(), |n| n.to_string()),
            self.failed_connections
        )
    }
}

/// Arrival bookkeeping shared by every reader.
struct Tally {
    /// Members currently in the room (the count a broadcast must reach).
    members: AtomicUsize,
    /// Arrivals per broadcast sequence number.
    arrivals: Vec<AtomicU32>,
    /// Completion signals, taken by whoever delivers the last copy.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Instant>>>,
}

impl Tally {
    fn arrived(&self, seq: u64) {
        let Some(count) = self.arrivals.get(seq as usize) else { return };
        let seen = count.fetch_add(1, Ordering::AcqRel) + 1;
        if seen as usize == self.members.load(Ordering::Acquire) {
            let now = Instant::now();
            if let Some(done) = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&seq) {
                let _ = done.send(now);
            }
        }
    }
}

/// Reads a member's frames for as long as the connection lives, counting broadcasts.
async fn read_member(mut stream: futures::stream::SplitStream<Ws>, tally: Arc<Tally>) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = message
            && let Ok(frame) = frames::decode(text.as_str())
            && let Some(Ok(probe)) = frames::event::<Probe>(&frame)
        {
            tally.arrived(probe.seq);
        }
    }
}

const TOPIC: &str = "bench:broadcast";

/// Opens connections `indices` into the room; the first `inflight` become the senders. Returns how many failed.
async fn grow(
    config: &BroadcastConfig,
    indices: std::ops::Range<usize>,
    tally: &Arc<Tally>,
    senders: &mut Vec<SplitSink<Ws, Message>>,
    idle_sinks: &mut Vec<SplitSink<Ws, Message>>,
) -> usize {
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let tasks: Vec<_> = indices
        .map(|index| {
            let gate = gate.clone();
            let addr = config.addr;
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                spread::connect_and_join(addr, index, &format!("b{index}"), TOPIC).await
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok(Some(ws)) => {
                let (sink, stream) = ws.split();
                tally.members.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(read_member(stream, tally.clone()));
                if senders.len() < config.inflight.max(1) {
                    senders.push(sink);
                } else {
                    idle_sinks.push(sink);
                }
            }
            _ => failed += 1,
        }
    }
    failed
}

/// One sender: pushes its share of a step's broadcasts one after another, each after the previous completed.
async fn send_share(
    sink: &mut SplitSink<Ws, Message>,
    seqs: Vec<u64>,
    tally: &Tally,
    timeout: Duration,
) -> Vec<Option<u32>> {
    let mut round_trips = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let Ok(frame) = frames::push(JOIN_REF, &seq.to_string(), TOPIC, &Probe { seq }) else {
            round_trips.push(None);
            continue;
        };
        let (done, finished) = oneshot::channel();
        tally.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(seq, done);
        let sent = Instant::now();
        if sink.send(Message::text(frame)).await.is_err() {
            round_trips.push(None);
            continue;
        }
        let outcome = tokio::time::timeout(timeout, finished).await;
        round_trips.push(match outcome {
            Ok(Ok(at)) => Some(at.duration_since(sent).as_micros().min(u128::from(u32::MAX)) as u32),
            _ => None,
        });
        tally.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&seq);
    }
    round_trips
}

/// Runs the scenario; connections close when it returns.
pub async fn run(config: BroadcastConfig) -> BroadcastReport {
    let total = config.steps.len() * config.broadcasts;
    let tally = Arc::new(Tally {
        members: AtomicUsize::new(0),
        arrivals: (0..total).map(|_| AtomicU32::new(0)).collect(),
        waiting: Mutex::new(HashMap::new()),
    });
    let mut senders = Vec::new();
    let mut idle_sinks = Vec::new();
    let mut steps = Vec::new();
    let mut failed_connections = 0;
    let mut next_seq = 0u64;
    let mut next_index = 0;
    for &target in &config.steps {
        let missing = target.saturating_sub(tally.members.load(Ordering::Acquire));
        let indices = next_index..next_index + missing;
        next_index += missing;
        failed_connections += grow(&config, indices, &tally, &mut senders, &mut idle_sinks).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let clients = tally.members.load(Ordering::Acquire);
        let cpu_before = config.server_pid.and_then(spread::cpu_seconds);
        let started = Instant::now();
        let seqs: Vec<u64> = (next_seq..next_seq + config.broadcasts as u64).collect();
        next_seq += config.broadcasts as u64;
        let shares: Vec<Vec<u64>> =
            (0..senders.len()).map(|s| seqs.iter().copied().skip(s).step_by(senders.len()).collect()).collect();
        let results = futures::future::join_all(
            senders.iter_mut().zip(shares).map(|(sink, share)| send_share(sink, share, &tally, config.timeout)),
        )
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_after = config.server_pid.and_then(spread::cpu_seconds);
        let mut round_trips: Vec<u32> = results.iter().flatten().flatten().copied().collect();
        let lost = results.iter().flatten().filter(|r| r.is_none()).count();
        round_trips.sort_unstable();
        let delivered: u64 = seqs.iter().map(|&s| u64::from(tally.arrivals[s as usize].load(Ordering::Acquire))).sum();
        let per_message = |seconds: f64| seconds * 1e6 / delivered.max(1) as f64;
        let (cpu_per_message, user_per_message) = match (cpu_before, cpu_after) {
            (Some(before), Some(after)) if delivered > 0 => {
                (Some(per_message(after.0 + after.1 - before.0 - before.1)), Some(per_message(after.0 - before.0)))
            }
            _ => (None, None),
        };
        steps.push(StepReport {
            clients,
            completed: round_trips.len(),
            lost,
            latency: Latency::from_sorted_us(&round_trips),
            delivered_per_s: delivered as f64 / elapsed.max(0.001),
            server_cpu_us_per_message: cpu_per_message,
            server_user_us_per_message: user_per_message,
        });
    }
    let largest_within_bound = steps
        .iter()
        .filter(|s| s.lost == 0 && s.completed > 0 && s.latency.p95_ms < config.bound_ms)
        .map(|s| s.clients)
        .max();
    drop(idle_sinks);
    BroadcastReport {
        broadcasts: config.broadcasts,
        inflight: config.inflight,
        bound_ms: config.bound_ms,
        fd_limit: crate::fd_limit(),
        steps,
        largest_within_bound,
        failed_connections,
    }
}
