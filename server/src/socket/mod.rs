//! One connection's state machine: heartbeat, join/leave, routing to channels, and the outbound writer.
//!
//! Each connection is a single task ([`Connection::run`]) racing three things in a `select!`: the next inbound frame,
//! the next batch from its bounded outbound queue, and its timers (idle timeout, slow-consumer flag, drain). Inbound
//! frames are handled one at a time; the direct answers to a frame (replies, `phx_close`, the pushes that follow a
//! join) are written before the queue is drained again, which is how a join reply always precedes every push and
//! broadcast for that topic. The dispatch table itself lives in [`dispatch`]; what the connection needs from a
//! transport, in [`transport`].

pub(crate) mod access;
mod dispatch;
mod joined;
pub(crate) mod transport;

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use protocol::{frame::Payload, reasons::CloseCode, serializer::Outgoing};
use tokio_util::sync::CancellationToken;

use crate::{
    channel::{Broadcasts, ChannelInstance, ChannelRouter, SocketInfo, Termination},
    frames::{Encoded, encode},
    limits::{RateLimit, SocketLimits},
    pubsub::{
        Broadcast, ConnId, Outbox, PubSub,
        outbox::{Inbox, Outbound, queue},
    },
};
use joined::JoinedChannels;
use transport::{Inbound, Transport, TransportError};

/// Limits and timeouts of the connection state machine.
#[derive(Debug, Clone)]
pub struct SocketSettings {
    /// Close the connection when nothing arrives for this long (Phoenix: 60 s; clients heartbeat every 30 s).
    pub idle_timeout: Duration,
    /// Largest frame or message a client may send (a WebSocket frame, a long-poll line); larger ones close the
    /// WebSocket with 1009 and refuse the long-poll POST with 413.
    pub max_frame_bytes: usize,
    /// Joined topics per connection (Phoenix's `max_channels_per_transport`, a CVE fix in 1.8.9).
    pub max_channels: usize,
    /// Outbound queue length before a connection counts as a slow consumer and is closed with 1011.
    pub outbound_capacity: usize,
    /// Most frames written per wakeup; bounds how long one busy connection holds its worker thread.
    pub write_batch: usize,
    /// `message:new` rate limit per connection.
    pub message_rate: RateLimit,
    /// `history:before` rate limit per connection.
    pub history_rate: RateLimit,
    /// A socket with no joined topic for this long is closed (1008): an upgraded socket that never joins only
    /// holds a descriptor.
    pub join_timeout: Duration,
    /// How long a closing connection may take to write its last answers and the close frame. A slow consumer's close
    /// frame waits behind everything already in its socket buffers, so a peer that stopped reading holds its task
    /// this long at most.
    pub close_timeout: Duration,
    /// How long a long-poll GET waits for output before answering 204 (Phoenix's `window_ms`, 10 s); a session with
    /// no poll for one and a half windows ends.
    pub poll_window: Duration,
}

impl Default for SocketSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_frame_bytes: 64 * 1024,
            max_channels: 100,
            outbound_capacity: 1024,
            write_batch: 128,
            message_rate: RateLimit { max: 20, window: Duration::from_secs(10) },
            history_rate: RateLimit { max: 10, window: Duration::from_secs(10) },
            join_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(2),
            poll_window: Duration::from_secs(10),
        }
    }
}

/// What every connection shares.
pub(crate) struct SocketServices {
    pub(crate) router: ChannelRouter,
    pub(crate) pubsub: Arc<dyn PubSub>,
    pub(crate) settings: SocketSettings,
    /// Cancelled when the server drains: every connection closes with 1012.
    pub(crate) drain: CancellationToken,
    /// Tracks live connections so a draining server can wait for their close frames.
    pub(crate) connections: tokio_util::task::TaskTracker,
    /// What connections count (sockets, joins, deliveries, closes).
    pub(crate) meters: Arc<crate::metrics::Meters>,
    /// Named in the access log's socket lines.
    pub(crate) node: crate::node::NodeId,
}

/// A joined topic on this connection.
struct JoinedChannel {
    join_ref: Option<Arc<str>>,
    instance: Box<dyn ChannelInstance>,
    /// [`crate::channel::Joined::delivered_up_to`], with 0 for none: message ids start at 1, so no `seq` is ever at or
    /// below 0. A plain `u64` keeps this struct at 48 bytes with `broadcasts` (an `Option<u64>` would add 8 to every
    /// joined topic of every connection).
    delivered_up_to: u64,
    broadcasts: Broadcasts,
}

impl JoinedChannel {
    /// Whether a queued broadcast is for this channel's client: not a message its join reply already held (or that
    /// came before a watch began), and only messages for a channel that wants nothing else.
    fn wants(&self, message: &Broadcast) -> bool {
        match message.seq {
            Some(seq) => seq > self.delivered_up_to,
            None => self.broadcasts == Broadcasts::All,
        }
    }

