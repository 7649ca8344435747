//! What every soak client shares: the server's address, the rooms, the ledger, whether the server is up, and the
//! phase of the run, which tells clients when to chat, when to settle, and when to leave.

use std::{net::SocketAddr, sync::Arc};

use tokio::sync::watch;

use super::{ledger::Ledger, server::ServerWatch};

/// The phase of the run, broadcast to every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The workload runs: messages, joins and leaves, drops, probes, slow consumers, logins.
    Chat,
    /// Nothing new is started; members get their outstanding messages acknowledged and leave rooms they visit.
    Quiesce,
    /// Every client takes delivery up to `heads` (the last acknowledged id of each room), leaves and disconnects,
    /// then waits for [`Phase::Chat`] to come back (for the memory baseline).
    Away { heads: Vec<u64> },
    /// As `Away`, for good: the run is over.
    Finish { heads: Vec<u64> },
}

impl Phase {
    /// The heads to catch up to before leaving, when leaving.
    pub fn leaving(&self) -> Option<&[u64]> {
        match self {
            Self::Away { heads } | Self::Finish { heads } => Some(heads),
            Self::Chat | Self::Quiesce => None,
        }
    }
}

/// Shared by every client of one soak.
#[derive(Debug)]
pub struct Context {
    /// The server's address.
    pub addr: SocketAddr,
    /// The room topics (`room:<slug>`), by index.
    pub topics: Vec<String>,
    /// Which room the slow consumers' episodes run in (the busiest).
    pub busy_room: usize,
    /// This run's tag, in every client id and name (a data directory may hold earlier runs).
    pub run: String,
    /// What happened.
    pub ledger: Arc<Ledger>,
    /// Whether the server is up, and which incarnation.
    pub server: Arc<ServerWatch>,
    /// The phase.
    pub phase: watch::Receiver<Phase>,
}

impl Context {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// Whether new work may start.
    pub fn chatting(&self) -> bool {
        *self.phase.borrow() == Phase::Chat
    }

    /// The index of `topic` among the rooms.
    pub fn room_of(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|t| t == topic)
    }

    /// Waits until the phase is `Chat` again (or the run finishes: `false`).
    pub async fn until_chatting(&self) -> bool {
        let mut phase = self.phase.clone();
        loop {
            match &*phase.borrow_and_update() {
                Phase::Chat => return true,
                Phase::Finish { .. } => return false,
                Phase::Quiesce | Phase::Away { .. } => {}
            }
            if phase.changed().await.is_err() {
                return false;
            }
        }
    }
}
