//! Slow consumers: one at a time, a client joins every room, then stops reading while its timers keep firing (a
//! client whose reader is stuck): it asks for a page of the busy room's long messages every 100 ms (an endless
//! scroll) and heartbeats, and reads none of the answers. The server must cut it off (docs/protocol.md §10.2: close
//! 1011 once its outbound queue of 1024 is full) without stalling anyone else. The pages fill the sockets between the
//! two within seconds (the server's send buffer grows to about 3 MB); then a busy typist (the watcher, in side rooms
//! the slow client joined too) fills the queue with presence diffs, so a cut-off comes within seconds, short runs
//! included. The watcher sees the cut-off as the slow client's presence leaving the busy room; the slow client then reads its
//! backlog up to the close, and reconnects and rejoins every room with `last_seen_id`, as the docs tell it to: what it
//! read before and after must have no gap (its memberships go to the ledger like every other client's).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use protocol::{
    chat::{HistoryBefore, JoinParams, Message, RoomPresenceDiff, RoomPresenceState, Typing},
    events::MESSAGE_NEW,
    typed::Request,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::watch;

use super::{
    conn::{self, Incoming},
    context::Context,
    exchange::Exchange,
    ledger::bump,
    member::rooms::{AfterJoin, Channel, RoomSlot},
};
use crate::frames;

/// The slow client's `SO_RCVBUF`: its kernel holds little of what it does not read, so the backlog builds up on the
/// server, where the policy applies.
const RECEIVE_BUFFER: u32 = 4096;
/// How often the stuck client still sends a heartbeat, and toggles `typing` in one of its rooms.
const HEARTBEAT: Duration = Duration::from_secs(10);
const HISTORY: Duration = Duration::from_millis(100);
/// Side rooms the slow client and the watcher share (besides every chat room), and how often the watcher toggles
/// `typing` in one of them: each gets a change per presence window (50 ms), so about 400 diffs a second reach the
/// slow client's queue without the residents of the chat rooms seeing any of them.
const SIDE_ROOMS: usize = 20;
const TYPING: Duration = Duration::from_micros(2500);
/// How long the server may take to cut a stuck client off. Generous: the backlog has to fill the server's socket
/// buffer and then its queue of 1024, at the soak's traffic.
pub const CUT_OFF_WITHIN: Duration = Duration::from_secs(150);
/// How long the cut-off client may take to read its backlog up to the close.
const DRAIN: Duration = Duration::from_secs(30);

/// Runs episodes while the run chats.
pub async fn run(context: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x736c_6f77);
    let mut episode = 0;
    while context.until_chatting().await {
        episode += 1;
        Episode::new(&context, episode).play().await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..5000))).await;
    }
}

/// How an episode went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Cut off: its presence left while it still held the socket.
    CutOff,
    /// Still connected after [`CUT_OFF_WITHIN`].
    NeverCutOff,
    /// A kill or the end of the chat phase came first.
    Interrupted,
}

struct Episode<'a> {
    context: &'a Context,
    name: String,
    watcher_name: String,
    slots: Vec<RoomSlot>,
}

impl<'a> Episode<'a> {
    fn new(context: &'a Context, number: usize) -> Self {
        let name = format!("slow-{}-{number}", context.run);
        let slots = (0..context.topics.len())
            .map(|room| RoomSlot::new(&name, room, context.topics[room].clone(), false))
            .collect();
        Self { context, watcher_name: format!("watch-{}-{number}", context.run), name, slots }
    }

    async fn play(mut self) {
        let ledger = self.context.ledger.clone();
        bump(&ledger.counters.slow_episodes);
        let epoch = self.context.server.epoch();
        let outcome = self.stall(epoch).await;
        match outcome {
            Outcome::CutOff => self.recover(epoch).await,
            Outcome::NeverCutOff => ledger.violation(
                "a slow consumer was never cut off",
                format!("{} still present {} s after it stopped reading", self.name, CUT_OFF_WITHIN.as_secs()),
            ),
            Outcome::Interrupted => bump(&ledger.counters.slow_interrupted),
        }
        // Whatever was delivered before an interruption still has to be gapless.
        for slot in self.slots.drain(..).filter(|s| s.started) {
            ledger.membership(slot.membership);
        }
    }

