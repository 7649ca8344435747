//! The broadcast room as the sending process sees it: its own members (the senders first) and the workers holding
//! the rest, grown step by step.

use std::sync::Arc;

use super::{
    BroadcastConfig,
    arrivals::{Arrivals, Rounds},
    members::{self, Sink},
    share::{Remote, Share},
};
use crate::workers;

/// Connection indices of the workers' members start here, clear of this process's.
const WORKER_BASE: usize = 1 << 20;

pub(super) struct Room {
    local: Arc<Arrivals>,
    pub(super) rounds: Arc<Rounds>,
    /// The first `inflight` members here; each sends its share of the broadcasts.
    pub(super) senders: Vec<Sink>,
    /// Members here beyond the senders (no workers only).
    idle_sinks: Vec<Sink>,
    remotes: Vec<Remote>,
    next_index: usize,
    /// Connections that could not be opened or joined, over the run.
    pub(super) failed: usize,
}

impl Room {
    /// Starts the workers, if any (a worker that cannot start counts as holding nobody).
    pub(super) fn start(config: &BroadcastConfig, total: usize) -> Self {
        let rounds = Arc::new(Rounds::default());
        let to_rounds = rounds.clone();
        let local = Arc::new(Arrivals::new(total, Box::new(move |seq, last_ns| to_rounds.part_done(seq, last_ns))));
        let mut remotes = Vec::new();
        if let Some(workers) = config.workers.as_ref().filter(|w| w.count > 0) {
            for part in 0..workers.count {
                let share = Share {
                    addr: config.addr,
                    part,
                    parts: workers.count,
                    base: WORKER_BASE,
                    total,
                    concurrency: config.concurrency.div_ceil(workers.count).max(1),
                };
                match Remote::start(workers, share, rounds.clone()) {
                    Ok(remote) => remotes.push(remote),
                    Err(error) => crate::warn("broadcast", &format!("worker {part} did not start: {error}")),
                }
            }
        }
        Self { local, rounds, senders: Vec::new(), idle_sinks: Vec::new(), remotes, next_index: 0, failed: 0 }
    }

    /// Grows the room to `target` members: here only, or the senders here and the rest spread over the workers.
    pub(super) async fn grow(&mut self, config: &BroadcastConfig, target: usize) {
        let here = if self.remotes.is_empty() { target } else { target.min(config.inflight.max(1)) };
        let missing = here.saturating_sub(self.local.members());
        let indices = self.next_index..self.next_index + missing;
        self.next_index = indices.end;
        let (sinks, failed) = members::join(config.addr, indices, config.concurrency, &self.local).await;
        self.failed += failed;
        for sink in sinks {
            if self.senders.len() < config.inflight.max(1) {
                self.senders.push(sink);
            } else {
                self.idle_sinks.push(sink);
            }
        }
        let elsewhere = target.saturating_sub(self.local.members());
        let parts = self.remotes.len();
        let mut asked = Vec::new();
        for (part, remote) in self.remotes.iter_mut().enumerate() {
            asked.push(remote.grow(workers::share(elsewhere, parts, part).len()).await.is_ok());
        }
        for (remote, asked) in self.remotes.iter_mut().zip(asked) {
            if asked {
                self.failed += remote.grown().await.unwrap_or(0);
            } else {
                remote.members = 0;
            }
        }
    }

    /// Members in the room.
    pub(super) fn members(&self) -> usize {
        self.local.members() + self.remotes.iter().map(|r| r.members).sum::<usize>()
    }

    /// Processes whose members must all have a broadcast before it is complete.
    pub(super) fn parts(&self) -> usize {
        usize::from(self.local.members() > 0) + self.remotes.iter().filter(|r| r.members > 0).count()
    }

    /// Bench processes holding members.
    pub(super) fn processes(&self) -> usize {
        1 + self.remotes.len()
    }

    /// Copies of broadcasts `seqs` received everywhere, and member connections that ended, over the run.
    pub(super) async fn delivered(&mut self, seqs: std::ops::Range<u64>) -> (u64, usize) {
        let (mut copies, mut closed) = (self.local.delivered(seqs.clone()), self.local.closed_members());
        for remote in &mut self.remotes {
            if let Some((c, d)) = remote.delivered(seqs.clone()).await {
                copies += c;
                closed += d;
            }
        }
        (copies, closed)
    }

    /// Closes the workers (this process's connections close when it drops them).
    pub(super) async fn finish(self) {
        futures::future::join_all(self.remotes.into_iter().map(Remote::finish)).await;
        drop((self.senders, self.idle_sinks));
    }
}
