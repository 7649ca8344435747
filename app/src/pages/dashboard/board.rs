//! What the dashboard knows: the samples of every node heard from, the newest five minutes of each, oldest first.
//!
//! The join reply brings the history of every node the joined node hears from; live samples follow. A node this
//! browser has not heard from for [`STALE_MS`] (stopped or gone) is dropped from the board. Silence is judged by when
//! samples arrive here (the browser's clock), never by the samples' own times: those come from each node's clock, and
//! nodes' clocks disagree.

use protocol::admin::{NodeStats, STATS_HISTORY, STATS_SILENCE_MS, StatsJoinReply};

/// A node silent this long (ms, by when its samples arrived here) has left the board: 15 samples missed.
pub const STALE_MS: f64 = STATS_SILENCE_MS as f64;

/// One node's samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub node: String,
    pub samples: Vec<NodeStats>,
    /// When this browser last heard from the node (its clock, ms).
    pub heard: f64,
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
    /// After a (re)join at `now` (this browser's clock, ms): the reply's history of each node replaces what the board
    /// had of it, in the reply's order (the joined node first); nodes the reply does not have stay until silent.
    pub fn joined(&mut self, reply: StatsJoinReply, now: f64) {
        let mut fresh: Vec<Series> = Vec::new();
        for sample in reply.history {
            match fresh.iter_mut().find(|series| series.node == sample.node) {
                Some(series) => series.samples.push(sample),
                None => fresh.push(Series { node: sample.node.clone(), samples: vec![sample], heard: now }),
            }
        }
        let mut known = std::mem::take(&mut self.nodes);
        known.retain(|series| fresh.iter().all(|new| new.node != series.node));
        fresh.append(&mut known);
        self.nodes = fresh;
        self.forget_silent(now);
    }

    /// A node's new sample, received at `now` (this browser's clock, ms); also forgets the nodes silent for
    /// [`STALE_MS`].
    pub fn add(&mut self, sample: NodeStats, now: f64) {
        match self.nodes.iter_mut().find(|series| series.node == sample.node) {
            Some(series) => {
                series.heard = now;
                // A sample older than what the series has (a reply that overtook a broadcast) is not news; both come
                // from the same node, so their times compare.
                if series.newest().is_some_and(|newest| newest.at >= sample.at) {
                    return;
                }
                if series.samples.len() >= STATS_HISTORY {
                    series.samples.remove(0);
                }
                series.samples.push(sample);
            }
            None => self.nodes.push(Series { node: sample.node.clone(), samples: vec![sample], heard: now }),
        }
        self.forget_silent(now);
    }

    fn forget_silent(&mut self, now: f64) {
        self.nodes.retain(|series| !series.samples.is_empty() && now - series.heard < STALE_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(node: &str, at: i64) -> NodeStats {
        NodeStats { node: node.into(), at, ..NodeStats::default() }
    }

    fn nodes(board: &Board) -> Vec<(&str, usize)> {
        board.nodes.iter().map(|s| (s.node.as_str(), s.samples.len())).collect()
    }

    #[test]
    fn the_joined_history_comes_first_and_live_samples_follow() {
        let mut board = Board::default();
        board.add(sample("c", 1_000), 0.0);
        let history = vec![sample("a", 500), sample("a", 900), sample("b", 700)];
        board.joined(StatsJoinReply { node: "a".into(), history }, 10.0);
        board.add(sample("a", 1_100), 20.0);
        board.add(sample("a", 1_050), 30.0);
        assert_eq!(nodes(&board), vec![("a", 3), ("b", 1), ("c", 1)], "an older sample than the newest is dropped");
    }

    #[test]
    fn five_minutes_per_node_and_silent_nodes_leave() {
        let mut board = Board::default();
        for second in 0..(STATS_HISTORY as i64 + 10) {
            board.add(sample("a", second * 1_000), second as f64 * 1_000.0);
        }
        assert_eq!(board.nodes[0].samples.len(), STATS_HISTORY);
        board.add(sample("b", 1), 310_000.0 + STALE_MS);
        assert_eq!(nodes(&board), vec![("b", 1)], "a node silent for 15 s is gone");
    }

    #[test]
    fn skewed_clocks_do_not_drop_a_node_that_keeps_sending() {
        let mut board = Board::default();
        // `b`'s clock runs a minute ahead of `a`'s; both send every second.
        for second in 0..30 {
            let now = second as f64 * 1_000.0;
            board.add(sample("a", second * 1_000), now);
            board.add(sample("b", 60_000 + second * 1_000), now + 5.0);
        }
        assert_eq!(nodes(&board), vec![("a", 30), ("b", 30)]);
    }
}
