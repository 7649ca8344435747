//! [`Meters`]: what this server counts, exposed as Prometheus text at `GET /metrics` and as a [`Pulse`] for the
//! dashboard.
//!
//! Each server has its own registry (a `metrics_exporter_prometheus::PrometheusRecorder`), not the process-wide
//! `metrics` recorder: tests run many servers in one process, and each must count only itself. Every series is
//! registered once, here, through the `metrics::Recorder` trait and labelled `node="<node id>"`; the code that counts
//! holds the handles, so a counter or gauge event is an atomic add on a handle (no name lookup, no lock, no
//! allocation), and a histogram sample a push onto the exporter's lock-free queue, folded into its buckets at a scrape
//! or every [`UPKEEP_INTERVAL`]. Histograms are only fed per commit, per acknowledged message and per bus publish.
//! Labelled families with a fixed set of values (join error reasons, close codes, transports, limits) are arrays of
//! handles indexed by a small enum or a lookup in a static table, so a label never costs a `String`.
//!
//! The few numbers the dashboard reads every second are mirrored in plain atomics beside their handles (a handle
//! can be written but not read back); [`recent`] keeps the short windows it shows (commit p99, busiest rooms). The one
//! counter on the delivery path, deliveries, is [`striped`] per thread and copied into its series when rendered.
//!
//! Owns no policy: callers decide what an event is; see ARCHITECTURE.md's frame flow for where each is counted.

mod catalog;
mod recent;
mod striped;

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use protocol::reasons::CloseCode;

pub(crate) use crate::limits::Limit;
use crate::node::NodeId;
use catalog::Registrar;
pub(crate) use recent::Pulse;

/// How a socket reaches the server (the `transport` label of `parley_open_sockets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    WebSocket,
    LongPoll,
}

impl Via {
    const ALL: [Self; 2] = [Self::WebSocket, Self::LongPoll];

    fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::LongPoll => "longpoll",
        }
    }
}

/// The `limit` label of a refusal counted in `parley_rate_limited_total`.
fn limit_label(limit: Limit) -> &'static str {
    match limit {
        Limit::Messages => "message_new",
        Limit::History => "history_before",
        Limit::Logins => "login",
        Limit::Registrations => "registration",
        Limit::Api => "api",
        Limit::SocketsPerIp => "sockets_per_ip",
        Limit::ConnectsPerIp => "connects_per_ip",
    }
}

/// Join error reasons with a series of their own (docs/protocol.md's reason table); any other reason counts as
/// `other`, so a channel's custom refusal cannot grow the label set.
const JOIN_ERROR_REASONS: [&str; 8] = [
    protocol::reasons::UNMATCHED_TOPIC,
    protocol::reasons::INVALID_ROOM,
    protocol::reasons::TOO_MANY_CHANNELS,
    protocol::reasons::JOIN_CRASHED,
    protocol::reasons::UNAUTHORIZED,
    protocol::reasons::INVALID_PAYLOAD,
    protocol::reasons::RATE_LIMITED,
    protocol::reasons::UNAVAILABLE,
];
const OTHER: &str = "other";

/// How often histogram samples are folded into their buckets when nobody scrapes: the exporter queues samples
/// until then, so without it an unscraped server's queues would grow with every commit.
pub(crate) const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A counter whose running total this process can also read (for [`Pulse`]): two relaxed adds per event.
struct Tally {
    counter: Counter,
    total: AtomicU64,
}

impl Tally {
    fn new(counter: Counter) -> Self {
        Self { counter, total: AtomicU64::new(0) }
    }

