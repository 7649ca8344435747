//! The broadcast scenario's figures: one [`StepReport`] per room size and the [`BroadcastReport`] table.

use std::fmt;

use serde::Serialize;

use crate::latency::Latency;

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
    /// Copies of the step's broadcasts delivered, every member's together.
    pub delivered: u64,
    /// Messages delivered per second during the step.
    pub delivered_per_s: f64,
    /// Member connections that had ended by the end of the step (closed by the server, say), over the whole run.
    pub closed_members: usize,
    /// Server CPU (user + system, all server processes) per delivered message, µs.
    pub server_cpu_us_per_message: Option<f64>,
    /// The user-space part of it, µs (the rest is the kernel's TCP work; on loopback that includes the receiving
    /// side's processing, which the kernel charges to the sender).
    pub server_user_us_per_message: Option<f64>,
}

/// One row of the table: `clients done lost p50 p95 max msgs/s closed server-µs/msg (user)`.
impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = |v: Option<f64>| crate::or_na(v, |v| format!("{v:.2}"));
        write!(
            f,
            "  {:>7} {:>5} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>6} {:>15} ({})",
            self.clients,
            self.completed,
            self.lost,
            self.latency.p50_ms,
            self.latency.p95_ms,
            self.latency.max_ms,
            self.delivered_per_s,
            self.closed_members,
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
    /// Bench processes holding members (the sending one included).
    pub processes: usize,
    /// The open-file limit of each of them.
    pub fd_limit: u64,
    /// Server processes measured.
    pub server_processes: usize,
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
            "broadcast ({} per step, {} in flight, {} bench process(es) with fd limit {}, {} server process(es))\n  \
             clients  done  lost   p50 ms   p95 ms   max ms   msgs/s closed   server µs/msg (user)",
            self.broadcasts, self.inflight, self.processes, self.fd_limit, self.server_processes
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