    /// Joins, stops reading, waits for the cut-off, then reads the backlog up to the close.
    async fn stall(&mut self, epoch: u64) -> Outcome {
        let Some((present, _watcher)) = self.watch().await else { return Outcome::Interrupted };
        let Ok(ws) = conn::open(self.context.addr, &self.name, Some(RECEIVE_BUFFER)).await else {
            return Outcome::Interrupted;
        };
        let mut slow = Exchange::new(ws);
        for room in 0..self.slots.len() {
            let mut early = Vec::new();
            let topic = self.slots[room].topic.clone();
            let Ok((join_ref, reply)) = slow.join(&topic, &JoinParams::default(), |t| early.push(t.to_owned())).await
            else {
                return Outcome::Interrupted;
            };
            for text in early {
                self.deliver(&text);
            }
            let slot = &mut self.slots[room];
            slot.join_ref = Some(join_ref);
            let _ = slot.joined(None, &reply);
        }
        for topic in self.side_rooms() {
            // Broadcasts of the rooms joined above keep coming meanwhile: they are deliveries too.
            let mut early = Vec::new();
            if slow.join(&topic, &JoinParams::default(), |t| early.push(t.to_owned())).await.is_err() {
                return Outcome::Interrupted;
            }
            for text in early {
                self.deliver(&text);
            }
        }
        let stopped = Instant::now();
        let outcome = self.wait_for_cut_off(&mut slow, present, epoch).await;
        if outcome == Outcome::CutOff {
            self.context.ledger.cut_off(stopped.elapsed());
            self.read_to_close(&mut slow).await;
        }
        outcome
    }

