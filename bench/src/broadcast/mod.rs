//! Broadcast round trips, the Hashrocket shootout method: clients join one `bench:*` room in steps; at each step a
//! few senders keep `inflight` broadcasts going and each broadcast's round trip is the time from its push until the
//! last member has received it. The scenario reports round-trip percentiles per step, the largest step whose p95 stays
//! under the bound, and the servers' CPU time per delivered message (all server pids summed, `/proc/<pid>/stat`).
//!
//! Needs servers started with `--bench-topics`. The `bench:*` channel echoes any JSON object to the room, so the
//! payload is the bench's own [`Probe`], sent and read typed like the chat payloads.
//!
//! Rooms larger than one process's open-file limit: with `workers`, this process holds only the `inflight` senders
//! (themselves members) and the workers hold the other members ([`Share`], run by `bench worker`), an equal part
//! each. How it is timed: the probe carries its send time in unix-epoch nanoseconds, every process stamps each
//! arrival with the same clock (`SystemTime`; one machine, one clock) and reports when all of its members have a
//! broadcast, with the latest stamp; the round trip is the latest stamp over all processes minus the send time
//! (`arrivals.rs`). Reports travel to the sender over pipes, which delays the next broadcast a little but not the
//! measured figure.

mod arrivals;
mod members;
mod report;
mod room;
mod share;

use std::{net::SocketAddr, time::Duration};

use protocol::{
    chat::Ack,
    typed::{Event, Request},
};
use serde::{Deserialize, Serialize};

use self::{
    arrivals::{Rounds, now_ns},
    members::Sink,
    room::Room,
};
pub use self::{
    report::{BroadcastReport, StepReport},
    share::{Share, serve_share},
};
use crate::{
    frames,
    latency::Latency,
    servers::{self, Servers},
    spread::JOIN_REF,
    workers::Workers,
};

/// The payload of a measured broadcast, pushed as `broadcast` and received as `broadcast` by every member (the
/// `bench:*` channel replies `{}` to the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The broadcast's sequence number over the whole run.
    pub seq: u64,
    /// When it was pushed, in nanoseconds since the unix epoch.
    pub sent_ns: u64,
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

/// The room every member joins.
const TOPIC: &str = "bench:broadcast";

/// What to run.
#[derive(Debug, Clone)]
pub struct BroadcastConfig {
    /// Server address (several processes may share it with `SO_REUSEPORT`).
    pub addr: SocketAddr,
    /// Member counts to step through (ascending).
    pub steps: Vec<usize>,
    /// Broadcasts measured per step.
    pub broadcasts: usize,
    /// Broadcasts in flight at once (one sender each).
    pub inflight: usize,
    /// Handshakes in flight while growing the room, in all (split over the workers).
    pub concurrency: usize,
    /// A broadcast not complete after this long counts as lost.
    pub timeout: Duration,
    /// The server processes, for their CPU time.
    pub servers: Servers,
    /// The p95 bound the report's "largest step" is judged against.
    pub bound_ms: f64,
    /// Worker processes holding members; `None`: this process holds them all.
    pub workers: Option<Workers>,
}

/// One sender: pushes its share of a step's broadcasts one after another, each after the previous completed; the
/// round trip of each in µs, `None` when lost.
async fn send_share(sink: &Sink, seqs: Vec<u64>, rounds: &Rounds, parts: usize, timeout: Duration) -> Vec<Option<u32>> {
    let mut round_trips = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let finished = rounds.expect(seq, parts);
        let sent_ns = now_ns();
        let sent = match frames::push(JOIN_REF, &seq.to_string(), TOPIC, &Probe { seq, sent_ns }) {
            Ok(frame) => sink.send(frame),
            Err(_) => false,
        };
        let outcome = if sent { tokio::time::timeout(timeout, finished).await.ok().and_then(Result::ok) } else { None };
        rounds.forget(seq);
        round_trips
            .push(outcome.map(|last_ns| (last_ns.saturating_sub(sent_ns) / 1_000).min(u64::from(u32::MAX)) as u32));
    }
    round_trips
}

/// Runs the scenario; connections close when it returns.
pub async fn run(config: BroadcastConfig) -> BroadcastReport {
    let total = config.steps.len() * config.broadcasts;
    let mut room = Room::start(&config, total);
    let mut steps = Vec::new();
    let mut next_seq = 0u64;
    for &target in &config.steps {
        room.grow(&config, target).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let clients = room.members();
        let parts = room.parts();
        let cpu_before = config.servers.cpu_seconds();
        let started = std::time::Instant::now();
        let seqs = next_seq..next_seq + config.broadcasts as u64;
        next_seq = seqs.end;
        let senders = room.senders.len().max(1);
        let shares: Vec<Vec<u64>> = (0..senders).map(|s| seqs.clone().skip(s).step_by(senders).collect()).collect();
        let rounds = room.rounds.clone();
        let results = futures::future::join_all(
            room.senders
                .iter()
                .zip(shares)
                .map(|(sink, share)| send_share(sink, share, &rounds, parts, config.timeout)),
        )
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_after = config.servers.cpu_seconds();
        let (delivered, closed_members) = room.delivered(seqs).await;
        let mut round_trips: Vec<u32> = results.iter().flatten().flatten().copied().collect();
        let lost = results.iter().flatten().filter(|r| r.is_none()).count()
            + config.broadcasts.saturating_sub(results.iter().map(Vec::len).sum());
        round_trips.sort_unstable();
        let per_message = |seconds: f64| seconds * 1e6 / delivered.max(1) as f64;
        let used = servers::cpu_between(cpu_before, cpu_after).filter(|_| delivered > 0);
        let (cpu_per_message, user_per_message) =
            (used.map(|(user, system)| per_message(user + system)), used.map(|(user, _)| per_message(user)));
        steps.push(StepReport {
            clients,
            completed: round_trips.len(),
            lost,
            latency: Latency::from_sorted_us(&round_trips),
            delivered,
            delivered_per_s: delivered as f64 / elapsed.max(0.001),
            closed_members,
            server_cpu_us_per_message: cpu_per_message,
            server_user_us_per_message: user_per_message,
        });
    }
    let largest_within_bound = steps
        .iter()
        .filter(|s| s.lost == 0 && s.completed > 0 && s.latency.p95_ms < config.bound_ms)
        .map(|s| s.clients)
        .max();
    let (processes, failed_connections) = (room.processes(), room.failed);
    room.finish().await;
    BroadcastReport {
        broadcasts: config.broadcasts,
        inflight: config.inflight,
        bound_ms: config.bound_ms,
        processes,
        fd_limit: crate::fd_limit(),
        server_processes: config.servers.pids.len(),
        steps,
        largest_within_bound,
        failed_connections,
    }
}
