//! Round trips over either transport (`bench latency --transport websocket|longpoll`): C clients spread over R rooms,
//! the first member of each room sends `message:new` at a fixed rate, and every *other* member's receipt of each
//! message is timed from the sender's clock just before the send (the send time travels in the body, as in
//! [`crate::chat`]). The same scenario runs over WebSockets or over long poll, so the two transports compare on
//! one machine in one session.
//!
//! Over long poll each client is a [`crate::longpoll::Session`] holding one waiting GET, as phoenix.js does, and
//! re-polling as soon as an answer arrives; senders POST each message on a second keep-alive connection. A receipt
//! is the moment the poll answer carrying the message has been read. Besides the latencies the report gives what
//! the transport cost while sending: bytes the clients read per delivered copy, polls answered (long poll) and the
//! server's CPU per delivered copy (given its pid).

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use protocol::chat::{Message as ChatMessage, NewMessage};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Transport, frames,
    latency::Latency,
    longpoll::{Polled, Poster, Session},
    servers::{self, Servers},
    spread::{self, JOIN_REF, Ws},
};

/// What to run.
#[derive(Debug, Clone)]
pub struct RoundTripConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// WebSocket or long poll.
    pub transport: Transport,
    /// Clients (each one connection, or one long-poll session).
    pub clients: usize,
    /// Rooms they are spread over (client `i` in room `i % rooms`).
    pub rooms: usize,
    /// Messages per second per room.
    pub rate_per_room: f64,
    /// How long to send.
    pub duration: Duration,
    /// Connects and joins in flight at once.
    pub concurrency: usize,
    /// The server processes, for their CPU time.
    pub servers: Servers,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTripReport {
    /// The transport measured.
    pub transport: Transport,
    /// Clients configured.
    pub clients: usize,
    /// Rooms configured.
    pub rooms: usize,
    /// Messages per second per room.
    pub rate_per_room: f64,
    /// Seconds of sending.
    pub seconds: f64,
    /// Clients joined.
    pub joined: usize,
    /// Clients that failed to connect or join.
    pub failed: usize,
    /// Members whose connection or session ended before the end of the run (should be 0).
    pub dropped: usize,
    /// Messages sent.
    pub sent: u64,
    /// Sends that failed (a POST refused or its connection broken; a WebSocket write error).
    pub send_errors: u64,
    /// Copies due: every message once for each other joined member of its room.
    pub expected: u64,
    /// Copies received by members other than the sender.
    pub received: u64,
    /// Send → another member's receipt.
    #[serde(flatten)]
    pub latency: Latency,
    /// Bytes the clients read while sending, per received copy: HTTP answers whole over long poll, WebSocket
    /// frames (header and payload) otherwise.
    pub bytes_per_copy: f64,
    /// Long poll: polls answered while sending, per received copy.
    pub polls_per_copy: Option<f64>,
    /// Server CPU while sending, per received copy, µs: `(user, system)`.
    pub server_us_per_copy: Option<(f64, f64)>,
    /// This process's CPU while sending, per received copy, µs: `(user, system)`.
    pub generator_us_per_copy: Option<(f64, f64)>,
}

impl fmt::Display for RoundTripReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "latency over {} ({} clients, {} rooms, {} msg/s per room, {} s)",
            self.transport, self.clients, self.rooms, self.rate_per_room, self.seconds
        )?;
        writeln!(f, "  joined         {} ({} failed, {} dropped)", self.joined, self.failed, self.dropped)?;
        writeln!(f, "  sent           {} ({} errors)", self.sent, self.send_errors)?;
        writeln!(f, "  received       {} of {}", self.received, self.expected)?;
        writeln!(f, "{}", self.latency)?;
        writeln!(f, "  bytes/copy     {:.0}", self.bytes_per_copy)?;
        writeln!(f, "  polls/copy     {}", crate::or_na(self.polls_per_copy, |v| format!("{v:.2}")))?;
        let cpu = |v: Option<(f64, f64)>| {
            crate::or_na(v, |(user, system)| format!("{user:.1} µs user + {system:.1} µs system"))
        };
        writeln!(f, "  server CPU     {} per copy", cpu(self.server_us_per_copy))?;
        write!(f, "  generator CPU  {} per copy", cpu(self.generator_us_per_copy))
    }
}

/// Body prefix of a timed message; the sender's clock in µs since the run's epoch follows it.
const BODY_PREFIX: &str = "rtt ";

/// What the members read, shared by all of them.
#[derive(Default)]
struct Traffic {
    bytes: AtomicU64,
    polls: AtomicU64,
    dropped: AtomicUsize,
}

