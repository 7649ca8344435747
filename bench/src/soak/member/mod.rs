//! A chatting member: one socket under a guest name, in its home room for the whole run (a resident) or for a short
//! visit (a visitor). It sends `message:new` at its pace with a fresh `client_id` each, now and then with `typing`
//! around it, visits another room and leaves it again, drops its connection on purpose, and heartbeats. Whenever the
//! connection is lost (a `kill -9`, a drop) it reconnects with phoenix.js's backoff, rejoins every room with
//! `last_seen_id`, fills an unrecovered gap with `history:before`, and resends what was not acknowledged with the same
//! `client_id` (docs/protocol.md §9, the reconnect recipe). Everything it sends and receives goes to the ledger.

mod inbound;
mod leaving;
pub mod rooms;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use protocol::{
    chat::{HistoryBefore, JoinParams, NewMessage, Typing, normalize_body},
    typed::Request,
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use self::rooms::{Channel, RoomSlot};
use super::{
    conn::{self, Ws},
    context::{Context, Phase},
    ledger::bump,
    text,
};
use crate::frames::{self, FrameError};

/// phoenix.js's reconnect delays (ms), then 5 s; each with ±20 % jitter.
const BACKOFF_MS: [u64; 9] = [10, 50, 100, 150, 200, 250, 500, 1000, 2000];
/// How often a member heartbeats (phoenix.js: 30 s; the server closes a socket silent for 60 s).
const HEARTBEAT: Duration = Duration::from_secs(25);
/// How often unacknowledged sends and unjoined rooms are looked after.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// How long to wait before resending a message the server refused for now (`rate limited`, `unavailable`).
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long a leaving member waits to be delivered the rooms' last messages, and then for its leave replies.
const CATCH_UP: Duration = Duration::from_secs(20);
const LEAVE_REPLIES: Duration = Duration::from_secs(5);
/// `history:before` page size for gap fills.
const GAP_PAGE: u32 = 100;

/// Who a member is and how it behaves.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Its guest name.
    pub name: String,
    /// Its number (in client ids; seeds its choices).
    pub number: usize,
    /// The room it joins first and stays in.
    pub home: usize,
    /// Whether it stays until the end (a resident) or leaves after `lifetime` (a visitor).
    pub stays: bool,
    pub lifetime: Option<Duration>,
    /// Time between two of its messages, drawn uniformly from this range.
    pub pace: (Duration, Duration),
    /// Length of its message bodies in characters, drawn uniformly from this range.
    pub body_chars: (usize, usize),
    /// Whether it visits other rooms now and then.
    pub roams: bool,
    /// Whether it drops its connection on purpose now and then.
    pub drops: bool,
}

