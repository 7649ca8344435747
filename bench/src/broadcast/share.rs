//! Members held by worker processes. A worker ([`serve_share`]) joins members when told to ([`Command::Grow`]),
//! reports [`Report::Done`] as soon as all of its members have a broadcast (with the last arrival's unix-epoch ns) and
//! answers how many copies arrived; [`Remote`] is the parent's handle on one worker, whose reports feed the parent's
//! [`Rounds`].

use std::{net::SocketAddr, sync::Arc};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{
    arrivals::{Arrivals, Rounds},
    members::{self, Sink},
};
use crate::workers::{self, FromParent, Job, Reports, Worker, WorkerError, Workers};

/// Worker `part` of `parts`: its `k`-th member is connection `base + k * parts + part` of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    /// Server address.
    pub addr: SocketAddr,
    /// This worker's number.
    pub part: usize,
    /// Workers in all.
    pub parts: usize,
    /// Connections below this belong to the parent.
    pub base: usize,
    /// Broadcasts of the whole run (sequence numbers `0..total`).
    pub total: usize,
    /// Handshakes in flight at once in this worker.
    pub concurrency: usize,
}

/// From the parent.
#[derive(Debug, Serialize, Deserialize)]
enum Command {
    /// Join members until this worker has `to` (answered by [`Report::Grown`]).
    Grow { to: usize },
    /// How many copies of broadcasts `from..to` arrived (answered by [`Report::Delivered`]).
    Delivered { from: u64, to: u64 },
}

/// To the parent.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    /// Members joined here so far, and connections that failed to join so far.
    Grown { members: usize, failed: usize },
    /// Every member here has broadcast `seq`, the last one at `last_ns`.
    Done { seq: u64, last_ns: u64 },
    /// Copies of the asked broadcasts received here, and members whose connection ended.
    Delivered { copies: u64, closed: usize },
}

/// The worker's side (`bench worker`): serves the parent's commands until its stdin closes.
pub async fn serve_share(share: Share) {
    let arrivals =
        Arc::new(Arrivals::new(share.total, Box::new(|seq, last_ns| workers::report(&Report::Done { seq, last_ns }))));
    let mut sinks: Vec<Sink> = Vec::new();
    let (mut next, mut failed) = (0, 0);
    let mut parent = FromParent::stdin();
    while let Some(command) = parent.next::<Command>().await {
        match command {
            Command::Grow { to } => {
                let missing = to.saturating_sub(arrivals.members());
                let indices = (next..next + missing).map(|k| share.base + k * share.parts + share.part);
                next += missing;
                let (joined, newly_failed) = members::join(share.addr, indices, share.concurrency, &arrivals).await;
                sinks.extend(joined);
                failed += newly_failed;
                workers::report(&Report::Grown { members: arrivals.members(), failed });
            }
            Command::Delivered { from, to } => workers::report(&Report::Delivered {
                copies: arrivals.delivered(from..to),
                closed: arrivals.closed_members(),
            }),
        }
    }
}

/// The parent's handle on one worker.
pub(super) struct Remote {
    worker: Worker,
    /// Its answers ([`Report::Grown`], [`Report::Delivered`]); `Done` goes straight to the rounds.
    answers: mpsc::UnboundedReceiver<Report>,
    /// Members it holds.
    pub(super) members: usize,
    /// Connections it could not open or join, so far.
    failed: usize,
}

impl Remote {
    /// Starts worker `part` of `workers`, its completions feeding `rounds`.
    pub(super) fn start(workers: &Workers, share: Share, rounds: Arc<Rounds>) -> Result<Self, WorkerError> {
        let (worker, reports) = Worker::spawn(&workers.exe, &Job::Broadcast(share))?;
        let (answer, answers) = mpsc::unbounded_channel();
        tokio::spawn(read_reports(reports, answer, rounds));
        Ok(Self { worker, answers, members: 0, failed: 0 })
    }

    /// Asks it to grow to `to` members (answered by [`Remote::grown`]).
    pub(super) async fn grow(&mut self, to: usize) -> Result<(), WorkerError> {
        self.worker.send(&Command::Grow { to }).await
    }

    /// Waits for the answer to a [`Remote::grow`]; returns how many connections failed in that growth, `None` if
    /// the worker died (it then counts as holding nobody).
    pub(super) async fn grown(&mut self) -> Option<usize> {
        let answer = self.answers.recv().await;
        let Some(Report::Grown { members, failed }) = answer else {
            self.members = 0;
            return None;
        };
        self.members = members;
        let newly = failed.saturating_sub(self.failed);
        self.failed = failed;
        Some(newly)
    }

    /// Copies of broadcasts `seqs` its members received, and how many of their connections ended.
    pub(super) async fn delivered(&mut self, seqs: std::ops::Range<u64>) -> Option<(u64, usize)> {
        self.worker.send(&Command::Delivered { from: seqs.start, to: seqs.end }).await.ok()?;
        match self.answers.recv().await? {
            Report::Delivered { copies, closed } => Some((copies, closed)),
            _ => None,
        }
    }

    /// Lets it close its members and exit.
    pub(super) async fn finish(self) {
        let Self { worker, answers, .. } = self;
        drop(answers);
        worker.finish(std::time::Duration::from_secs(30)).await;
    }
}

/// Routes a worker's reports: completions to `rounds`, the rest to the parent's pending question.
async fn read_reports(mut reports: Reports, answer: mpsc::UnboundedSender<Report>, rounds: Arc<Rounds>) {
    loop {
        match reports.next::<Report>().await {
            Ok(Report::Done { seq, last_ns }) => rounds.part_done(seq, last_ns),
            Ok(other) => {
                if answer.send(other).is_err() {
                    return;
                }
            }
            Err(error) => {
                // Once the parent has let go of the worker, its exit is expected.
                if !answer.is_closed() {
                    crate::warn("broadcast", &format!("worker: {error}"));
                }
                return;
            }
        }
    }
}