/// The latency (µs) of `text` when it is a timed message of this run.
fn latency_of(text: &str, epoch: Instant, now: Instant) -> Option<u32> {
    let frame = frames::decode(text).ok()?;
    let message = frames::event::<ChatMessage>(&frame)?.ok()?;
    let sent_us: u64 = message.body.strip_prefix(BODY_PREFIX)?.parse().ok()?;
    let now_us = now.duration_since(epoch).as_micros() as u64;
    Some(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32)
}

/// A joined member, before it is split into its reading and sending halves.
enum Member {
    Ws(Ws),
    LongPoll(Session),
}

/// How a room's sender sends.
enum Outlet {
    Ws(SplitSink<Ws, Message>),
    LongPoll(Poster),
}

impl Outlet {
    async fn send(&mut self, frame: String) -> bool {
        match self {
            Self::Ws(sink) => sink.send(Message::text(frame)).await.is_ok(),
            Self::LongPoll(poster) => poster.post(&[frame]).await.is_ok(),
        }
    }
}

/// Reads a WebSocket member's frames until `stop`; the latencies of the timed messages when `timed`.
async fn read_ws(
    mut stream: futures::stream::SplitStream<Ws>,
    timed: bool,
    epoch: Instant,
    traffic: Arc<Traffic>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => return latencies,
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let now = Instant::now();
                    // A server frame's header: 2 bytes, 4 from 126 bytes of payload, 10 from 64 KiB.
                    let header = match text.len() { 0..126 => 2, 126..65536 => 4, _ => 10 };
                    traffic.bytes.fetch_add((text.len() + header) as u64, Ordering::Relaxed);
                    if timed && let Some(latency) = latency_of(text.as_str(), epoch, now) {
                        latencies.push(latency);
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    traffic.dropped.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                }
            },
        }
    }
}

