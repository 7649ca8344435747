//! Durable ingest: clients push `message:new` as fast as they can (or at a fixed total rate) and the scenario reports
//! acknowledged messages per second and ack latency. An ack means the message is committed, so this measures the
//! store's group commit end to end. Acks are read as typed replies ([`NewMessageReply`], or an error reply such as
//! `rate limited`).

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use protocol::chat::{JoinParams, JoinReply, NewMessage, NewMessageReply};
use serde::Serialize;
use tokio_tungstenite::{connect_async_with_config, tungstenite::Message};

use crate::{frames, latency::Latency};

/// The join_ref and ref of each client's join; its pushes get refs from 2 up.
const JOIN_REF: &str = "1";

/// What to run.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Socket URL without query.
    pub url: String,
    /// Connections.
    pub clients: usize,
    /// Rooms the clients are spread over (each message is broadcast to its room).
    pub rooms: usize,
    /// Pushes each client keeps outstanding (in unlimited mode).
    pub inflight: usize,
    /// Total messages per second across all clients; `None` = as fast as acks allow.
    pub rate: Option<f64>,
    /// How long to send.
    pub duration: Duration,
    /// Message body size in bytes.
    pub body_bytes: usize,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Connections configured.
    pub clients: usize,
    /// Rooms configured.
    pub rooms: usize,
    /// The fixed total rate, messages per second; `None` = as fast as acks allow.
    pub rate: Option<f64>,
    /// Messages acknowledged ok.
    pub acked: u64,
    /// Error replies (e.g. rate limited).
    pub errors: u64,
    /// Acknowledged messages per second over the sending period.
    pub acked_per_s: f64,
    /// Ack latency percentiles.
    #[serde(flatten)]
    pub latency: Latency,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ingest ({} clients, {} rooms, rate {})\n  acked          {}\n  errors         {}\n  acked/s        {:.0}\n{}",
            self.clients,
            self.rooms,
            self.rate.map_or("max".to_owned(), |r| format!("{r}/s")),
            self.acked,
            self.errors,
            self.acked_per_s,
            self.latency.prefixed("ack "),
        )
    }
}

#[derive(Default)]
struct Totals {
    acked: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

async fn run_client(index: usize, config: Arc<IngestConfig>, totals: Arc<Mutex<Totals>>, start: Instant) {
    let url = format!("{}?vsn=2.0.0&user=ingest{index}", config.url);
    let Ok((ws, _)) = connect_async_with_config(&url, Some(crate::ws_config()), true).await else { return };
    let (mut sink, mut stream) = ws.split();
    let topic = format!("room:ingest-{}", index % config.rooms.max(1));
    let Ok(join) = frames::join(JOIN_REF, &topic, &JoinParams::default()) else { return };
    if sink.send(Message::text(join)).await.is_err() {
        return;
    }
    let message = NewMessage { body: "x".repeat(config.body_bytes.max(1)), client_id: None };
    let end = start + config.duration;
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut next_ref: u64 = 1;
    let mut local = Totals::default();
    // Per-client pacing in fixed-rate mode.
    let interval = config.rate.map(|rate| Duration::from_secs_f64(config.clients as f64 / rate.max(0.001)));
    let mut next_send = Instant::now();
    let mut joined = false;
    loop {
        let now = Instant::now();
        let can_send = joined
            && now < end
            && match interval {
                None => sent_at.len() < config.inflight,
                Some(_) => now >= next_send,
            };
        if can_send {
            next_ref += 1;
            let Ok(frame) = frames::push(JOIN_REF, &next_ref.to_string(), &topic, &message) else { break };
            if sink.send(Message::text(frame)).await.is_err() {
                break;
            }
            sent_at.insert(next_ref, Instant::now());
            if let Some(interval) = interval {
                next_send += interval;
            }
            continue;
        }
        if now >= end && sent_at.is_empty() {
            break;
        }
        let wait = match interval {
            Some(_) if joined && now < end => next_send.saturating_duration_since(now),
            _ => Duration::from_millis(200),
        };
        let message = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => {
                if now >= end + Duration::from_secs(10) {
                    break;
                }
                continue;
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => break,
        };
        let Ok(frame) = frames::decode(message.as_str()) else { continue };
        let (Some(reply), Some(msg_ref)) = (frame.reply(), frame.msg_ref().and_then(|r| r.parse::<u64>().ok())) else {
            continue;
        };
        if msg_ref == 1 {
            joined = frames::response::<JoinReply>(&reply).is_ok();
        } else if let Some(at) = sent_at.remove(&msg_ref) {
            match frames::response::<NewMessageReply>(&reply) {
                Ok(_) => {
                    local.acked += 1;
                    local.latencies_us.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                Err(_) => local.errors += 1,
            }
        }
    }
    let _ = sink.close().await;
    let mut totals = totals.lock().unwrap_or_else(|p| p.into_inner());
    totals.acked += local.acked;
    totals.errors += local.errors;
    totals.latencies_us.extend(local.latencies_us);
}

/// Runs the scenario.
pub async fn run(config: IngestConfig) -> IngestReport {
    let config = Arc::new(config);
    let totals = Arc::new(Mutex::new(Totals::default()));
    let start = Instant::now();
    let tasks: Vec<_> =
        (0..config.clients).map(|i| tokio::spawn(run_client(i, config.clone(), totals.clone(), start))).collect();
    for task in tasks {
        let _ = task.await;
    }
    let mut totals = std::mem::take(&mut *totals.lock().unwrap_or_else(|p| p.into_inner()));
    totals.latencies_us.sort_unstable();
    let seconds = config.duration.as_secs_f64();
    IngestReport {
        clients: config.clients,
        rooms: config.rooms,
        rate: config.rate,
        acked: totals.acked,
        errors: totals.errors,
        acked_per_s: totals.acked as f64 / seconds,
        latency: Latency::from_sorted_us(&totals.latencies_us),
    }
}
