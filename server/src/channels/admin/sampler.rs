//! The once-a-second sample behind `admin:stats`: this node's [`Pulse`] turned into a [`NodeStats`] (rates from the
//! deltas of its counters, the busiest rooms), kept in a ring of the last five minutes for join replies and
//! published on the topic through the server's pubsub, so in a cluster every node's operators see every node.
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
    admin::{BUSIEST_ROOMS, NodeStats, RoomCount, STATS_HISTORY, STATS_TOPIC},
    names::ROOM_TOPIC_PREFIX,
    typed::{Event, to_payload},
};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::now_ms,
    metrics::{Meters, Pulse},
    node::NodeId,
    presence::Tracker,
    pubsub::{Broadcast, PubSub},
};

/// How often a node samples and publishes: the dashboard's refresh rate.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// This node's last [`STATS_HISTORY`] samples, oldest first.
#[derive(Default)]
pub(crate) struct StatsRing {
    samples: Mutex<VecDeque<NodeStats>>,
}

impl StatsRing {
    fn push(&self, sample: NodeStats) {
        let mut samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if samples.len() == STATS_HISTORY {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples for a join reply: every one, but only the newest with its room lists (the charts need the numbers
    /// of five minutes, the tables only the current rooms; the lists would make the reply ten times larger).
    pub(crate) fn history(&self) -> Vec<NodeStats> {
        let samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let newest = samples.len().saturating_sub(1);
        samples
            .iter()
            .enumerate()
            .map(|(index, sample)| match index == newest {
                true => sample.clone(),
                false => NodeStats { rooms_by_members: Vec::new(), rooms_by_messages: Vec::new(), ..sample.clone() },
            })
            .collect()
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
    /// Samples every [`SAMPLE_INTERVAL`] until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let topic: Arc<str> = Arc::from(STATS_TOPIC);
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        // A late tick (a busy runtime) is one longer interval, not a burst: the rates divide by the real time.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut previous: Option<(Pulse, Instant)> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
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
            self.ring.push(sample);
        }
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
        let rooms = vec![RoomCount { room: "lobby".into(), count: 1 }];
        for at in 0..(STATS_HISTORY as i64 + 5) {
            ring.push(NodeStats { at, rooms_by_members: rooms.clone(), ..NodeStats::default() });
        }
        let history = ring.history();
        assert_eq!(history.len(), STATS_HISTORY);
        assert_eq!((history[0].at, history[STATS_HISTORY - 1].at), (5, STATS_HISTORY as i64 + 4));
        assert!(history[..STATS_HISTORY - 1].iter().all(|s| s.rooms_by_members.is_empty()));
        assert_eq!(history[STATS_HISTORY - 1].rooms_by_members, rooms);
    }
}
