//! The soak's shared record of what happened, which the final checks compare with what the server stored: every
//! message sent (by `client_id`, with the body the server should store) and the id its acknowledgement gave, the
//! sends the server refused for good, every room membership a client held with the ids it was delivered, contract
//! violations seen on the way, live delivery latencies, and counters.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use serde::Serialize;

/// Violation samples kept for the report (the count per kind is always complete).
const SAMPLES: usize = 40;

/// One message a client sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Index of its room.
    pub room: usize,
    /// The body as the server must store it (`protocol::chat::normalize_body` of what was sent).
    pub body: String,
    /// When it was last sent (a retry after a restart is timed from the retry).
    pub at: Instant,
    /// The id its `ok` reply gave.
    pub acked: Option<u64>,
    /// The reason the server refused it for good (rate limited and never sent again, say): it must not be stored.
    pub refused: Option<String>,
    /// Given up without an answer (its sender was cut off by a kill and did not retry): it may be stored, once.
    pub abandoned: bool,
}

/// One client's stay in one room: the ids it was delivered (live, in join replies, from `history:before` gap fills)
/// with a hash of each body.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The client's name.
    pub who: String,
    /// Index of the room.
    pub room: usize,
    /// Whether it stayed until the end of the run (then it must have everything up to the room's last message).
    pub stayed: bool,
    /// Every message with an id above this must have reached it (the id before the oldest message of its first join
    /// reply, or the room's head then).
    pub from: u64,
    /// `(id, body hash)` of every message delivered, in arrival order.
    pub seen: Vec<(u64, u64)>,
}