    fn add(&self, n: u64) {
        self.counter.increment(n);
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// A gauge this process can also read.
struct Level {
    gauge: Gauge,
    now: AtomicI64,
}

impl Level {
    fn new(gauge: Gauge) -> Self {
        Self { gauge, now: AtomicI64::new(0) }
    }

    fn up(&self, n: u32) {
        self.gauge.increment(f64::from(n));
        self.now.fetch_add(i64::from(n), Ordering::Relaxed);
    }

    fn down(&self, n: u32) {
        self.gauge.decrement(f64::from(n));
        self.now.fetch_sub(i64::from(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        u64::try_from(self.now.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// One server's meters. See the module docs.
pub(crate) struct Meters {
    handle: PrometheusHandle,
    sockets: [Level; Via::ALL.len()],
    joined_channels: Level,
    joins: Tally,
    join_errors: [Counter; JOIN_ERROR_REASONS.len() + 1],
    messages_stored: Tally,
    /// Added per written batch on the delivery path ([`striped`]), copied into `deliveries_counter` when rendered.
    deliveries: striped::Striped,
    deliveries_counter: Counter,
    slow_consumers: Counter,
    slow_consumer_dropped_broadcasts: Counter,
    closes: [Counter; CloseCode::ALL.len() + 1],
    presence_members: Gauge,
    presence_diff_batches: Counter,
    commit_seconds: Histogram,
    commit_batch_size: Histogram,
    ingest_ack_seconds: Histogram,
    rate_limited: [Counter; Limit::ALL.len()],
    login_failures: Counter,
    bus_publish_seconds: Histogram,
    bus_gaps_filled: Counter,
    bus_reconnects: Counter,
    recent: recent::Recent,
}

impl Meters {
    /// A fresh registry for the node `node`, every series registered (at zero) and labelled with it.
    pub(crate) fn new(node: &NodeId) -> Arc<Self> {
        let registrar = Registrar::new(node);
        let meters = Self {
            sockets: Via::ALL.map(|via| Level::new(registrar.gauge(catalog::OPEN_SOCKETS, "transport", via.label()))),
            joined_channels: Level::new(registrar.gauge(catalog::JOINED_CHANNELS, "", "")),
            joins: Tally::new(registrar.counter(catalog::JOINS, "", "")),
            join_errors: std::array::from_fn(|i| {
                registrar.counter(catalog::JOIN_ERRORS, "reason", JOIN_ERROR_REASONS.get(i).copied().unwrap_or(OTHER))
            }),
            messages_stored: Tally::new(registrar.counter(catalog::MESSAGES_STORED, "", "")),
            deliveries: striped::Striped::default(),
            deliveries_counter: registrar.counter(catalog::DELIVERIES, "", ""),
            slow_consumers: registrar.counter(catalog::SLOW_CONSUMERS, "", ""),
            slow_consumer_dropped_broadcasts: registrar.counter(catalog::SLOW_CONSUMER_DROPPED_BROADCASTS, "", ""),
            closes: std::array::from_fn(|i| {
                let code = CloseCode::ALL.get(i).map_or(OTHER, |code| close_code_label(*code));
                registrar.counter(catalog::SOCKET_CLOSES, "code", code)
            }),
            presence_members: registrar.gauge(catalog::PRESENCE_MEMBERS, "", ""),
            presence_diff_batches: registrar.counter(catalog::PRESENCE_DIFF_BATCHES, "", ""),
            commit_seconds: registrar.histogram(catalog::COMMIT_SECONDS),
            commit_batch_size: registrar.histogram(catalog::COMMIT_BATCH_SIZE),
            ingest_ack_seconds: registrar.histogram(catalog::INGEST_ACK_SECONDS),
            rate_limited: Limit::ALL.map(|limit| registrar.counter(catalog::RATE_LIMITED, "limit", limit_label(limit))),
            login_failures: registrar.counter(catalog::LOGIN_FAILURES, "", ""),
            bus_publish_seconds: registrar.histogram(catalog::BUS_PUBLISH_SECONDS),
            bus_gaps_filled: registrar.counter(catalog::BUS_GAPS_FILLED, "", ""),
            bus_reconnects: registrar.counter(catalog::BUS_RECONNECTS, "", ""),
            recent: recent::Recent::default(),
            handle: registrar.into_handle(),
        };
        Arc::new(meters)
    }

    /// The Prometheus text exposition (what `GET /metrics` answers).
    pub(crate) fn render(&self) -> String {
        self.deliveries_counter.absolute(self.deliveries.sum());
        self.handle.render()
    }

    /// Folds queued histogram samples into their buckets (see [`UPKEEP_INTERVAL`]).
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Cumulative totals and current gauges for the dashboard (a handful of relaxed atomic loads).
    pub(crate) fn pulse(&self) -> Pulse {
        let (commit_p99_seconds, room_messages) = self.recent.read();
        Pulse {
            sockets: self.sockets.iter().map(Level::get).sum(),
            joined_channels: self.joined_channels.get(),
            joins: self.joins.get(),
            messages: self.messages_stored.get(),
            deliveries: self.deliveries.sum(),
            commit_p99_seconds,
            room_messages,
        }
    }

    /// A socket of this transport opened.
    pub(crate) fn socket_opened(&self, via: Via) {
        self.sockets[via as usize].up(1);
    }

    /// A socket of this transport ended (however it ended).
    pub(crate) fn socket_ended(&self, via: Via) {
        self.sockets[via as usize].down(1);
    }

    /// The server closed a socket with `code`.
    pub(crate) fn socket_closed(&self, code: u16) {
        let index = CloseCode::ALL.iter().position(|known| known.code() == code).unwrap_or(CloseCode::ALL.len());
        self.closes[index].increment(1);
    }

    /// A socket is being closed because its outbound queue overflowed (a slow consumer).
    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.increment(1);
    }

    /// A slow consumer's connection ended with `broadcasts` broadcasts dropped for it (the client recovers the
    /// messages among them from history). Only ever called on that path: nothing is counted per delivered item.
    pub(crate) fn slow_consumer_dropped(&self, broadcasts: u64) {
        self.slow_consumer_dropped_broadcasts.increment(broadcasts);
    }

    /// A join succeeded.
    pub(crate) fn joined(&self) {
        self.joins.add(1);
        self.joined_channels.up(1);
    }

    /// `n` joined channels ended (left, stopped, failed, or their socket closed).
    pub(crate) fn channels_ended(&self, n: u32) {
        if n > 0 {
            self.joined_channels.down(n);
        }
    }

    /// A join was refused with `reason`.
    pub(crate) fn join_refused(&self, reason: &str) {
        let index = JOIN_ERROR_REASONS.iter().position(|known| *known == reason).unwrap_or(JOIN_ERROR_REASONS.len());
        self.join_errors[index].increment(1);
    }

    /// `frames` frames were written to one socket in one batch: one add per batch, never per frame, on this thread's
    /// stripe (a broadcast is a batch on every subscriber's task at once, on every worker thread).
    pub(crate) fn delivered(&self, frames: usize) {
        self.deliveries.add(frames as u64);
    }

    /// A group commit of `messages` new messages (duplicates excluded) and `batch` appends took `elapsed`;
    /// `rooms` are the rooms of the new messages with their counts.
    pub(crate) fn committed<'a>(
        &self,
        batch: usize,
        messages: u64,
        elapsed: Duration,
        rooms: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let seconds = elapsed.as_secs_f64();
        self.commit_seconds.record(seconds);
        self.commit_batch_size.record(batch as f64);
        self.messages_stored.add(messages);
        self.recent.committed(seconds, rooms);
    }

    /// A `message:new` was answered ok `elapsed` after it arrived.
    pub(crate) fn ingest_acked(&self, elapsed: Duration) {
        self.ingest_ack_seconds.record(elapsed.as_secs_f64());
    }

    /// A request was refused by a rate limit.
    pub(crate) fn rate_limited(&self, limit: Limit) {
        self.rate_limited[limit as usize].increment(1);
    }

    /// A login was refused (wrong password, unknown account, or too many failures: those also count as
    /// `rate_limited{limit="login"}`).
    pub(crate) fn login_failed(&self) {
        self.login_failures.increment(1);
    }

    /// Presence members on this node's topics changed by `delta`.
    pub(crate) fn presence_changed(&self, delta: i64) {
        match delta {
            0 => {}
            up if up > 0 => self.presence_members.increment(up as f64),
            down => self.presence_members.decrement(down.unsigned_abs() as f64),
        }
    }

    /// One coalesced `presence_diff` was sent on a topic.
    pub(crate) fn presence_diff_sent(&self) {
        self.presence_diff_batches.increment(1);
    }

    /// A publish on the cluster bus took `elapsed`.
    pub(crate) fn bus_published(&self, elapsed: Duration) {
        self.bus_publish_seconds.record(elapsed.as_secs_f64());
    }

    /// `n` messages missing from the bus were read from the database and delivered.
    pub(crate) fn bus_gaps_filled(&self, n: u64) {
        self.bus_gaps_filled.increment(n);
    }

    /// The bus connection was re-established.
    pub(crate) fn bus_reconnected(&self) {
        self.bus_reconnects.increment(1);
    }
}

/// The `code` label of a close code: its number.
fn close_code_label(code: CloseCode) -> &'static str {
    match code.code() {
        1000 => "1000",
        1001 => "1001",
        1002 => "1002",
        1007 => "1007",
        1008 => "1008",
        1009 => "1009",
        1011 => "1011",
        1012 => "1012",
        _ => OTHER,
    }
}

/// Builds the registry and its histogram buckets; used once by [`Meters::new`].
fn builder() -> PrometheusBuilder {
    catalog::BUCKETS.iter().fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
        builder
            .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Full((*name).to_owned()), buckets)
            .expect("every bucket list in the catalog is non-empty")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_code_has_its_own_label() {
        for code in CloseCode::ALL {
            assert_eq!(close_code_label(code), code.code().to_string());
        }
    }

    #[test]
    fn pulse_reads_what_was_counted() {
        let meters = Meters::new(&NodeId::random());
        meters.socket_opened(Via::WebSocket);
        meters.socket_opened(Via::LongPoll);
        meters.socket_ended(Via::WebSocket);
        meters.joined();
        meters.joined();
        meters.channels_ended(1);
        meters.delivered(128);
        meters.committed(3, 2, Duration::from_millis(4), [("lobby", 2)]);
        let pulse = meters.pulse();
        assert_eq!((pulse.sockets, pulse.joined_channels, pulse.joins), (1, 1, 2));
        assert_eq!((pulse.messages, pulse.deliveries), (2, 128));
        assert_eq!(pulse.room_messages, vec![("lobby".to_owned(), 2)]);
        assert!(pulse.commit_p99_seconds.is_some_and(|p99| (p99 - 0.004).abs() < 1e-9));
    }

    #[test]
    fn an_unknown_reason_or_code_counts_as_other() {
        let meters = Meters::new(&NodeId::random());
        meters.join_refused("made up by a channel");
        meters.socket_closed(4000);
        let text = meters.render();
        assert!(text.contains(r#"parley_join_errors_total{node=""#) && text.contains(r#"reason="other"} 1"#), "{text}");
        assert!(text.contains(r#"code="other"} 1"#), "{text}");
    }
}
