//! Members of the broadcast room in this process: connect and join them; each one's frames are read by a task of its
//! own, stamping every probe's arrival with the shared clock, and written by another, which also heartbeats every
//! 30 s as phoenix.js does (the server closes a socket silent for 60 s, and growing a room of 50,000 takes longer).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use super::{
    Probe, TOPIC,
    arrivals::{Arrivals, now_ns},
};
use crate::{
    frames,
    spread::{self, Ws},
};

/// phoenix.js's heartbeat interval.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// The sending side of a member's connection; dropping it closes the connection.
pub(super) struct Sink {
    frames: mpsc::UnboundedSender<String>,
}

impl Sink {
    /// Queues a text frame for the member's writer; `false` once the connection is gone.
    pub(super) fn send(&self, frame: String) -> bool {
        self.frames.send(frame).is_ok()
    }
}

/// Opens connections `indices` (user `b<index>`) into the room, counting their arrivals into `arrivals`; returns the
/// sinks of those that joined, in index order, and how many failed.
pub(super) async fn join(
    addr: SocketAddr,
    indices: impl Iterator<Item = usize>,
    concurrency: usize,
    arrivals: &Arc<Arrivals>,
) -> (Vec<Sink>, usize) {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let tasks: Vec<_> = indices
        .map(|index| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                spread::connect_and_join(addr, index, &format!("b{index}"), TOPIC).await
            })
        })
        .collect();
    let mut sinks = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok(Some(ws)) => {
                let (sink, stream) = ws.split();
                arrivals.joined();
                tokio::spawn(read_member(stream, arrivals.clone()));
                let (frames, queued) = mpsc::unbounded_channel();
                tokio::spawn(write_member(sink, queued));
                sinks.push(Sink { frames });
            }
            _ => failed += 1,
        }
    }
    (sinks, failed)
}

/// Reads a member's frames for as long as the connection lives, counting probes.
async fn read_member(mut stream: futures::stream::SplitStream<Ws>, arrivals: Arc<Arrivals>) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = message
            && let Ok(frame) = frames::decode(text.as_str())
            && let Some(Ok(probe)) = frames::event::<Probe>(&frame)
        {
            arrivals.arrived(probe.seq, now_ns());
        }
    }
    arrivals.closed();
}

/// Writes a member's queued frames and its heartbeats until its [`Sink`] is dropped, then closes the connection.
async fn write_member(mut sink: SplitSink<Ws, Message>, mut queued: mpsc::UnboundedReceiver<String>) {
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    let mut next_ref = 0u64;
    loop {
        let frame = tokio::select! {
            frame = queued.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
            _ = heartbeat.tick() => {
                next_ref += 1;
                match frames::heartbeat(&format!("h{next_ref}")) {
                    Ok(frame) => frame,
                    Err(_) => continue,
                }
            }
        };
        if sink.send(Message::text(frame)).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}
