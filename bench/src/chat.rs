//! Chat traffic: U users spread over R rooms, one sender per room posting `message:new` at M messages per second.
//! Every member reads everything (presence included); each copy of a message is timed from the sender's clock (the
//! send time travels in the body as `bench <µs>` and is read back from the typed `message:new` broadcast) to its
//! arrival. Reports delivery latency percentiles and delivered messages per second: the store's group commit, the
//! broadcast after commit and the fan-out, end to end.

use std::{
    fmt,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use protocol::chat::{Message as ChatMessage, NewMessage};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    frames,
    latency::Latency,
    spread::{self, JOIN_REF, Ws},
};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Users (connections).
    pub users: usize,
    /// Rooms they are spread over.
    pub rooms: usize,
    /// Messages per second per room.
    pub rate_per_room: f64,
    /// How long to send.
    pub duration: Duration,
    /// Handshakes in flight while connecting.
    pub concurrency: usize,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReport {
    /// Users configured.
    pub users: usize,
    /// Rooms configured.
    pub rooms: usize,
    /// Messages per second per room.
    pub rate_per_room: f64,
    /// Seconds of sending.
    pub seconds: f64,
    /// Users connected and joined.
    pub joined: usize,
    /// Messages sent.
    pub sent: u64,
    /// Copies delivered to members (the sender's own included).
    pub delivered: u64,
    /// Copies delivered per second of sending.
    pub delivered_per_s: f64,
    /// Delivery latency percentiles.
    #[serde(flatten)]
    pub latency: Latency,
}

impl fmt::Display for ChatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chat ({} users, {} rooms, {} msg/s per room, {} s)\n  joined         {}\n  sent           {}\n  delivered      {}\n  delivered/s    {:.0}\n{}",
            self.users,
            self.rooms,
            self.rate_per_room,
            self.seconds,
            self.joined,
            self.sent,
            self.delivered,
            self.delivered_per_s,
            self.latency,
        )
    }
}

/// Body prefix of a timed message; the sender's clock in µs since the run's epoch follows it.
const BODY_PREFIX: &str = "bench ";

/// The send time a timed message carries in its body.
fn sent_us(message: &ChatMessage) -> Option<u64> {
    message.body.strip_prefix(BODY_PREFIX)?.parse().ok()
}

/// Reads until `stop`; returns the latency (µs) of every timed message received.
async fn read_member(
    mut stream: futures::stream::SplitStream<Ws>,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => return latencies,
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(frame) = frames::decode(text.as_str())
                        && let Some(Ok(message)) = frames::event::<ChatMessage>(&frame)
                        && let Some(sent_us) = sent_us(&message)
                    {
                        let now_us = epoch.elapsed().as_micros() as u64;
                        latencies.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
                    }
                }
                Some(Ok(_)) => {}
                _ => return latencies,
            },
        }
    }
}

/// Posts to `topic` at `interval` until `until`; returns how many were sent. Client ids are `<run>-<n>`: fresh in
/// every run, since the server stores a repeated `client_id` once per room and broadcasts nothing for the repeat (a
/// second run against the same database would otherwise measure deduplication).
async fn send_room(
    mut sink: futures::stream::SplitSink<Ws, Message>,
    topic: String,
    run: u64,
    interval: Duration,
    epoch: Instant,
    until: Instant,
) -> u64 {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    while Instant::now() < until {
        ticker.tick().await;
        let at = epoch.elapsed().as_micros();
        let message = NewMessage { body: format!("{BODY_PREFIX}{at}"), client_id: Some(format!("{run:x}-{sent}")) };
        let Ok(frame) = frames::push(JOIN_REF, &sent.to_string(), &topic, &message) else { break };
        if sink.send(Message::text(frame)).await.is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

/// Runs the scenario.
pub async fn run(config: ChatConfig) -> ChatReport {
    let rooms = config.rooms.max(1);
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let tasks: Vec<_> = (0..config.users)
        .map(|index| {
            let gate = gate.clone();
            let addr = config.addr;
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                let topic = format!("room:chat-{}", index % rooms);
                spread::connect_and_join(addr, index, &format!("chat{index}"), &topic).await.map(|ws| (index, ws))
            })
        })
        .collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    let mut idle_sinks = Vec::new();
    for task in tasks {
        if let Ok(Some((index, ws))) = task.await {
            let (sink, stream) = ws.split();
            readers.push(tokio::spawn(read_member(stream, epoch, stop_rx.clone())));
            // The first member of each room sends for it.
            if index < rooms {
                senders.push((sink, format!("room:chat-{index}")));
            } else {
                idle_sinks.push(sink);
            }
        }
    }
    let joined = readers.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let until = Instant::now() + config.duration;
    let interval = Duration::from_secs_f64(1.0 / config.rate_per_room.max(0.001));
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(n, (sink, topic))| {
            // Spread the rooms' ticks over one interval rather than all firing at once.
            let offset = interval.mul_f64(n as f64 / rooms as f64);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                send_room(sink, topic, run, interval, epoch, until).await
            })
        })
        .collect();
    let mut sent = 0;
    for task in sending {
        sent += task.await.unwrap_or(0);
    }
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = config.duration.as_secs_f64();
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.unwrap_or_default());
    }
    drop(idle_sinks);
    latencies.sort_unstable();
    ChatReport {
        users: config.users,
        rooms: config.rooms,
        rate_per_room: config.rate_per_room,
        seconds: config.duration.as_secs_f64(),
        joined,
        sent,
        delivered: latencies.len() as u64,
        delivered_per_s: latencies.len() as f64 / elapsed.max(0.001),
        latency: Latency::from_sorted_us(&latencies),
    }
}