/// A hash of a message body, to compare what was delivered with what is stored.
pub fn body_hash(body: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Event counters, bumped by every client as things happen.
        #[derive(Debug, Default)]
        pub struct Counters { $($(#[$doc])* pub $name: AtomicU64,)* }

        /// The counters at one moment.
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct Counts { $($(#[$doc])* pub $name: u64,)* }

        impl Counters {
            /// The counts now.
            pub fn snapshot(&self) -> Counts {
                Counts { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// `message:new` sent for the first time.
    sent,
    /// `message:new` sent again with the same `client_id`: after a drop or a refusal to retry, or pushed twice at
    /// once (3 % of members' messages).
    resent,
    /// `ok` replies to `message:new`.
    acked,
    /// `rate limited` replies to members (who send under the limit, so these should not happen).
    member_rate_limited,
    /// `unavailable` replies.
    unavailable,
    /// Sockets opened.
    connects,
    /// Connection attempts that failed (the server was down, mostly).
    connect_failures,
    /// Connections lost and opened again by a member.
    reconnects,
    /// Connections a member dropped on purpose without a close frame.
    drops_abrupt,
    /// Connections a member closed on purpose with a close frame.
    drops_closed,
    /// Room joins answered `ok`.
    joins,
    /// Joins with `last_seen_id` answered `recovered: true`.
    recovered,
    /// Joins with `last_seen_id` answered `recovered: false` (the gap was then read with `history:before`).
    not_recovered,
    /// `history:before` pages read to fill gaps.
    gap_pages,
    /// `phx_leave` answered `ok`.
    leaves,
    /// Visitors that came, chatted and left.
    visitors,
    /// `typing` pushes.
    typing,
    /// Slow-consumer episodes started.
    slow_episodes,
    /// Slow consumers the server closed with 1011.
    slow_closed_1011,
    /// Slow consumers whose connection ended without a close frame after the server dropped them.
    slow_dropped,
    /// Slow-consumer episodes cut short by a kill or the end of a phase.
    slow_interrupted,
    /// Malformed, oversized and otherwise refused requests answered as documented.
    probes_answered,
    /// Probes cut short by a kill.
    probes_interrupted,
    /// Logins with a wrong password answered `wrong-credentials`.
    logins_wrong,
    /// Logins answered `too-many-attempts` (the per-address and per-account throttle).
    logins_throttled,
    /// Logins cut short by a kill.
    logins_interrupted,
}

/// Bumps a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Everything recorded, handed to the final checks.
#[derive(Debug, Default)]
pub struct Record {
    /// By `client_id`.
    pub sent: HashMap<String, Sent>,
    pub memberships: Vec<Membership>,
    /// Count per kind.
    pub violations: BTreeMap<String, u64>,
    /// The first few, with details.
    pub violation_samples: Vec<String>,
    /// Live `message:new` delivery latencies (send to arrival), µs.
    pub latencies_us: Vec<u32>,
    /// Answers per probe kind.
    pub probes: BTreeMap<String, u64>,
    /// How long each slow consumer went unread until the server cut it off, ms.
    pub cut_offs_ms: Vec<u64>,
}

/// The shared record.
#[derive(Debug, Default)]
pub struct Ledger {
    record: Mutex<Record>,
    /// Event counters.
    pub counters: Counters,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A `message:new` is about to be sent (again, for a retry: the first send is kept).
    pub fn sending(&self, client_id: &str, room: usize, body: String) {
        let mut record = self.lock();
        if let Some(sent) = record.sent.get_mut(client_id) {
            bump(&self.counters.resent);
            sent.at = Instant::now();
        } else {
            bump(&self.counters.sent);
            record.sent.insert(
                client_id.to_owned(),
                Sent { room, body, at: Instant::now(), acked: None, refused: None, abandoned: false },
            );
        }
    }

    /// Its `ok {"id"}` arrived. A retry must get the id of the first ack.
    pub fn acked(&self, client_id: &str, id: u64) {
        bump(&self.counters.acked);
        let mut record = self.lock();
        let Some(sent) = record.sent.get_mut(client_id) else { return };
        match sent.acked {
            Some(first) if first != id => {
                let detail = format!("{client_id}: acked as {first}, then as {id}");
                Self::violate(&mut record, "a retry was acked with another id", detail);
            }
            _ => sent.acked = Some(id),
        }
    }

    /// The server refused it for good; it must never be stored.
    pub fn refused(&self, client_id: &str, reason: &str) {
        if let Some(sent) = self.lock().sent.get_mut(client_id) {
            sent.refused = Some(reason.to_owned());
        }
    }

    /// Its sender gave up waiting for an answer.
    pub fn abandoned(&self, client_id: &str) {
        if let Some(sent) = self.lock().sent.get_mut(client_id) {
            sent.abandoned = true;
        }
    }

    /// Sends with no answer yet that nobody gave up on.
    pub fn unsettled(&self) -> usize {
        self.lock().sent.values().filter(|s| s.acked.is_none() && s.refused.is_none() && !s.abandoned).count()
    }

    /// When `client_id` was last sent (for the delivery latency).
    pub fn sent_at(&self, client_id: &str) -> Option<Instant> {
        self.lock().sent.get(client_id).map(|sent| sent.at)
    }

    /// A live delivery took `us` microseconds.
    pub fn latency(&self, us: u32) {
        self.lock().latencies_us.push(us);
    }

    /// The highest acknowledged id of each of `rooms` rooms.
    pub fn heads(&self, rooms: usize) -> Vec<u64> {
        let mut heads = vec![0; rooms];
        for sent in self.lock().sent.values() {
            if let (Some(id), Some(head)) = (sent.acked, heads.get_mut(sent.room)) {
                *head = (*head).max(id);
            }
        }
        heads
    }

    /// A membership ended (a leave, a visitor's departure, the end of the run).
    pub fn membership(&self, membership: Membership) {
        self.lock().memberships.push(membership);
    }

    /// Something the contract rules out happened.
    pub fn violation(&self, kind: &str, detail: String) {
        Self::violate(&mut self.lock(), kind, detail);
    }

    fn violate(record: &mut Record, kind: &str, detail: String) {
        *record.violations.entry(kind.to_owned()).or_default() += 1;
        if record.violation_samples.len() < SAMPLES {
            record.violation_samples.push(format!("{kind}: {detail}"));
        }
        crate::warn("soak", &format!("{kind}: {detail}"));
    }

    /// A slow consumer was cut off `after` it stopped reading.
    pub fn cut_off(&self, after: std::time::Duration) {
        self.lock().cut_offs_ms.push(after.as_millis() as u64);
    }

    /// A probe of `kind` got its documented answer.
    pub fn probe_answered(&self, kind: &str) {
        bump(&self.counters.probes_answered);
        *self.lock().probes.entry(kind.to_owned()).or_default() += 1;
    }

    /// Everything recorded so far (the record is left empty).
    pub fn take(&self) -> Record {
        std::mem::take(&mut *self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_heads_and_conflicting_retries() {
        let ledger = Ledger::default();
        ledger.sending("a", 0, "a hi".into());
        ledger.sending("b", 1, "b hi".into());
        ledger.sending("a", 0, "a hi".into());
        ledger.acked("a", 3);
        ledger.acked("a", 3);
        ledger.acked("b", 1);
        assert_eq!(ledger.heads(3), [3, 1, 0]);
        let counts = ledger.counters.snapshot();
        assert_eq!((counts.sent, counts.resent, counts.acked), (2, 1, 3));
        ledger.acked("a", 4);
        let record = ledger.take();
        assert_eq!(record.violations.values().sum::<u64>(), 1);
        assert_eq!(record.sent["a"].acked, Some(3));
    }
}
