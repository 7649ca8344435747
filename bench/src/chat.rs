//! Chat traffic: U users spread over R rooms, one sender per room posting `message:new` at M messages per second.
//! Every member reads everything (presence included); each copy of a message is timed from the sender's clock (the
//! send time travels in the body) to its arrival. Reports delivery latency percentiles and delivered messages per
//! second: the store's group commit, the broadcast after commit and the fan-out, end to end.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::spread::{self, Ws};

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
    /// Users connected and joined.
    pub joined: usize,
    /// Messages sent.
    pub sent: u64,
    /// Copies delivered to members (the sender's own included).
    pub delivered: u64,
    /// Copies delivered per second of sending.
    pub delivered_per_s: f64,
    /// Delivery latency percentiles, ms.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

const MARKER: &str = r#""body":"bench "#;

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
                    if text.as_str().contains(r#""message:new""#)
                        && let Some(sent_us) = spread::number_after(text.as_str(), MARKER)
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

/// Posts to `topic` at `interval` until `until`; returns how many were sent.
async fn send_room(
    mut sink: futures::stream::SplitSink<Ws, Message>,
    topic: String,
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
        let client_id = format!("c{sent}");
        let frame = serde_json::to_string(&(
            "1",
            sent.to_string(),
            &topic,
            "message:new",
            serde_json::json!({"body": format!("bench {at}"), "client_id": client_id}),
        ))
        .unwrap_or_default();
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
                send_room(sink, topic, interval, epoch, until).await
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
        joined,
        sent,
        delivered: latencies.len() as u64,
        delivered_per_s: latencies.len() as f64 / elapsed.max(0.001),
        p50_ms: spread::percentile_ms(&latencies, 0.50),
        p95_ms: spread::percentile_ms(&latencies, 0.95),
        p99_ms: spread::percentile_ms(&latencies, 0.99),
        max_ms: spread::percentile_ms(&latencies, 1.0),
    }
}
