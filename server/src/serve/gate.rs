//! [`Gate`]: which connections the server takes, and which it lets go first when it is full.
//!
//! Three budgets, all in one lock (every decision is a few map operations):
//! * **Open connections** (descriptors): at most `max_connections`, the open-file limit minus a reserve, so the
//!   database, the logs and the listener always have descriptors left and `accept` never fails with EMFILE.
//! * **Pending connections**: accepted but not upgraded to a socket (waiting for a request head or between
//!   keep-alive requests). At `max_pending` the oldest is evicted: a slow-drip or idle flood only ever displaces its
//!   own kind, while a real client needs a few milliseconds of pending time and a socket never counts.
//! * **Per-address sockets**: at most `max_sockets_per_ip` open and `max_connects_per_ip` per 10 s window, keyed
//!   by the client address (see [`super::client_ip`]).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use crate::metrics::{Limit, Meters};

/// The window of the per-address connect rate.
pub(crate) const CONNECT_WINDOW: Duration = Duration::from_secs(10);
/// Addresses remembered for the connect rate before stale ones are swept.
const RATE_SWEEP_AT: usize = 50_000;

/// The budgets; a zero per-address limit is no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateLimits {
    pub(crate) max_connections: usize,
    pub(crate) max_pending: usize,
    pub(crate) max_sockets_per_ip: usize,
    pub(crate) max_connects_per_ip: usize,
}

/// Why a socket was not admitted (HTTP 429 with this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Crowded {
    /// The address has `max_sockets_per_ip` sockets open.
    #[error("too many connections from this address")]
    Sockets,
    /// The address connected `max_connects_per_ip` times in the last window.
    #[error("too many connection attempts from this address")]
    Connects,
}

impl Crowded {
    /// The limit that refused, for `parley_rate_limited_total`.
    fn limit(self) -> Limit {
        match self {
            Self::Sockets => Limit::SocketsPerIp,
            Self::Connects => Limit::ConnectsPerIp,
        }
    }
}

/// Connection admission state shared by the accept loop and the socket upgrade.
pub(crate) struct Gate {
    limits: GateLimits,
    state: Mutex<GateState>,
    /// Counts the per-address refusals.
    meters: Arc<Meters>,
}

#[derive(Default)]
struct GateState {
    open: usize,
    next_id: u64,
    /// Pending connections in accept order, with the way to close each.
    pending: BTreeMap<u64, oneshot::Sender<()>>,
    sockets: HashMap<IpAddr, usize>,
    /// Per address: connects left in the bucket and when it was last refilled.
    connects: HashMap<IpAddr, (f64, Instant)>,
}

/// One accepted connection. While it lives it counts as open; until [`Slot::upgrade`] it is also pending.
pub(crate) struct Slot {
    gate: Arc<Gate>,
    /// Its place in the pending order; a long poll's connection takes a new one after each poll.
    id: std::sync::atomic::AtomicU64,
}

/// A socket's place in the per-address count; released when dropped (the socket closed, the long-poll session
/// ended).
pub(crate) struct SocketPermit {
    gate: Arc<Gate>,
    /// An upgraded WebSocket's connection: it stays counted as open while the socket lives.
    _slot: Option<Arc<Slot>>,
    ip: IpAddr,
}

/// What the connection task watches to learn that it was evicted.
pub(crate) type Eviction = oneshot::Receiver<()>;

impl Gate {
    pub(crate) fn new(limits: GateLimits, meters: Arc<Meters>) -> Arc<Self> {
        Arc::new(Self { limits, state: Mutex::new(GateState::default()), meters })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a new connection: `None` when it must be closed at once (every slot holds an upgraded socket).
    /// Evicts the oldest pending connection when either budget is full.
    pub(crate) fn accept(self: &Arc<Self>) -> Option<(Arc<Slot>, Eviction)> {
        let mut state = self.lock();
        let full = state.open >= self.limits.max_connections;
        if full || state.pending.len() >= self.limits.max_pending {
            match state.pending.pop_first() {
                // The evicted connection's descriptor closes as soon as its task sees the signal.
                Some((_, evict)) => {
                    let _ = evict.send(());
                }
                None if full => return None,
                None => {}
            }
        }
        state.open += 1;
        state.next_id += 1;
        let id = state.next_id;
        let (evict, eviction) = oneshot::channel();
        state.pending.insert(id, evict);
        Some((Arc::new(Slot { gate: self.clone(), id: id.into() }), eviction))
    }

    /// Connections open now: (all, pending).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.open, state.pending.len())
    }

    /// Whether `ip` may open one more socket at `now`; counts the connect attempt either way, and a refusal in the
    /// meters.
    fn admit_socket(&self, state: &mut GateState, ip: IpAddr, now: Instant) -> Result<(), Crowded> {
        let admitted = self.try_admit_socket(state, ip, now);
        if let Err(crowded) = admitted {
            self.meters.rate_limited(crowded.limit());
        }
        admitted
    }

