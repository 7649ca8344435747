//! The once-a-second sample behind `admin:stats`: this node's [`Pulse`] turned into a [`NodeStats`] (rates from the
//! deltas of its counters, the busiest rooms), published on the topic through the server's pubsub, so in a cluster
//! every node's operators see every node.
//!
//! The same task subscribes to the topic itself (as connection [`SAMPLER_CONN`], an id no socket gets) and keeps the
//! last five minutes of every node it hears from in the [`StatsRing`], so a dashboard that joins any node gets every
//! node's charts full in the join reply. A node it has not heard from for [`STATS_SILENCE_MS`] (by this node's
//! clock, never the samples' own times, which come from other machines) is forgotten.
//!
//! One task per server does this whether or not an operator is watching: a sample is a handful of atomic loads, a
//! walk over the presence topics and one small broadcast (one bus message a second per node in a cluster), and the
//! ring must be full when a dashboard opens.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::{
    admin::{BUSIEST_ROOMS, NodeStats, RoomCount, STATS_HISTORY, STATS_SILENCE_MS, STATS_TOPIC},
    names::ROOM_TOPIC_PREFIX,
    typed::{Event, from_payload, to_payload},
};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::now_ms,
    metrics::{Meters, Pulse},
    node::NodeId,
    presence::Tracker,
    pubsub::{Broadcast, ConnId, PubSub, Subscriber, outbox},
};

/// How often a node samples and publishes: the dashboard's refresh rate.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// The sampler's own subscription to the topic: sockets are numbered from 1.
pub(crate) const SAMPLER_CONN: ConnId = 0;
/// Samples the sampler's subscription may queue: far more than the nodes of any cluster send between two wakes.
const INBOX_CAPACITY: usize = 1_024;

/// The last [`STATS_HISTORY`] samples of every node heard from, oldest first.
#[derive(Default)]
pub(crate) struct StatsRing {
    nodes: Mutex<Vec<NodeRing>>,
}

/// One node's samples and when this node last heard from it.
struct NodeRing {
    node: String,
    heard: Instant,
    samples: VecDeque<NodeStats>,
}

/// Whether a node last heard from at `heard` is still there at `now`.
fn alive(heard: Instant, now: Instant) -> bool {
    now.saturating_duration_since(heard) < Duration::from_millis(STATS_SILENCE_MS)
}

impl StatsRing {
    /// Keeps `sample` (of any node), received at `now`, and forgets the nodes silent since before the silence limit.
    fn push(&self, sample: NodeStats, now: Instant) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.retain(|ring| alive(ring.heard, now));
        let index = match nodes.iter().position(|ring| ring.node == sample.node) {
            Some(index) => index,
            None => {
                nodes.push(NodeRing { node: sample.node.clone(), heard: now, samples: VecDeque::new() });
                nodes.len() - 1
            }
        };
        let ring = &mut nodes[index];
        ring.heard = now;
        if ring.samples.len() == STATS_HISTORY {
            ring.samples.pop_front();
        }
        ring.samples.push_back(sample);
    }

    /// The samples for a join reply at `now`: every live node's, `first`'s first, each node's oldest first, and only
    /// each node's newest with its room lists (the charts need the numbers of five minutes, the tables only the
    /// current rooms; the lists would make the reply ten times larger).
    pub(crate) fn history(&self, first: &str, now: Instant) -> Vec<NodeStats> {
        let nodes = self.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let live = nodes.iter().filter(|ring| alive(ring.heard, now));
        let (mine, others): (Vec<&NodeRing>, Vec<&NodeRing>) = live.partition(|ring| ring.node == first);
        let mut history = Vec::new();
        for ring in mine.into_iter().chain(others) {
            let newest = ring.samples.len().saturating_sub(1);
            history.extend(ring.samples.iter().enumerate().map(|(index, sample)| match index == newest {
                true => sample.clone(),
                false => NodeStats { rooms_by_members: Vec::new(), rooms_by_messages: Vec::new(), ..sample.clone() },
            }));
        }
        history
    }
}

/// What the sampling task reads and where it writes.
pub(crate) struct Sampler {
    pub(crate) node: NodeId,
    pub(crate) meters: Arc<Meters>,
    pub(crate) presence: Arc<Tracker>,
    pub(crate) pubsub: Arc<dyn PubSub>,
    pub(crate) ring: Arc<StatsRing>,
}