    /// Not reading, still asking, until the watcher sees the presence go.
    async fn wait_for_cut_off(&self, slow: &mut Exchange, mut present: watch::Receiver<i64>, epoch: u64) -> Outcome {
        let deadline = tokio::time::Instant::now() + CUT_OFF_WITHIN;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut phase = self.context.phase.clone();
        let mut seen_present = false;
        let mut history = tokio::time::interval(HISTORY);
        history.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.context.server.interrupted_since(epoch) || !self.context.chatting() {
                return Outcome::Interrupted;
            }
            let metas = *present.borrow_and_update();
            seen_present |= metas > 0;
            if seen_present && metas == 0 {
                return Outcome::CutOff;
            }
            let frame = tokio::select! {
                changed = present.changed() => if changed.is_err() { return Outcome::Interrupted } else { None },
                _ = heartbeat.tick() => frames::heartbeat(&slow.next_ref()).ok(),
                _ = history.tick() => {
                    let page = HistoryBefore { before_id: 1 << 40, limit: Some(100) };
                    self.request(slow, self.context.busy_room, &page)
                }
                _ = phase.changed() => None,
                () = tokio::time::sleep_until(deadline) => return Outcome::NeverCutOff,
            };
            if let Some(frame) = frame {
                send_unread(slow, frame).await;
            }
        }
    }

    /// A push of `request` on the slow client's channel of `room`, whose answer it will not read.
    fn request<R: Request>(&self, slow: &mut Exchange, room: usize, request: &R) -> Option<String> {
        let slot = self.slots.get(room)?;
        frames::push(slot.join_ref.as_deref()?, &slow.next_ref(), &slot.topic, request).ok()
    }

    /// Reads the backlog; the stream must end with close 1011 (or, if the server could not get its close frame out
    /// to a full socket, without a close frame).
    async fn read_to_close(&mut self, slow: &mut Exchange) {
        let ledger = self.context.ledger.clone();
        let deadline = tokio::time::Instant::now() + DRAIN;
        loop {
            let incoming = tokio::select! {
                incoming = conn::next(&mut slow.ws) => incoming,
                () = tokio::time::sleep_until(deadline) => {
                    ledger.violation("a cut-off slow consumer's socket stayed open", self.name.clone());
                    return;
                }
            };
            match incoming {
                Incoming::Text(text) => self.deliver(&text),
                Incoming::Binary => {}
                Incoming::Closed(1011, _) => {
                    bump(&ledger.counters.slow_closed_1011);
                    break;
                }
                Incoming::Closed(code, reason) => {
                    ledger.violation("a slow consumer was closed with another code", format!("{code} {reason}"));
                    break;
                }
                Incoming::Gone(_) => {
                    bump(&ledger.counters.slow_dropped);
                    break;
                }
            }
        }
        for slot in &mut self.slots {
            slot.disconnected();
        }
    }

    /// Reconnects and rejoins every room with `last_seen_id`, filling an unrecovered gap from history.
    async fn recover(&mut self, epoch: u64) {
        let Ok(ws) = conn::open(self.context.addr, &self.name, None).await else { return };
        let mut client = Exchange::new(ws);
        for room in 0..self.slots.len() {
            if self.context.server.interrupted_since(epoch) {
                return;
            }
            let asked = self.slots[room].join_param();
            let topic = self.slots[room].topic.clone();
            let mut early = Vec::new();
            let params = JoinParams { last_seen_id: asked, ..JoinParams::default() };
            let Ok((join_ref, reply)) = client.join(&topic, &params, |t| early.push(t.to_owned())).await else {
                return;
            };
            for text in early {
                self.deliver(&text);
            }
            let slot = &mut self.slots[room];
            slot.join_ref = Some(join_ref.clone());
            let (after, broken) = slot.joined(asked, &reply);
            for broken in broken {
                self.context.ledger.violation(broken.kind, broken.detail);
            }
            let ledger = &self.context.ledger;
            bump(if reply.recovered { &ledger.counters.recovered } else { &ledger.counters.not_recovered });
            if let AfterJoin::FillGap { mut before_id, stop_after } = after {
                loop {
                    let page = HistoryBefore { before_id, limit: Some(100) };
                    let mut early = Vec::new();
                    let Ok(reply) = client.push(&join_ref, &topic, &page, |t| early.push(t.to_owned())).await else {
                        return;
                    };
                    for text in early {
                        self.deliver(&text);
                    }
                    let ledger = &self.context.ledger;
                    bump(&ledger.counters.gap_pages);
                    match self.slots[room].gap_page(&reply.messages, 100, stop_after) {
                        Some(next) => before_id = next,
                        None => break,
                    }
                }
            }
        }
        let _ = client.ws.close(None).await;
    }

    /// A frame the slow client read: `message:new` is delivered to its room.
    fn deliver(&mut self, text: &str) {
        let Ok(frame) = frames::decode(text) else { return };
        if frame.event() != MESSAGE_NEW {
            return;
        }
        let (Ok(message), Some(slot)) =
            (frame.payload::<Message>(), self.slots.iter_mut().find(|s| s.topic == frame.topic()))
        else {
            return;
        };
        if slot.channel != Channel::Joined {
            return;
        }
        if let Some(broken) = slot.deliver(&message, true) {
            self.context.ledger.violation(broken.kind, broken.detail);
        }
    }

    /// The side rooms' topics.
    fn side_rooms(&self) -> Vec<String> {
        (0..SIDE_ROOMS).map(|n| format!("room:soak-{}-side-{n}", self.context.run)).collect()
    }

    /// The watcher: in the busy room, reporting how many metas the slow client has there, and in the side rooms,
    /// toggling `typing` in them in turn (the presence diffs are what fills the stuck client's queue once its socket
    /// is full, since the server no longer reads what the stuck client sends).
    async fn watch(&self) -> Option<(watch::Receiver<i64>, WatcherTask)> {
        let ws = conn::open(self.context.addr, &self.watcher_name, None).await.ok()?;
        let mut watcher = Exchange::new(ws);
        let mut early = Vec::new();
        let mut channels = Vec::new();
        let busy = self.context.topics[self.context.busy_room].clone();
        watcher.join(&busy, &JoinParams::default(), |t| early.push(t.to_owned())).await.ok()?;
        for topic in self.side_rooms() {
            let (join_ref, _) =
                watcher.join(&topic, &JoinParams::default(), |t| early.push(t.to_owned())).await.ok()?;
            channels.push((join_ref, topic));
        }
        let (tx, rx) = watch::channel(0i64);
        let name = self.name.clone();
        let ledger = self.context.ledger.clone();
        let task = tokio::spawn(async move {
            let mut metas = 0i64;
            let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
            let mut typing = tokio::time::interval(TYPING);
            typing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pushes = 0usize;
            let mut pending = early.into_iter();
            loop {
                let text = match pending.next() {
                    Some(text) => text,
                    None => tokio::select! {
                        incoming = conn::next(&mut watcher.ws) => match incoming {
                            Incoming::Text(text) => text,
                            Incoming::Binary => continue,
                            _ => return,
                        },
                        _ = heartbeat.tick() => {
                            let Ok(frame) = frames::heartbeat(&watcher.next_ref()) else { return };
                            if conn::send(&mut watcher.ws, frame).await.is_err() { return }
                            continue;
                        }
                        _ = typing.tick() => {
                            pushes += 1;
                            bump(&ledger.counters.typing);
                            let (join_ref, topic) = &channels[pushes % channels.len()];
                            let typing = Typing { typing: (pushes / channels.len()).is_multiple_of(2) };
                            let Ok(frame) = frames::push(join_ref, &watcher.next_ref(), topic, &typing) else { return };
                            if conn::send(&mut watcher.ws, frame).await.is_err() { return }
                            continue;
                        }
                    },
                };
                let Ok(frame) = frames::decode(&text) else { continue };
                if frame.topic() != busy {
                    continue;
                }
                if let Some(Ok(state)) = frames::event::<RoomPresenceState>(&frame) {
                    metas = state.0.get(&name).map_or(0, |p| p.metas.len() as i64);
                } else if let Some(Ok(diff)) = frames::event::<RoomPresenceDiff>(&frame) {
                    metas += diff.joins.get(&name).map_or(0, |p| p.metas.len() as i64);
                    metas -= diff.leaves.get(&name).map_or(0, |p| p.metas.len() as i64);
                } else {
                    continue;
                }
                if tx.send(metas).is_err() {
                    return;
                }
            }
        });
        Some((rx, WatcherTask(task)))
    }
}

/// Sends without reading. The write blocks once the server stops reading too (it does while its own write to this
/// client is blocked); the stuck client's timers do not wait for ever either.
async fn send_unread(slow: &mut Exchange, frame: String) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn::send(&mut slow.ws, frame)).await;
}

/// The watcher's task, ended when the episode is over.
struct WatcherTask(tokio::task::JoinHandle<()>);

impl Drop for WatcherTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
