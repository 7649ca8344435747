//! The operators' `admin:stats` topic (docs/protocol.md §7.6): what the live dashboard receives.
//!
//! Every node samples its meters once a second and publishes a [`NodeStats`] on [`STATS_TOPIC`] to every node's
//! operators; a join is answered with [`StatsJoinReply`], the joined node's recent samples, so the dashboard's charts
//! are full from the first frame. Only operator accounts may join (others get
//! [`crate::reasons::UNAUTHORIZED`]).

use serde::{Deserialize, Serialize};

use crate::typed::Event;

/// The topic an operator's dashboard joins.
pub const STATS_TOPIC: &str = "admin:stats";
/// The event each node's sample is broadcast as.
pub const STATS_EVENT: &str = "stats";
/// Samples a join reply carries at most: five minutes at one a second, what the dashboard's charts show.
pub const STATS_HISTORY: usize = 300;
/// Rooms in each of a sample's two "busiest" lists.
pub const BUSIEST_ROOMS: usize = 5;

/// One node's sample: its gauges now and its rates over the last second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// The node's id (new at every start).
    pub node: String,
    /// When it was taken, ms since the Unix epoch (the node's clock).
    pub at: i64,
    /// Open sockets, every transport.
    pub connections: u64,
    /// Joined channels.
    pub joined_channels: u64,
    /// Successful joins since the node started.
    pub joins: u64,
    /// Messages this node stored since it started.
    pub messages: u64,
    /// Frames delivered to sockets since the node started.
    pub deliveries: u64,
    /// Joins per second over the last sample interval.
    pub joins_per_s: f64,
    /// Messages stored per second over the last sample interval.
    pub messages_per_s: f64,
    /// Frames delivered per second over the last sample interval.
    pub deliveries_per_s: f64,
    /// 99th percentile of the store's commit latency over about the last 10 s, in ms; `null` without commits.
    pub commit_p99_ms: Option<f64>,
    /// The `room:` topics with the most members (the whole cluster's presence as this node sees it), most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms_by_members: Vec<RoomCount>,
    /// The rooms with the most messages stored by this node in the last minute, most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms_by_messages: Vec<RoomCount>,
}

impl Event for NodeStats {
    const EVENT: &'static str = STATS_EVENT;
}

/// A room and a count (members, or messages in the last minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    /// The room's slug.
    pub room: String,
    /// What is counted.
    pub count: u64,
}

/// The `ok` response to a join of [`STATS_TOPIC`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsJoinReply {
    /// The node that answered the join.
    pub node: String,
    /// Its samples of the last [`STATS_HISTORY`] seconds, oldest first; only the newest carries the room lists.
    pub history: Vec<NodeStats>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::typed::{from_payload, to_payload};

    #[test]
    fn a_sample_without_rooms_leaves_the_lists_out_and_reads_back() {
        let sample = NodeStats { node: "n1".into(), connections: 3, commit_p99_ms: None, ..NodeStats::default() };
        let payload = to_payload(&sample).unwrap();
        let json = serde_json::to_value(&sample).unwrap();
        assert!(json.get("rooms_by_members").is_none(), "{json}");
        assert_eq!(json["commit_p99_ms"], serde_json::Value::Null);
        assert_eq!(from_payload::<NodeStats>(&payload).unwrap(), sample);
    }
}