    /// Runs the channel's `terminate`. One that panics (a channel that just panicked may panic again) ends only this
    /// channel: it is logged and the connection goes on.
    fn terminate(mut self, conn: ConnId, topic: &str, reason: Termination) {
        let terminated = std::panic::catch_unwind(AssertUnwindSafe(|| self.instance.terminate(reason)));
        if terminated.is_err() {
            tracing::error!(conn, %topic, "channel terminate panicked");
        }
    }
}

/// Why a connection ended, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client closed or the link broke.
    ClientGone,
    /// Closed by the server with this close code.
    Closed(u16),
}

/// One client connection.
pub(crate) struct Connection<T: Transport> {
    transport: T,
    info: SocketInfo,
    services: Arc<SocketServices>,
    outbox: Outbox,
    inbox: Inbox,
    channels: JoinedChannels,
    limits: SocketLimits,
    /// Frames answering the inbound frame being handled; written before the queue is drained.
    immediate: Vec<Encoded>,
    /// Since when no topic is joined (`None` while one is); see [`SocketSettings::join_timeout`].
    unjoined_since: Option<std::time::Instant>,
    /// Counted in `parley_open_sockets` ([`Connection::run`] began); taken back when the connection is dropped.
    counted: bool,
}

impl<T: Transport> Connection<T> {
    /// A connection for an accepted transport and identity.
    pub(crate) fn new(transport: T, info: SocketInfo, services: Arc<SocketServices>) -> Self {
        let (outbox, inbox) = queue(services.settings.outbound_capacity);
        let limits = SocketLimits::new(services.settings.message_rate, services.settings.history_rate);
        Self {
            transport,
            info,
            services,
            outbox,
            inbox,
            channels: JoinedChannels::default(),
            limits,
            immediate: Vec::new(),
            unjoined_since: Some(std::time::Instant::now()),
            counted: false,
        }
    }

    /// Whether this socket has gone too long without a joined topic. Checked whenever the client sends something;
    /// a client that sends nothing at all meets the idle timeout instead.
    fn join_overdue(&mut self) -> bool {
        if !self.channels.is_empty() {
            self.unjoined_since = None;
            return false;
        }
        let since = *self.unjoined_since.get_or_insert_with(std::time::Instant::now);
        since.elapsed() >= self.services.settings.join_timeout
    }

    /// Runs until the client goes away or the server closes the connection; then terminates every channel (in
    /// `Drop`, so a task that panics or is aborted ends its channels and its counts as well).
    pub(crate) async fn run(mut self) -> Ended {
        let idle_timeout = self.services.settings.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        // The flag futures are made once and polled by reference rather than re-created at every wakeup.
        let drain = self.services.drain.clone();
        let drained = drain.cancelled();
        tokio::pin!(drained);
        let overflow = self.inbox.overflow_signal();
        let overflowed = overflow.wait();
        tokio::pin!(overflowed);
        let mut batch = Vec::new();
        self.services.meters.socket_opened(T::VIA);
        self.counted = true;
        let ended = loop {
            // Every branch is cancel-safe: `recv` and `recv_many` lose nothing when another branch wins, and the
            // flag/timer branches only observe state.
            tokio::select! {
                biased;
                () = &mut overflowed => break self.close_slow_consumer().await,
                () = &mut drained => break self.close(CloseCode::SERVICE_RESTART.code(), "server restarting").await,
                () = &mut idle => break self.close(CloseCode::GOING_AWAY.code(), "idle timeout").await,
                inbound = self.transport.recv() => {
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    match inbound {
                        None | Some(Ok(Inbound::Closed)) => break Ended::ClientGone,
                        Some(Err(TransportError::Refused { code, reason })) => {
                            break self.close(code.code(), reason).await;
                        }
                        Some(Err(TransportError::Broken(_))) => break Ended::ClientGone,
                        Some(Ok(Inbound::KeepAlive)) => {}
                        Some(Ok(frame)) => {
                            // Boxed: the dispatch future (joins, channel handlers) is large and short-lived; inline
                            // it would make every idle connection's task as big as its biggest moment.
                            if let Err(code) = Box::pin(self.handle_inbound(frame)).await {
                                break self.close(code, "invalid frame").await;
                            }
                            // A client that stopped reading but still sends (its heartbeats, say) blocks this write
                            // once its socket is full, like a broadcast's; the overflow flag must end it here too.
                            let flush = Box::pin(self.flush_immediate());
                            tokio::select! {
                                flushed = flush => if flushed.is_err() { break Ended::ClientGone },
                                () = &mut overflowed => {
                                    break self.close_slow_consumer().await;
                                }
                            }
                        }
                    }
                    if self.join_overdue() {
                        break self.close(CloseCode::POLICY_VIOLATION.code(), "join timeout").await;
                    }
                }
                received = self.inbox.recv_many(&mut batch, self.services.settings.write_batch) => {
                    if received == 0 {
                        break Ended::ClientGone;
                    }
                    let frames = self.select_outbound(&mut batch);
                    if frames.is_empty() {
                        continue;
                    }
                    let count = frames.len();
                    // A consumer that stopped reading blocks this write; the overflow flag must still end it. Boxed,
                    // like the dispatch future, so an idle connection's task does not carry the write's state.
                    let write = Box::pin(self.transport.send_all(frames));
                    tokio::select! {
                        written = write => match written {
                            // One add per written batch, whatever its size: counting costs nothing per frame.
                            Ok(()) => self.services.meters.delivered(count),
                            Err(_) => break Ended::ClientGone,
                        },
                        () = &mut overflowed => {
                            break self.close_slow_consumer().await;
                        }
                    }
                }
            }
        };
        // Dropping `self` here terminates the channels and takes back the counts (see `Drop`).
        ended
    }