impl Sampler {
    /// Samples every [`SAMPLE_INTERVAL`] and keeps every node's samples until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let topic: Arc<str> = Arc::from(STATS_TOPIC);
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        // A late tick (a busy runtime) is one longer interval, not a burst: the rates divide by the real time.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut previous: Option<(Pulse, Instant)> = None;
        let (mut inbox, mut overflow) = self.subscribe();
        let mut received = Vec::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
                // A queue that overflowed refuses every later sample: subscribe again.
                _ = overflow.wait() => {
                    (inbox, overflow) = self.subscribe();
                    continue;
                }
                count = inbox.recv_many(&mut received, INBOX_CAPACITY) => {
                    let now = Instant::now();
                    for broadcast in received.drain(..) {
                        match from_payload::<NodeStats>(&broadcast.payload) {
                            // This node's own samples are kept as they are taken, below.
                            Ok(sample) if sample.node != self.node.as_str() => self.ring.push(sample, now),
                            Ok(_) => {}
                            Err(error) => tracing::debug!(%error, "unreadable stats sample"),
                        }
                    }
                    if count == 0 {
                        (inbox, overflow) = self.subscribe();
                    }
                    continue;
                }
            }
            let (pulse, at) = (self.meters.pulse(), Instant::now());
            let members = self.presence.busiest(ROOM_TOPIC_PREFIX, BUSIEST_ROOMS);
            let since = previous.as_ref().map(|(pulse, then)| (pulse, at.duration_since(*then)));
            let sample = sample(self.node.as_str(), now_ms(), &pulse, since, &members);
            previous = Some((pulse, at));
            match to_payload(&sample) {
                Ok(payload) => {
                    self.pubsub.broadcast(Arc::new(Broadcast::new(topic.clone(), NodeStats::EVENT, payload)))
                }
                Err(error) => tracing::error!(%error, "stats sample not encodable"),
            }
            self.ring.push(sample, at);
        }
        self.pubsub.unsubscribe(STATS_TOPIC, SAMPLER_CONN);
    }

    /// Subscribes the sampler to every node's samples (replacing an earlier subscription).
    fn subscribe(&self) -> (outbox::Inbox, outbox::OverflowSignal) {
        let (outbox, inbox) = outbox::queue(INBOX_CAPACITY);
        self.pubsub.subscribe(STATS_TOPIC, Subscriber { conn: SAMPLER_CONN, outbox });
        let overflow = inbox.overflow_signal();
        (inbox, overflow)
    }
}

/// One sample from the meters now and, after the first, the previous pulse and the time since it.
fn sample(
    node: &str,
    at: i64,
    now: &Pulse,
    since: Option<(&Pulse, Duration)>,
    members: &[(Arc<str>, usize)],
) -> NodeStats {
    let rate = |counter: fn(&Pulse) -> u64| match since {
        Some((before, elapsed)) if !elapsed.is_zero() => {
            hundredths(counter(now).saturating_sub(counter(before)) as f64 / elapsed.as_secs_f64())
        }
        _ => 0.0,
    };
    NodeStats {
        node: node.to_owned(),
        at,
        connections: now.sockets,
        joined_channels: now.joined_channels,
        joins: now.joins,
        messages: now.messages,
        deliveries: now.deliveries,
        joins_per_s: rate(|p| p.joins),
        messages_per_s: rate(|p| p.messages),
        deliveries_per_s: rate(|p| p.deliveries),
        commit_p99_ms: now.commit_p99_seconds.map(|seconds| hundredths(seconds * 1000.0)),
        rooms_by_members: members
            .iter()
            .map(|(topic, count)| RoomCount {
                room: topic.strip_prefix(ROOM_TOPIC_PREFIX).unwrap_or(topic).to_owned(),
                count: *count as u64,
            })
            .collect(),
        rooms_by_messages: now
            .room_messages
            .iter()
            .take(BUSIEST_ROOMS)
            .map(|(room, count)| RoomCount { room: room.clone(), count: *count })
            .collect(),
    }
}