/// What a pending reply was for.
#[derive(Debug, Clone)]
enum Purpose {
    Join { room: usize, asked: Option<u64> },
    Leave { room: usize, for_good: bool },
    Send { client_id: String },
    Gap { room: usize, stop_after: u64 },
    Ack { what: &'static str },
}

/// A message not acknowledged yet.
#[derive(Debug, Clone)]
struct Outgoing {
    client_id: String,
    room: usize,
    raw: String,
    in_flight: bool,
    retry_at: Option<Instant>,
    /// Pushed twice at once with the same `client_id` (a client that retried too early): stored once, and both
    /// replies carry the same id.
    twice: bool,
}

/// Why a session ended.
#[derive(Debug)]
enum Ended {
    /// The connection was lost (or closed by the server).
    Lost,
    /// The member dropped it on purpose.
    Dropped,
    /// It left every room for a while (the baseline).
    Away,
    /// It left for good.
    Finished,
}

type Step = Result<(), Ended>;

struct Member {
    spec: MemberSpec,
    context: Arc<Context>,
    rng: StdRng,
    slots: Vec<RoomSlot>,
    outgoing: Vec<Outgoing>,
    refs: HashMap<String, Purpose>,
    next_ref: u64,
    sent: u64,
    born: Instant,
}

/// Runs a member until the run finishes (or, for a visitor, its visit ends); its memberships go to the ledger.
pub async fn run(spec: MemberSpec, context: Arc<Context>, seed: u64) {
    let home = RoomSlot::new(&spec.name, spec.home, context.topics[spec.home].clone(), spec.stays);
    let mut member = Member {
        rng: StdRng::seed_from_u64(seed ^ (spec.number as u64).wrapping_mul(0x9e37_79b9)),
        spec,
        context,
        slots: vec![home],
        outgoing: Vec::new(),
        refs: HashMap::new(),
        next_ref: 0,
        sent: 0,
        born: Instant::now(),
    };
    member.lifetime().await;
    member.settle_up();
}

impl Member {
    async fn lifetime(&mut self) {
        let mut failures = 0usize;
        let mut connected_before = false;
        loop {
            match self.context.phase() {
                Phase::Finish { .. } => return,
                Phase::Away { .. } => {
                    if !self.context.until_chatting().await {
                        return;
                    }
                    continue;
                }
                Phase::Quiesce if !self.spec.stays => return,
                Phase::Chat | Phase::Quiesce => {}
            }
            if self.visit_over() {
                return;
            }
            let counters = &self.context.ledger.counters;
            let mut ws = match conn::open(self.context.addr, &self.spec.name, None).await {
                Ok(ws) => ws,
                Err(_) => {
                    bump(&counters.connect_failures);
                    tokio::time::sleep(self.backoff(failures)).await;
                    failures += 1;
                    continue;
                }
            };
            bump(&counters.connects);
            if connected_before {
                bump(&counters.reconnects);
            }
            connected_before = true;
            failures = 0;
            let ended = self.session(&mut ws).await;
            drop(ws);
            self.disconnected();
            match ended {
                Ended::Lost => tokio::time::sleep(self.backoff(0)).await,
                Ended::Dropped => tokio::time::sleep(Duration::from_millis(self.rng.random_range(200..3000))).await,
                Ended::Away => {}
                Ended::Finished => return,
            }
        }
    }

    /// A visitor whose time is up.
    fn visit_over(&self) -> bool {
        self.spec.lifetime.is_some_and(|lifetime| self.born.elapsed() >= lifetime)
    }

    fn backoff(&mut self, failures: usize) -> Duration {
        let base = BACKOFF_MS.get(failures).copied().unwrap_or(5000) as f64;
        Duration::from_millis((base * self.rng.random_range(0.8..1.2)) as u64)
    }

    fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// One connection, from its joins to its end.
    async fn session(&mut self, ws: &mut Ws) -> Ended {
        let mut phase = self.context.phase.clone();
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut next_act = tokio::time::Instant::now() + self.pace();
        loop {
            let now_phase = phase.borrow_and_update().clone();
            if let Some(heads) = now_phase.leaving() {
                let for_good = matches!(now_phase, Phase::Finish { .. });
                return self.leave_all(ws, Some(heads), for_good).await;
            }
            if !self.spec.stays && (now_phase == Phase::Quiesce || self.visit_over()) {
                return self.leave_all(ws, None, true).await;
            }
            if now_phase == Phase::Quiesce && self.leave_visited_rooms(ws).await.is_err() {
                return Ended::Lost;
            }
            let step = tokio::select! {
                incoming = conn::next(ws) => self.incoming(ws, incoming).await,
                _ = housekeeping.tick() => self.housekeeping(ws).await,
                _ = heartbeat.tick() => self.push_raw(ws, frames::heartbeat, Purpose::Ack { what: "heartbeat" }).await,
                () = tokio::time::sleep_until(next_act) => {
                    next_act = tokio::time::Instant::now() + self.pace();
                    if now_phase == Phase::Chat { self.act(ws).await } else { Ok(()) }
                }
                _ = phase.changed() => Ok(()),
            };
            if let Err(ended) = step {
                return ended;
            }
        }
    }

    fn pace(&mut self) -> Duration {
        let (low, high) = self.spec.pace;
        Duration::from_secs_f64(self.rng.random_range(low.as_secs_f64()..=high.as_secs_f64()))
    }