    fn try_admit_socket(&self, state: &mut GateState, ip: IpAddr, now: Instant) -> Result<(), Crowded> {
        if self.limits.max_connects_per_ip > 0 {
            let capacity = self.limits.max_connects_per_ip as f64;
            if state.connects.len() >= RATE_SWEEP_AT && !state.connects.contains_key(&ip) {
                // A spray of addresses: forget the ones whose buckets have refilled anyway.
                state.connects.retain(|_, (_, at)| now.duration_since(*at) < CONNECT_WINDOW);
            }
            let (tokens, at) = state.connects.entry(ip).or_insert((capacity, now));
            let refill = now.duration_since(*at).as_secs_f64() / CONNECT_WINDOW.as_secs_f64() * capacity;
            *tokens = (*tokens + refill).min(capacity);
            *at = now;
            if *tokens < 1.0 {
                return Err(Crowded::Connects);
            }
            *tokens -= 1.0;
        }
        let sockets = state.sockets.get(&ip).copied().unwrap_or(0);
        if self.limits.max_sockets_per_ip > 0 && sockets >= self.limits.max_sockets_per_ip {
            return Err(Crowded::Sockets);
        }
        state.sockets.insert(ip, sockets + 1);
        Ok(())
    }
}

impl Slot {
    /// Turns this connection into a socket of client `ip`: no longer pending (never evicted), counted per address.
    pub(crate) fn upgrade(self: &Arc<Self>, ip: IpAddr) -> Result<SocketPermit, Crowded> {
        self.upgrade_at(ip, Instant::now())
    }

