//! What the dashboard knows: the samples of every node heard from, the newest five minutes of each, oldest first.
//!
//! The joined node's history arrives in the join reply; the other nodes' charts fill as their samples arrive. A node
//! that has been silent for [`STALE_MS`] (stopped or gone) is dropped from the board.

use protocol::admin::{NodeStats, STATS_HISTORY, StatsJoinReply};

/// A node silent this long (ms, by the newest sample's clock) has left the board: 15 samples missed.
pub const STALE_MS: i64 = 15_000;

/// One node's samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub node: String,
    pub samples: Vec<NodeStats>,
}

impl Series {
    /// The newest sample (every series has at least one).
    pub fn newest(&self) -> Option<&NodeStats> {
        self.samples.last()
    }
}

/// Every node's series, in the order they were first heard from (the joined node first), and what the board says
/// while it has none (connecting, refused). One value behind one signal: each signal type costs the shared WASM.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    pub nodes: Vec<Series>,
    pub note: &'static str,
}

impl Board {
    /// After a (re)join: the joined node's history replaces what the board had of it.
    pub fn joined(&mut self, reply: StatsJoinReply) {
        let mut history = reply.history;
        history.retain(|sample| sample.node == reply.node);
        match self.nodes.iter_mut().find(|series| series.node == reply.node) {
            Some(series) => series.samples = history,
            None => self.nodes.insert(0, Series { node: reply.node, samples: history }),
        }
        self.nodes.retain(|series| !series.samples.is_empty());
    }

    /// A node's new sample; also forgets the nodes silent for [`STALE_MS`] by its clock.
    pub fn add(&mut self, sample: NodeStats) {
        let now = sample.at;
        match self.nodes.iter_mut().find(|series| series.node == sample.node) {
            Some(series) => {
                // A sample older than what the series has (a reply that overtook a broadcast) is not news.
                if series.newest().is_some_and(|newest| newest.at >= sample.at) {
                    return;
                }
                if series.samples.len() >= STATS_HISTORY {
                    series.samples.remove(0);
                }
                series.samples.push(sample);
            }
            None => self.nodes.push(Series { node: sample.node.clone(), samples: vec![sample] }),
        }
        self.nodes.retain(|series| series.newest().is_some_and(|newest| now - newest.at < STALE_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node: &str, at: i64) -> NodeStats {
        NodeStats { node: node.into(), at, ..NodeStats::default() }
    }

    #[test]
    fn the_joined_history_comes_first_and_live_samples_follow() {
        let mut board = Board::default();
        board.add(sample("b", 1_000));
        board.joined(StatsJoinReply { node: "a".into(), history: vec![sample("a", 500), sample("a", 900)] });
        board.add(sample("a", 1_100));
        board.add(sample("a", 1_050));
        let nodes: Vec<_> = board.nodes.iter().map(|s| (s.node.as_str(), s.samples.len())).collect();
        assert_eq!(nodes, vec![("a", 3), ("b", 1)], "an older sample than the newest is dropped");
    }

    #[test]
    fn five_minutes_per_node_and_silent_nodes_leave() {
        let mut board = Board::default();
        for second in 0..(STATS_HISTORY as i64 + 10) {
            board.add(sample("a", second * 1_000));
        }
        assert_eq!(board.nodes[0].samples.len(), STATS_HISTORY);
        board.add(sample("b", 400_000));
        let nodes: Vec<_> = board.nodes.iter().map(|s| s.node.as_str()).collect();
        assert_eq!(nodes, vec!["b"], "a node silent for 15 s is gone");
    }
}