/// phoenix.js's heartbeat interval: a WebSocket member that only reads still sends one every 30 s, or the server
/// closes it after 60 s of silence. (Polling keeps a long-poll session alive.)
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// Heartbeats a WebSocket member that never sends until `stop`, then closes its connection.
async fn heartbeat(mut sink: SplitSink<Ws, Message>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    let mut next_ref = 1u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {
                next_ref += 1;
                let Ok(frame) = frames::heartbeat(&next_ref.to_string()) else { break };
                if sink.send(Message::text(frame)).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// Polls a long-poll member continuously until `stop`, as phoenix.js does (the next poll goes out as soon as an
/// answer is read); the latencies of the timed messages when `timed`.
async fn read_longpoll(
    mut session: Session,
    timed: bool,
    epoch: Instant,
    traffic: Arc<Traffic>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut bytes = session.bytes_read();
    loop {
        let polled = tokio::select! {
            _ = stop.changed() => return latencies,
            polled = session.poll() => polled,
        };
        let now = Instant::now();
        traffic.polls.fetch_add(1, Ordering::Relaxed);
        traffic.bytes.fetch_add(session.bytes_read() - bytes, Ordering::Relaxed);
        bytes = session.bytes_read();
        match polled {
            Ok(Polled::Frames(texts)) if timed => {
                latencies.extend(texts.iter().filter_map(|text| latency_of(text, epoch, now)));
            }
            Ok(_) => {}
            Err(error) => {
                crate::warn("latency", &format!("a long-poll member stopped: {error}"));
                traffic.dropped.fetch_add(1, Ordering::Relaxed);
                return latencies;
            }
        }
    }
}

/// Connects and joins client `index` to `topic` over `transport`.
async fn join(addr: SocketAddr, transport: Transport, index: usize, topic: &str) -> Option<Member> {
    let user = format!("rtt{index}");
    match transport {
        Transport::WebSocket => spread::connect_and_join(addr, index, &user, topic).await.map(Member::Ws),
        Transport::LongPoll => {
            let joined = async {
                let mut session = Session::open(addr, spread::source(index), &user).await?;
                session.join(topic).await?;
                Ok::<_, crate::longpoll::LongPollError>(session)
            };
            match joined.await {
                Ok(session) => Some(Member::LongPoll(session)),
                Err(error) => {
                    crate::warn("latency", &format!("client {index} did not join: {error}"));
                    None
                }
            }
        }
    }
}

/// Sends to `topic` at `interval` until `until`; returns (sent, failed sends). Client ids are `<run>-<n>`, fresh in
/// every run (the server stores a repeated `client_id` once per room and broadcasts nothing for the repeat).
async fn send_room(
    mut outlet: Outlet,
    topic: String,
    run: u64,
    interval: Duration,
    epoch: Instant,
    until: Instant,
) -> (u64, u64) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut next_ref = 1u64;
    while Instant::now() < until {
        ticker.tick().await;
        next_ref += 1;
        let at = epoch.elapsed().as_micros();
        let message = NewMessage { body: format!("{BODY_PREFIX}{at}"), client_id: Some(format!("{run:x}-{next_ref}")) };
        let Ok(frame) = frames::push(JOIN_REF, &next_ref.to_string(), &topic, &message) else { break };
        if outlet.send(frame).await {
            sent += 1;
        } else {
            failed += 1;
        }
    }
    (sent, failed)
}

/// Runs the scenario.
pub async fn run(config: RoundTripConfig) -> RoundTripReport {
    let rooms = config.rooms.max(1);
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let transport = config.transport;
    let tasks: Vec<_> = (0..config.clients)
        .map(|index| {
            let gate = gate.clone();
            let addr = config.addr;
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                join(addr, transport, index, &format!("room:rtt-{}", index % rooms)).await.map(|member| (index, member))
            })
        })
        .collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let traffic = Arc::new(Traffic::default());
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    let mut heartbeats = Vec::new();
    // Per room: joined members other than the sender.
    let mut receivers: HashMap<usize, u64> = HashMap::new();
    let mut failed = 0;
    for task in tasks {
        let Ok(Some((index, member))) = task.await else {
            failed += 1;
            continue;
        };
        // The first member of each room sends for it and does not time its own copies.
        let sender = index < rooms;
        if !sender {
            *receivers.entry(index % rooms).or_default() += 1;
        }
        let (traffic, stop) = (traffic.clone(), stop_rx.clone());
        let topic = format!("room:rtt-{}", index % rooms);
        match member {
            Member::Ws(ws) => {
                let (sink, stream) = ws.split();
                readers.push(tokio::spawn(read_ws(stream, !sender, epoch, traffic, stop)));
                if sender {
                    senders.push((index, Outlet::Ws(sink), topic));
                } else {
                    heartbeats.push(tokio::spawn(heartbeat(sink, stop_rx.clone())));
                }
            }
            Member::LongPoll(session) => {
                if sender {
                    senders.push((index, Outlet::LongPoll(session.poster()), topic));
                }
                readers.push(tokio::spawn(read_longpoll(session, !sender, epoch, traffic, stop)));
            }
        }
    }
    let joined = readers.len();
    // Let the joins' presence traffic settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let interval = Duration::from_secs_f64(1.0 / config.rate_per_room.max(0.001));
    let until = Instant::now() + config.duration;
    let me = std::process::id();
    let before = (
        traffic.bytes.load(Ordering::Relaxed),
        traffic.polls.load(Ordering::Relaxed),
        config.servers.cpu_seconds(),
        servers::cpu_seconds(me),
    );
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(n, (room, outlet, topic))| {
            // Spread the rooms' ticks over one interval rather than all firing at once.
            let offset = interval.mul_f64(n as f64 / rooms as f64);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                (room, send_room(outlet, topic, run, interval, epoch, until).await)
            })
        })
        .collect();
    let (mut sent, mut send_errors, mut expected) = (0, 0, 0);
    for task in sending {
        if let Ok((room, (room_sent, room_failed))) = task.await {
            sent += room_sent;
            send_errors += room_failed;
            expected += room_sent * receivers.get(&room).copied().unwrap_or(0);
        }
    }
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = (
        traffic.bytes.load(Ordering::Relaxed),
        traffic.polls.load(Ordering::Relaxed),
        config.servers.cpu_seconds(),
        servers::cpu_seconds(me),
    );
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.unwrap_or_default());
    }
    for heartbeat in heartbeats {
        let _ = heartbeat.await;
    }
    latencies.sort_unstable();
    let received = latencies.len() as u64;
    let per_copy = |count: f64| count / received.max(1) as f64;
    let cpu_per_copy =
        |cpu: Option<(f64, f64)>| cpu.map(|(user, system)| (per_copy(user * 1e6), per_copy(system * 1e6)));
    RoundTripReport {
        transport,
        clients: config.clients,
        rooms: config.rooms,
        rate_per_room: config.rate_per_room,
        seconds: config.duration.as_secs_f64(),
        joined,
        failed,
        dropped: traffic.dropped.load(Ordering::Relaxed),
        sent,
        send_errors,
        expected,
        received,
        latency: Latency::from_sorted_us(&latencies),
        bytes_per_copy: per_copy((after.0 - before.0) as f64),
        polls_per_copy: (transport == Transport::LongPoll).then(|| per_copy((after.1 - before.1) as f64)),
        server_us_per_copy: cpu_per_copy(servers::cpu_between(before.2, after.2)),
        generator_us_per_copy: cpu_per_copy(servers::cpu_between(before.3, after.3)),
    }
}