    fn upgrade_at(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<SocketPermit, Crowded> {
        let gate = &self.gate;
        let mut state = gate.lock();
        gate.admit_socket(&mut state, ip, now)?;
        state.pending.remove(&self.id());
        Ok(SocketPermit { gate: gate.clone(), _slot: Some(self.clone()), ip })
    }

    /// Takes this connection out of the pending set while it carries a long poll (a GET may wait 10 s for output):
    /// a live session's poll is not the idle connection that eviction is for. Pending again when the hold drops.
    pub(crate) fn hold(self: &Arc<Self>) -> PollHold {
        let evict = self.gate.lock().pending.remove(&self.id());
        PollHold { slot: self.clone(), evict }
    }

    /// Whether this connection is in the pending set now.
    pub(crate) fn is_pending(&self) -> bool {
        self.gate.lock().pending.contains_key(&self.id())
    }

    /// Takes this connection out of the pending set for good, as an upgrade does: it carries a live long-poll
    /// session's requests (its polls, or its POSTs between them), so it is that session's link, not an idle
    /// connection. It still counts as open; `false` when it was not pending (pinned or evicted already).
    pub(crate) fn pin(&self) -> bool {
        self.gate.lock().pending.remove(&self.id()).is_some()
    }

    /// A long-poll session of client `ip`, counted per address like a WebSocket. The HTTP connection that opened it
    /// stays an ordinary connection: a session outlives its requests and may continue on other connections.
    pub(crate) fn session(&self, ip: IpAddr) -> Result<SocketPermit, Crowded> {
        let gate = &self.gate;
        let mut state = gate.lock();
        gate.admit_socket(&mut state, ip, Instant::now())?;
        Ok(SocketPermit { gate: gate.clone(), _slot: None, ip })
    }
}

impl Slot {
    /// Its key in the pending set (changed only under the gate's lock).
    fn id(&self) -> u64 {
        self.id.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.pending.remove(&self.id());
        state.open = state.open.saturating_sub(1);
    }
}

/// A connection kept out of the pending set by [`Slot::hold`].
pub(crate) struct PollHold {
    slot: Arc<Slot>,
    /// How to evict the connection; `None` when it was not pending (evicted already, or held twice).
    evict: Option<oneshot::Sender<()>>,
}

impl Drop for PollHold {
    fn drop(&mut self) {
        if let Some(evict) = self.evict.take() {
            // Pending again between polls, as the newest: a client that keeps polling is the last to be evicted, an
            // idle flood the first.
            let mut state = self.slot.gate.lock();
            state.next_id += 1;
            let id = state.next_id;
            self.slot.id.store(id, std::sync::atomic::Ordering::Relaxed);
            state.pending.insert(id, evict);
        }
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if let Some(count) = state.sockets.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                state.sockets.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gate(max_connections: usize, max_pending: usize, per_ip: usize, connects: usize) -> Arc<Gate> {
        let limits =
            GateLimits { max_connections, max_pending, max_sockets_per_ip: per_ip, max_connects_per_ip: connects };
        Gate::new(limits, Meters::new(&crate::node::NodeId::random()))
    }

    /// What `parley_rate_limited_total{limit}` says now.
    fn refusals(gate: &Gate, limit: &str) -> String {
        let text = gate.meters.render();
        let series = format!("limit=\"{limit}\"}} ");
        let line = text.lines().find(|line| line.starts_with("parley_rate_limited_total") && line.contains(&series));
        line.and_then(|line| line.rsplit(' ').next()).unwrap_or("missing").to_owned()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_held_long_poll_is_not_evicted_and_is_pending_again_after() {
        let gate = gate(100, 1, 0, 0);
        let (polling, mut polling_evicted) = gate.accept().unwrap();
        let hold = polling.hold();
        assert_eq!(gate.counts(), (1, 0), "not pending while it polls");
        let (_other, _) = gate.accept().unwrap();
        assert!(polling_evicted.try_recv().is_err(), "a held connection is never the one evicted");
        drop(hold);
        assert_eq!(gate.counts(), (2, 2));
        let (_third, _) = gate.accept().unwrap();
        assert!(polling_evicted.try_recv().is_err(), "pending again, as the newest: the other one goes first");
        let (_fourth, _) = gate.accept().unwrap();
        assert!(polling_evicted.try_recv().is_ok(), "and it is evicted in its turn");
    }

    #[test]
    fn a_pinned_long_poll_connection_is_never_pending_again() {
        let gate = gate(100, 1, 0, 0);
        let (link, mut link_evicted) = gate.accept().unwrap();
        assert!(link.pin());
        assert!(!link.pin(), "once");
        drop(link.hold());
        assert_eq!(gate.counts(), (1, 0), "a hold does not make it pending again");
        let (_other, _) = gate.accept().unwrap();
        let (_third, _) = gate.accept().unwrap();
        assert!(link_evicted.try_recv().is_err());
        drop(link);
        assert_eq!(gate.counts(), (2, 1), "closed, it is no longer open");
    }

    #[test]
    fn the_oldest_pending_connection_makes_room() {
        let gate = gate(100, 2, 0, 0);
        let (first, mut first_evicted) = gate.accept().unwrap();
        let (_second, mut second_evicted) = gate.accept().unwrap();
        assert!(first_evicted.try_recv().is_err());
        let (_third, _) = gate.accept().unwrap();
        assert!(first_evicted.try_recv().is_ok(), "the oldest pending connection is told to close");
        assert!(second_evicted.try_recv().is_err());
        drop(first);
        assert_eq!(gate.counts(), (2, 2));
    }

    #[test]
    fn sockets_are_never_evicted_and_a_full_server_closes_newcomers() {
        let gate = gate(2, 10, 0, 0);
        let (socket, mut socket_evicted) = gate.accept().unwrap();
        let _permit = socket.upgrade(A).unwrap();
        let (pending, mut pending_evicted) = gate.accept().unwrap();
        assert_eq!(gate.counts(), (2, 1));
        let (newcomer, _) = gate.accept().unwrap();
        assert!(pending_evicted.try_recv().is_ok(), "at the descriptor cap a pending connection goes first");
        assert!(socket_evicted.try_recv().is_err(), "the socket stays");
        drop(pending);
        let _other = newcomer.upgrade(B).unwrap();
        assert_eq!(gate.counts(), (2, 0));
        assert!(gate.accept().is_none(), "full of sockets: the newcomer is closed");
        assert_eq!(gate.counts(), (2, 0));
    }

    #[test]
    fn per_address_socket_cap() {
        let gate = gate(100, 100, 2, 0);
        let slots: Vec<_> = (0..3).map(|_| gate.accept().unwrap().0).collect();
        let first = slots[0].upgrade(A).unwrap();
        let _second = slots[1].upgrade(A).unwrap();
        assert_eq!(slots[2].upgrade(A).err(), Some(Crowded::Sockets));
        assert_eq!(refusals(&gate, "sockets_per_ip"), "1", "each refusal is counted");
        assert!(slots[2].upgrade(B).is_ok(), "another address is unaffected");
        assert_eq!(refusals(&gate, "sockets_per_ip"), "1");
        drop(first);
        let again = gate.accept().unwrap().0;
        assert!(again.upgrade(A).is_ok(), "a closed socket frees its place");
    }

    #[test]
    fn per_address_connect_rate_refills_over_the_window() {
        let gate = gate(100, 100, 0, 3);
        let start = Instant::now();
        let slot = gate.accept().unwrap().0;
        let permits: Vec<_> = (0..3).map(|_| slot.upgrade_at(A, start).unwrap()).collect();
        assert_eq!(slot.upgrade_at(A, start).err(), Some(Crowded::Connects));
        assert!(slot.upgrade_at(B, start).is_ok());
        let half = start + CONNECT_WINDOW / 2;
        assert!(slot.upgrade_at(A, half).is_ok(), "half the window: one and a half more");
        assert_eq!(slot.upgrade_at(A, half).err(), Some(Crowded::Connects));
        assert_eq!(refusals(&gate, "connects_per_ip"), "2");
        assert_eq!(refusals(&gate, "sockets_per_ip"), "0");
        drop(permits);
    }
}