    /// Joins rooms that are not joined on this connection and sends what is waiting.
    async fn housekeeping(&mut self, ws: &mut Ws) -> Step {
        let unjoined: Vec<usize> =
            self.slots.iter().filter(|s| s.channel == Channel::Unjoined).map(|s| s.room).collect();
        for room in unjoined {
            self.join(ws, room).await?;
        }
        self.flush_outgoing(ws).await
    }

    async fn join(&mut self, ws: &mut Ws, room: usize) -> Step {
        let join_ref = self.next_ref();
        let Some(slot) = self.slot_mut(room) else { return Ok(()) };
        let asked = slot.join_param();
        let frame = frames::join(&join_ref, &slot.topic, &JoinParams { last_seen_id: asked, ..JoinParams::default() });
        slot.channel = Channel::Joining;
        slot.join_ref = Some(join_ref.clone());
        self.refs.insert(join_ref, Purpose::Join { room, asked });
        self.send(ws, frame).await
    }

    /// Sends every message waiting for a joined room (first sends and retries alike, with their `client_id`).
    async fn flush_outgoing(&mut self, ws: &mut Ws) -> Step {
        let now = Instant::now();
        for at in 0..self.outgoing.len() {
            let outgoing = &self.outgoing[at];
            let ready = !outgoing.in_flight && outgoing.retry_at.is_none_or(|t| t <= now);
            let join_ref = self
                .slots
                .iter()
                .find(|s| s.room == outgoing.room && s.channel == Channel::Joined)
                .and_then(|s| s.join_ref.clone().map(|j| (j, s.topic.clone())));
            let (true, Some((join_ref, topic))) = (ready, join_ref) else { continue };
            let (client_id, raw) = (outgoing.client_id.clone(), outgoing.raw.clone());
            let stored = normalize_body(&raw).unwrap_or_default();
            self.context.ledger.sending(&client_id, outgoing.room, stored);
            let request = NewMessage { body: raw, client_id: Some(client_id.clone()) };
            self.outgoing[at].in_flight = true;
            self.push(ws, &join_ref, &topic, &request, Purpose::Send { client_id: client_id.clone() }).await?;
            if std::mem::take(&mut self.outgoing[at].twice) {
                self.context.ledger.sending(
                    &client_id,
                    self.outgoing[at].room,
                    normalize_body(&request.body).unwrap_or_default(),
                );
                self.push(ws, &join_ref, &topic, &request, Purpose::Send { client_id }).await?;
            }
        }
        Ok(())
    }

    async fn request_gap(&mut self, ws: &mut Ws, room: usize, before_id: u64, stop_after: u64) -> Step {
        let Some((join_ref, topic)) =
            self.slot_mut(room).and_then(|s| s.join_ref.clone().map(|j| (j, s.topic.clone())))
        else {
            return Ok(());
        };
        let request = HistoryBefore { before_id, limit: Some(GAP_PAGE) };
        self.push(ws, &join_ref, &topic, &request, Purpose::Gap { room, stop_after }).await
    }

    /// Something to do, at the member's pace: mostly a message, sometimes a visit or a drop.
    async fn act(&mut self, ws: &mut Ws) -> Step {
        let roll: f64 = self.rng.random();
        if self.spec.drops && roll < 0.006 {
            let counters = &self.context.ledger.counters;
            if self.rng.random_bool(0.5) {
                bump(&counters.drops_closed);
                let _ = ws.close(None).await;
            } else {
                bump(&counters.drops_abrupt);
            }
            return Err(Ended::Dropped);
        }
        if self.spec.roams && roll < 0.05 {
            return self.roam(ws).await;
        }
        self.chat(ws).await
    }

    /// Leaves the room it visits, or visits one.
    async fn roam(&mut self, ws: &mut Ws) -> Step {
        let visited =
            self.slots.iter().find(|s| s.room != self.spec.home && s.channel == Channel::Joined).map(|s| s.room);
        if let Some(room) = visited {
            return self.leave(ws, room, true).await;
        }
        if self.slots.len() > 1 {
            return Ok(());
        }
        let others: Vec<usize> = (0..self.context.topics.len()).filter(|&r| r != self.spec.home).collect();
        let Some(&room) = others.choose(&mut self.rng) else { return Ok(()) };
        self.slots.push(RoomSlot::new(&self.spec.name, room, self.context.topics[room].clone(), false));
        self.join(ws, room).await
    }

