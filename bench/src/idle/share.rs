//! One process's share of the idle connections: open and join them and keep them alive the way phoenix.js keeps an
//! idle socket (read everything, heartbeat every 30 s: the server closes a socket silent for 60 s, and a run of
//! 100,000 joins takes longer than that), and, in a worker, report to the parent and hold them until its stdin closes.
//!
//! Over long poll a client is a session kept alive the way phoenix.js keeps one: a single waiting GET at all times,
//! the next sent as soon as one is answered (`204` every 10 s when nothing happens; no heartbeats).

use std::{
    net::SocketAddr,
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Semaphore, mpsc, watch},
    task::JoinHandle,
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Transport, frames,
    longpoll::Session,
    spread::{self, Ws},
    workers::{self, FromParent},
};

/// phoenix.js's heartbeat interval.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// Connections `indices` of the run: connection `i` is user `idle<i>` in room `idle-<i % rooms>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    /// Server address.
    pub addr: SocketAddr,
    /// Which connections of the run.
    pub indices: Range<usize>,
    /// Rooms of the whole run.
    pub rooms: usize,
    /// Handshakes in flight at once in this process.
    pub concurrency: usize,
    /// WebSockets or long-poll sessions.
    #[serde(default)]
    pub transport: Transport,
}

/// From the parent: how many held connections has the server closed so far (answered by [`Report::Closed`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct CountClosed;

/// To the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Report {
    /// The share is joined: how many made it, how many failed, in how many seconds.
    Joined { joined: usize, failed: usize, seconds: f64 },
    /// Joined connections closed since by the server.
    Closed { closed: usize },
}

/// The share's joined connections, each kept alive by a task of its own.
pub(super) struct Holding {
    pub(super) joined: usize,
    pub(super) failed: usize,
    closed: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Holding {
    /// Joined connections the server has closed since (an idle timeout, say).
    pub(super) fn closed(&self) -> usize {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes every connection and waits until they are closed.
    pub(super) async fn release(self) {
        let _ = self.stop.send(true);
        futures::future::join_all(self.tasks).await;
    }
}

impl Share {
    /// Opens and joins every connection of the share; returns once each has joined or failed.
    pub(super) async fn hold(&self) -> Holding {
        let gate = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let closed = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let (outcome, mut outcomes) = mpsc::unbounded_channel();
        let rooms = self.rooms.max(1);
        let transport = self.transport;
        let tasks: Vec<_> = self
            .indices
            .clone()
            .map(|index| {
                let (gate, addr, closed, stopped, outcome) =
                    (gate.clone(), self.addr, closed.clone(), stopped.clone(), outcome.clone());
                tokio::spawn(async move {
                    let permit = gate.acquire().await;
                    let topic = format!("room:idle-{}", index % rooms);
                    let user = format!("idle{index}");
                    match transport {
                        Transport::WebSocket => {
                            let ws = spread::connect_and_join(addr, index, &user, &topic).await;
                            drop(permit);
                            let _ = outcome.send(ws.is_some());
                            if let Some(ws) = ws {
                                keep(ws, stopped, &closed).await;
                            }
                        }
                        Transport::LongPoll => {
                            let session = open_and_join(addr, index, &user, &topic).await;
                            drop(permit);
                            let _ = outcome.send(session.is_some());
                            if let Some(session) = session {
                                keep_polling(session, stopped, &closed).await;
                            }
                        }
                    }
                })
            })
            .collect();
        let (mut joined, mut failed) = (0, 0);
        while joined + failed < tasks.len() {
            match outcomes.recv().await {
                Some(true) => joined += 1,
                Some(false) | None => failed += 1,
            }
        }
        Holding { joined, failed, closed, stop, tasks }
    }
}

/// Keeps a joined connection as phoenix.js would, until `stop` (then closes it) or the server closes it.
async fn keep(mut ws: Ws, mut stop: watch::Receiver<bool>, closed: &AtomicUsize) {
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    let mut next_ref = 1u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = heartbeat.tick() => {
                next_ref += 1;
                let Ok(frame) = frames::heartbeat(&next_ref.to_string()) else { break };
                if ws.send(Message::text(frame)).await.is_err() {
                    closed.fetch_add(1, Ordering::AcqRel);
                    return;
                }
            }
            message = ws.next() => if !matches!(message, Some(Ok(_))) {
                closed.fetch_add(1, Ordering::AcqRel);
                return;
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Opens long-poll session `index` as `user` and joins `topic`; `None` (with a warning) when that failed.
async fn open_and_join(addr: SocketAddr, index: usize, user: &str, topic: &str) -> Option<Session> {
    let joined = async {
        let mut session = Session::open(addr, spread::source(index), user).await?;
        session.join(topic).await?;
        Ok::<_, crate::longpoll::LongPollError>(session)
    };
    joined.await.inspect_err(|error| crate::warn("idle", &format!("session {index}: {error}"))).ok()
}

/// Keeps a joined long-poll session as phoenix.js would (always one poll waiting) until `stop`, or until the
/// session ends or its connection breaks, which counts it as closed. On `stop` the connection is dropped: the server
/// ends the session 15 s later, as when a browser tab goes away.
async fn keep_polling(mut session: Session, mut stop: watch::Receiver<bool>, closed: &AtomicUsize) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            polled = session.poll() => if let Err(error) = polled {
                crate::warn("idle", &format!("a long-poll session stopped: {error}"));
                closed.fetch_add(1, Ordering::AcqRel);
                return;
            },
        }
    }
}

/// The worker's side (`bench worker`): joins the share, reports `Joined`, answers each `CountClosed` with `Closed` and
/// holds the connections until stdin closes.
pub async fn serve_share(share: Share) {
    let started = Instant::now();
    let holding = share.hold().await;
    let seconds = started.elapsed().as_secs_f64();
    workers::report(&Report::Joined { joined: holding.joined, failed: holding.failed, seconds });
    let mut parent = FromParent::stdin();
    while parent.next::<CountClosed>().await.is_some() {
        workers::report(&Report::Closed { closed: holding.closed() });
    }
    holding.release().await;
}