/// Rounded to two decimals: enough for a dashboard, and the JSON stays short.
fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pulse(joins: u64, messages: u64, deliveries: u64) -> Pulse {
        Pulse { sockets: 4, joined_channels: 6, joins, messages, deliveries, ..Pulse::default() }
    }

    #[test]
    fn rates_are_the_counters_deltas_over_the_real_interval() {
        let before = pulse(10, 100, 1_000);
        let mut now = pulse(13, 110, 1_300);
        now.commit_p99_seconds = Some(0.012_345);
        now.room_messages = (0..8).map(|n| (format!("r{n}"), 8 - n)).collect();
        let members = [(Arc::<str>::from("room:lobby"), 3)];
        let stats = sample("n1", 7, &now, Some((&before, Duration::from_millis(2_000))), &members);
        assert_eq!((stats.joins_per_s, stats.messages_per_s, stats.deliveries_per_s), (1.5, 5.0, 150.0));
        assert_eq!((stats.connections, stats.joined_channels, stats.messages), (4, 6, 110));
        assert_eq!(stats.commit_p99_ms, Some(12.35));
        assert_eq!(stats.rooms_by_members, vec![RoomCount { room: "lobby".into(), count: 3 }]);
        assert_eq!(stats.rooms_by_messages.len(), BUSIEST_ROOMS);
        assert_eq!(stats.rooms_by_messages[0], RoomCount { room: "r0".into(), count: 8 });
    }

    #[test]
    fn the_first_sample_has_no_rates() {
        let stats = sample("n1", 7, &pulse(5, 5, 5), None, &[]);
        assert_eq!((stats.joins_per_s, stats.messages_per_s, stats.deliveries_per_s), (0.0, 0.0, 0.0));
        assert_eq!(stats.commit_p99_ms, None);
    }

    #[test]
    fn the_ring_keeps_five_minutes_and_only_the_newest_rooms() {
        let ring = StatsRing::default();
        let now = Instant::now();
        let rooms = vec![RoomCount { room: "lobby".into(), count: 1 }];
        for at in 0..(STATS_HISTORY as i64 + 5) {
            ring.push(NodeStats { node: "a".into(), at, rooms_by_members: rooms.clone(), ..NodeStats::default() }, now);
        }
        let history = ring.history("a", now);
        assert_eq!(history.len(), STATS_HISTORY);
        assert_eq!((history[0].at, history[STATS_HISTORY - 1].at), (5, STATS_HISTORY as i64 + 4));
        assert!(history[..STATS_HISTORY - 1].iter().all(|s| s.rooms_by_members.is_empty()));
        assert_eq!(history[STATS_HISTORY - 1].rooms_by_members, rooms);
    }

    #[test]
    fn every_node_heard_from_is_in_the_history_the_asker_first_until_it_falls_silent() {
        let ring = StatsRing::default();
        let start = Instant::now();
        let second = |n: u64| start + Duration::from_secs(n);
        let stats = |node: &str, at: i64| NodeStats { node: node.into(), at, ..NodeStats::default() };
        // `b`'s clock is far ahead of `a`'s: only the times samples arrive here count.
        ring.push(stats("b", 900_000), second(0));
        ring.push(stats("a", 1_000), second(0));
        ring.push(stats("b", 901_000), second(1));
        ring.push(stats("a", 2_000), second(1));
        let nodes = |history: Vec<NodeStats>| history.into_iter().map(|s| (s.node, s.at)).collect::<Vec<_>>();
        let expected = [("a", 1_000), ("a", 2_000), ("b", 900_000), ("b", 901_000)];
        let expected: Vec<_> = expected.iter().map(|(node, at)| (node.to_string(), *at)).collect();
        assert_eq!(nodes(ring.history("a", second(1))), expected);
        // `b` stops; 15 s after it was last heard, it is gone (a join sees it at once, a push forgets it).
        ring.push(stats("a", 3_000), second(10));
        let history = ring.history("a", second(16));
        assert!(history.iter().all(|s| s.node == "a") && history.len() == 3, "{history:?}");
        ring.push(stats("a", 4_000), second(16));
        assert_eq!(ring.nodes.lock().unwrap().len(), 1);
        assert_eq!(ring.history("b", second(16)).len(), 4, "a node asking first that is not there: the others");
    }
}