    /// A message in its home room (or the room it visits), sometimes with `typing` before and after.
    async fn chat(&mut self, ws: &mut Ws) -> Step {
        let joined: Vec<usize> = self.slots.iter().filter(|s| s.channel == Channel::Joined).map(|s| s.room).collect();
        let room = if joined.len() > 1 && self.rng.random_bool(0.3) {
            joined.iter().copied().find(|&r| r != self.spec.home).unwrap_or(self.spec.home)
        } else {
            self.spec.home
        };
        let typing = self.rng.random_bool(0.3);
        if typing {
            self.typing(ws, room, true).await?;
        }
        self.sent += 1;
        let client_id = format!("{}-{}-{}", self.context.run, self.spec.number, self.sent);
        let (low, high) = self.spec.body_chars;
        let chars = self.rng.random_range(low..=high);
        let raw = text::body(&client_id, chars, &mut self.rng);
        let twice = self.rng.random_bool(0.03);
        self.outgoing.push(Outgoing { client_id, room, raw, in_flight: false, retry_at: None, twice });
        self.flush_outgoing(ws).await?;
        if typing {
            self.typing(ws, room, false).await?;
        }
        Ok(())
    }

    async fn typing(&mut self, ws: &mut Ws, room: usize, typing: bool) -> Step {
        let Some((join_ref, topic)) = self
            .slots
            .iter()
            .find(|s| s.room == room && s.channel == Channel::Joined)
            .and_then(|s| s.join_ref.clone().map(|j| (j, s.topic.clone())))
        else {
            return Ok(());
        };
        bump(&self.context.ledger.counters.typing);
        self.push(ws, &join_ref, &topic, &Typing { typing }, Purpose::Ack { what: "typing" }).await
    }

    fn disconnected(&mut self) {
        for slot in &mut self.slots {
            slot.disconnected();
        }
        self.refs.clear();
        for outgoing in &mut self.outgoing {
            outgoing.in_flight = false;
        }
    }

    /// The run is over for this member: its memberships go to the ledger; a send it never got answered is given up
    /// (a visitor cut off by a kill) or, for a resident, a violation (it had the whole quiesce phase to get it).
    fn settle_up(&mut self) {
        let ledger = self.context.ledger.clone();
        for outgoing in self.outgoing.drain(..) {
            if self.spec.stays {
                ledger.violation("a message never got an answer", outgoing.client_id.clone());
            }
            ledger.abandoned(&outgoing.client_id);
        }
        for slot in self.slots.drain(..) {
            ledger.membership(slot.membership);
        }
        if !self.spec.stays {
            bump(&ledger.counters.visitors);
        }
    }

    fn slot_mut(&mut self, room: usize) -> Option<&mut RoomSlot> {
        self.slots.iter_mut().find(|s| s.room == room)
    }

    async fn push<R: Request>(
        &mut self,
        ws: &mut Ws,
        join_ref: &str,
        topic: &str,
        request: &R,
        purpose: Purpose,
    ) -> Step {
        let msg_ref = self.next_ref();
        let frame = frames::push(join_ref, &msg_ref, topic, request);
        self.refs.insert(msg_ref, purpose);
        self.send(ws, frame).await
    }

    async fn push_raw(&mut self, ws: &mut Ws, build: fn(&str) -> Result<String, FrameError>, purpose: Purpose) -> Step {
        let msg_ref = self.next_ref();
        let frame = build(&msg_ref);
        self.refs.insert(msg_ref, purpose);
        self.send(ws, frame).await
    }

    async fn send(&mut self, ws: &mut Ws, frame: Result<String, FrameError>) -> Step {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                self.violation("a frame could not be built", error.to_string());
                return Ok(());
            }
        };
        conn::send(ws, frame).await.map_err(|_| Ended::Lost)
    }

    fn violation(&self, kind: &str, detail: String) {
        self.context.ledger.violation(kind, detail);
    }
}
