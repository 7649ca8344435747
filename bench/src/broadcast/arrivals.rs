//! When a broadcast has reached everyone. [`Arrivals`] counts the copies each process's members receive and calls
//! back once a broadcast has reached all of that process's members, with the wall-clock time (unix-epoch
//! nanoseconds) of the last copy; [`Rounds`], in the process that sends, waits for every process holding members to
//! have called back and yields the latest of their times. All processes run on one machine and read the same clock
//! (`SystemTime`), so the round trip is that time minus the send time the probe carries.

use std::{
    collections::HashMap,
    ops::Range,
    sync::{
        Mutex,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::sync::oneshot;

/// Now, in nanoseconds since the unix epoch: the clock every bench process shares.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

/// Called with `(seq, last arrival ns)` when a broadcast has reached every member of this process.
pub(super) type OnComplete = Box<dyn Fn(u64, u64) + Send + Sync>;

/// The copies this process's members have received.
pub(super) struct Arrivals {
    /// Members joined in this process (the count a broadcast must reach here).
    members: AtomicUsize,
    /// Members whose connection ended (closed by the server as a slow consumer, say).
    closed: AtomicUsize,
    /// Copies received, per broadcast sequence number.
    counts: Vec<AtomicU32>,
    /// The latest arrival, per sequence number.
    last_ns: Vec<AtomicU64>,
    complete: OnComplete,
}

impl Arrivals {
    /// Room for `total` broadcasts (sequence numbers `0..total`).
    pub(super) fn new(total: usize, complete: OnComplete) -> Self {
        Self {
            members: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            counts: (0..total).map(|_| AtomicU32::new(0)).collect(),
            last_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
            complete,
        }
    }

    pub(super) fn joined(&self) {
        self.members.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn closed(&self) {
        self.closed.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn members(&self) -> usize {
        self.members.load(Ordering::Acquire)
    }

    pub(super) fn closed_members(&self) -> usize {
        self.closed.load(Ordering::Acquire)
    }

    /// A member received broadcast `seq` at `at_ns`.
    pub(super) fn arrived(&self, seq: u64, at_ns: u64) {
        let (Some(count), Some(last)) = (self.counts.get(seq as usize), self.last_ns.get(seq as usize)) else {
            return;
        };
        last.fetch_max(at_ns, Ordering::AcqRel);
        let seen = count.fetch_add(1, Ordering::AcqRel) + 1;
        if seen as usize == self.members() {
            (self.complete)(seq, last.load(Ordering::Acquire));
        }
    }

    /// Copies received of the broadcasts `seqs`.
    pub(super) fn delivered(&self, seqs: Range<u64>) -> u64 {
        seqs.filter_map(|seq| self.counts.get(seq as usize)).map(|count| u64::from(count.load(Ordering::Acquire))).sum()
    }
}

/// The broadcasts in flight, waiting for every process holding members (a "part") to report completion.
#[derive(Default)]
pub(super) struct Rounds {
    waiting: Mutex<HashMap<u64, Pending>>,
}

struct Pending {
    parts: usize,
    last_ns: u64,
    done: oneshot::Sender<u64>,
}

impl Rounds {
    /// Broadcast `seq` must be completed by `parts` processes; the receiver yields the latest arrival, in ns.
    pub(super) fn expect(&self, seq: u64, parts: usize) -> oneshot::Receiver<u64> {
        let (done, finished) = oneshot::channel();
        self.lock().insert(seq, Pending { parts: parts.max(1), last_ns: 0, done });
        finished
    }

    /// One process's members all have `seq`, the last at `last_ns`.
    pub(super) fn part_done(&self, seq: u64, last_ns: u64) {
        let mut waiting = self.lock();
        let Some(pending) = waiting.get_mut(&seq) else { return };
        pending.parts -= 1;
        pending.last_ns = pending.last_ns.max(last_ns);
        if pending.parts == 0
            && let Some(pending) = waiting.remove(&seq)
        {
            let _ = pending.done.send(pending.last_ns);
        }
    }

    /// Stops waiting for `seq` (it timed out).
    pub(super) fn forget(&self, seq: u64) {
        self.lock().remove(&seq);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn completes_when_every_member_of_every_part_has_it() {
        let rounds = Arc::new(Rounds::default());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (r, c) = (rounds.clone(), calls.clone());
        let local = Arrivals::new(
            2,
            Box::new(move |seq, ns| {
                c.lock().unwrap().push((seq, ns));
                r.part_done(seq, ns);
            }),
        );
        local.joined();
        local.joined();
        let mut finished = rounds.expect(1, 2);
        local.arrived(1, 10);
        local.arrived(1, 30);
        assert_eq!(*calls.lock().unwrap(), [(1, 30)]);
        assert!(finished.try_recv().is_err(), "a second part is still missing");
        rounds.part_done(1, 20);
        assert_eq!(finished.try_recv().unwrap(), 30);
        rounds.part_done(1, 40);
        local.arrived(7, 1);
        assert_eq!(local.delivered(0..2), 2);
        let mut lost = rounds.expect(0, 1);
        rounds.forget(0);
        assert!(lost.try_recv().is_err());
    }
}
