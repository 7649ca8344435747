//! The operators' `admin:stats` topic (docs/protocol.md §7.6): what the live dashboard receives.
//!
//! Every node samples its meters once a second and publishes a [`NodeStats`] on [`STATS_TOPIC`] to every node's
//! operators; a join is answered with [`StatsJoinReply`], the recent samples of every node the joined node hears from,
//! so the dashboard's charts are full from the first frame. Only operator accounts may join (others get
//! [`crate::reasons::UNAUTHORIZED`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::typed::Event;

/// The topic an operator's dashboard joins.
pub const STATS_TOPIC: &str = "admin:stats";
/// The event each node's sample is broadcast as.
pub const STATS_EVENT: &str = "stats";
/// Samples a join reply carries at most: five minutes at one a second, what the dashboard's charts show.
pub const STATS_HISTORY: usize = 300;
/// A node not heard from for this long (ms, by the receiver's clock) has left: 15 samples missed.
pub const STATS_SILENCE_MS: u64 = 15_000;
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
    /// The rooms with the most members among those this node has members in (every node's members of them in a
    /// cluster), most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms_by_members: Vec<RoomCount>,
    /// The rooms with the most messages stored by this node in the last minute, most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms_by_messages: Vec<RoomCount>,
}

impl Event for NodeStats {
    const EVENT: &'static str = STATS_EVENT;
}

impl NodeStats {
    /// Reads a sample from parsed JSON by hand: what the browser's dashboard uses, because serde's derived visitors
    /// for these types cost the WASM bundle every page shares more than this function. Reads every sample the
    /// derived `Deserialize` reads (tested); `None` without a `node` or `at`, and a missing figure reads as 0.
    pub fn read(value: &Value) -> Option<Self> {
        let count = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        let rate = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        Some(Self {
            node: value.get("node")?.as_str()?.to_owned(),
            at: value.get("at")?.as_i64()?,
            connections: count("connections"),
            joined_channels: count("joined_channels"),
            joins: count("joins"),
            messages: count("messages"),
            deliveries: count("deliveries"),
            joins_per_s: rate("joins_per_s"),
            messages_per_s: rate("messages_per_s"),
            deliveries_per_s: rate("deliveries_per_s"),
            commit_p99_ms: value.get("commit_p99_ms").and_then(Value::as_f64),
            rooms_by_members: RoomCount::read_list(value.get("rooms_by_members")),
            rooms_by_messages: RoomCount::read_list(value.get("rooms_by_messages")),
        })
    }
}

/// A room and a count (members, or messages in the last minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    /// The room's slug.
    pub room: String,
    /// What is counted.
    pub count: u64,
}

impl RoomCount {
    fn read_list(value: Option<&Value>) -> Vec<Self> {
        let rooms = value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        rooms
            .iter()
            .filter_map(|room| {
                Some(Self { room: room.get("room")?.as_str()?.to_owned(), count: room.get("count")?.as_u64()? })
            })
            .collect()
    }
}

/// The `ok` response to a join of [`STATS_TOPIC`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsJoinReply {
    /// The node that answered the join.
    pub node: String,
    /// The samples of the last [`STATS_HISTORY`] seconds of every node it has heard from in the last
    /// [`STATS_SILENCE_MS`], node by node (its own first), each node's oldest first; only each node's newest carries
    /// the room lists.
    pub history: Vec<NodeStats>,
}

impl StatsJoinReply {
    /// Reads a join reply by hand (see [`NodeStats::read`]).
    pub fn read(value: &Value) -> Option<Self> {
        let history = value.get("history")?.as_array()?;
        Some(Self {
            node: value.get("node")?.as_str()?.to_owned(),
            history: history.iter().filter_map(NodeStats::read).collect(),
        })
    }
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

    #[test]
    fn the_hand_reader_reads_what_serde_reads() {
        let busy = vec![RoomCount { room: "lobby".into(), count: 4 }, RoomCount { room: "b".into(), count: 1 }];
        let sample = NodeStats {
            node: "n1".into(),
            at: 1_764_511_200_000,
            connections: 3,
            joined_channels: 5,
            joins: 9,
            messages: 11,
            deliveries: 40,
            joins_per_s: 0.5,
            messages_per_s: 2.25,
            deliveries_per_s: 12.0,
            commit_p99_ms: Some(3.75),
            rooms_by_members: busy.clone(),
            rooms_by_messages: busy,
        };
        let quiet = NodeStats { node: "n2".into(), at: 1, commit_p99_ms: None, ..NodeStats::default() };
        let reply = StatsJoinReply { node: "n1".into(), history: vec![quiet.clone(), sample.clone()] };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(StatsJoinReply::read(&json), Some(serde_json::from_value(json.clone()).unwrap()));
        assert_eq!(StatsJoinReply::read(&json).unwrap(), reply);
        assert_eq!(NodeStats::read(&serde_json::json!({"node": "n"})), None, "a sample has a time");
    }
}