    /// Writes the frames queued by the last inbound frame, in order, with one flush.
    async fn flush_immediate(&mut self) -> Result<(), TransportError> {
        if self.immediate.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.immediate);
        self.transport.send_all(frames).await
    }

    /// Turns queued broadcasts into frames, dropping what no longer belongs to a joined channel: broadcasts for
    /// topics this connection left (or never finished joining), `message:new` broadcasts the join reply already
    /// contained, and everything but messages on a channel that wants only those (a room watch).
    fn select_outbound(&self, batch: &mut Vec<Outbound>) -> Vec<Encoded> {
        let mut frames = Vec::with_capacity(batch.len());
        for message in batch.drain(..) {
            let Some(channel) = self.channels.get(&message.topic) else {
                continue;
            };
            if !channel.wants(&message) {
                continue;
            }
            if let Some(frame) = message.encoded(self.info.vsn) {
                frames.push(frame);
            }
        }
        frames
    }

    /// Closes a connection whose outbound queue overflowed (1011): what it could not take is dropped (and counted
    /// when the connection is dropped, once it is unsubscribed).
    fn close_slow_consumer(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Ended> + Send + '_>> {
        self.services.meters.slow_consumer();
        self.close(CloseCode::INTERNAL_ERROR.code(), "slow consumer")
    }

    /// Sends a close frame and reports why the connection ended.
    fn close<'a>(
        &'a mut self,
        code: u16,
        reason: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Ended> + Send + 'a>> {
        // Boxed for the same reason as the dispatch future: it runs once per connection.
        Box::pin(self.close_now(code, reason))
    }

    async fn close_now(&mut self, code: u16, reason: &str) -> Ended {
        // Answers produced just before the close still go out first. Bounded: a peer that stopped reading cannot
        // hold the task (the socket may be mid-frame after an interrupted write; then the peer just sees a reset).
        let _ = tokio::time::timeout(self.services.settings.close_timeout, async {
            let _ = self.flush_immediate().await;
            self.transport.close(code, reason).await;
        })
        .await;
        tracing::debug!(conn = self.info.conn, code, reason, "closing connection");
        self.services.meters.socket_closed(code);
        Ended::Closed(code)
    }

    /// Ends every joined channel (connection closing). A `terminate` that panics ends only its own channel, as in
    /// `end_channel`; none runs while the thread unwinds (a second panic there would abort the process).
    fn terminate_all(&mut self, reason: Termination) {
        let unwinding = std::thread::panicking();
        let mut ended = 0;
        for (topic, channel) in self.channels.drain() {
            ended += 1;
            self.services.pubsub.unsubscribe(&topic, self.info.conn);
            if !unwinding {
                channel.terminate(self.info.conn, &topic, reason);
            }
        }
        self.services.meters.channels_ended(ended);
    }

    /// Encodes a frame for this connection's serializer and queues it as a direct answer.
    fn answer(&mut self, message: &Outgoing<'_>) {
        match encode(self.info.vsn, message) {
            Ok(frame) => self.immediate.push(frame),
            Err(error) => {
                tracing::warn!(conn = self.info.conn, %error, "dropping unencodable frame")
            }
        }
    }

    /// Queues a reply `[join_ref, ref, topic, "phx_reply", {status, response}]`.
    fn reply(&mut self, join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, status: &str, response: &Payload) {
        self.answer(&Outgoing::Reply { join_ref, msg_ref, topic, status, response });
    }

    /// Queues a lifecycle message (`phx_close`, `phx_error`) whose ref is the join ref.
    fn lifecycle(&mut self, join_ref: Option<&str>, topic: &str, event: &str, payload: &Payload) {
        self.answer(&Outgoing::Message { join_ref, msg_ref: join_ref, topic, event, payload });
    }
}

impl<T: Transport> Drop for Connection<T> {
    /// The end of every connection, however its task ends (returned, panicked, or dropped mid-await): its channels
    /// are terminated and unsubscribed, a slow consumer's dropped broadcasts counted, and what it added to
    /// `parley_open_sockets` and `parley_joined_channels` taken back, so the gauges cannot drift.
    fn drop(&mut self) {
        self.terminate_all(Termination::Disconnected);
        if self.inbox.has_overflowed() {
            self.services.meters.slow_consumer_dropped(self.inbox.discard());
        }
        if self.counted {
            self.services.meters.socket_ended(T::VIA);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_joined_channel_stays_48_bytes() {
        assert_eq!(std::mem::size_of::<JoinedChannel>(), 48);
    }
}
